"""The music family's learning math: a prompt-conditioned transformer trained with condition
dropout, classifier-free guidance (`conditional`), the pieces of CFG distillation with a
diversity reward (`distill`), the prompt-music matcher that scores quality and embeds music
for diversity (`matching`), and the registered `music_cfg_distill` algorithm
(`cfg_distill`), after arXiv 2410.06084.

Importing this package registers the algorithm without importing torch."""

from __future__ import annotations

from gamescale.algorithms.music.config import MusicCfgDistillConfig
from gamescale.algorithms.registry import register_algorithm

register_algorithm(
    "music_cfg_distill",
    MusicCfgDistillConfig,
    "gamescale.algorithms.music.cfg_distill:MusicCfgDistill",
    "CFG distillation with a diversity reward and weight interpolation on symbolic music (2410.06084)",
)

__all__ = ["MusicCfgDistillConfig"]
