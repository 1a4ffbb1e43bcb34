"""Bots for the board games (issue 10): uniform random, batched UCT MCTS, an exact Connect
Four solver and Stockfish over UCI. Import the submodules directly: `bots`, `mcts`,
`solver`, `stockfish`."""
