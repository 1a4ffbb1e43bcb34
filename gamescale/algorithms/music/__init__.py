"""The music family's learning math: a prompt-conditioned transformer trained with condition
dropout, classifier-free guidance (`conditional`), and the pieces of CFG distillation with a
diversity reward (`distill`: the distillation loss, the diversity reward, weight
interpolation), after arXiv 2410.06084. No algorithm is registered yet (phase 1); import
the submodules (they need torch) to use them."""
