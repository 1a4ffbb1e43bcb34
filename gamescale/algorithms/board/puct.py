"""Batch-first PUCT: Monte Carlo tree search guided by a policy and a value function.

The search never owns a model: `evaluate(game, states) -> (priors [k, A], values [k])` is
passed in (mctx's recurrent-function idea), and every leaf of every tree of one wave goes
to it in ONE call, so a model behind an actor (`ModelClient`) sees batches of `B * W`
positions, not single ones. `priors` are probabilities over the legal moves of each
position; `values` are in [-1, 1] for the player to move there.

Trees are flat arrays like `mcts.uct_search`'s: `[B, M]` per node (M = simulations + 1),
`[B, M, A]` for children, priors and legal masks, and the game state of every node. A
node's `value_sum` is from the point of view of the player who moved into it. Selection
maximises `Q + c_puct * P * sqrt(N_parent) / (1 + N_child)` (AlphaZero's rule), with
`Q = fpu` for an unvisited child. `parallel = W` makes W selections per tree per wave,
kept apart by a virtual loss. Terminal positions get their exact value; with `solve`
proven wins and losses are propagated as in `mcts.uct_search` (MCTS-Solver), so a won
position is played at once and a lost reply avoided whatever the model says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gamescale.algorithms.board.mcts import Forest, SearchOutput, _value_for, propagate_proofs, root_choice
from gamescale.envs.board.batch import BatchGame

Evaluator = Callable[[BatchGame, Any], tuple[np.ndarray, np.ndarray]]
"""(game, batch state of k positions) -> (priors float [k, A], values float [k] for the mover)."""


def uniform_evaluator(game: BatchGame, states: Any) -> tuple[np.ndarray, np.ndarray]:
    """Equal priors over the legal moves and value 0: PUCT then searches like plain UCT
    without rollouts (a fixed, non-learned evaluator for tests and baselines)."""
    mask = game.legal_mask(states).astype(np.float64)
    return mask / np.maximum(mask.sum(axis=1, keepdims=True), 1.0), np.zeros(mask.shape[0])


def puct_search(
    game: BatchGame,
    root: Any,
    num_simulations: int,
    evaluate: Evaluator,
    rng: np.random.Generator,
    c_puct: float = 1.5,
    fpu: float = 0.0,
    parallel: int = 1,
    solve: bool = True,
) -> SearchOutput:
    """`num_simulations` PUCT simulations in each of the `B` trees rooted at `root`."""
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    forest = Forest.plant(game, root, num_simulations + 1)
    rows, children, legal, proven = forest.rows, forest.children, forest.legal, forest.proven
    visits, value_sum, terminal, winner, mover = (
        forest.visits, forest.value_sum, forest.terminal, forest.winner, forest.mover)
    prior = np.zeros(legal.shape)
    leaf_value = np.zeros(visits.shape)  # value of a node when it was a leaf, for its mover
    evaluated = np.zeros(visits.shape, bool)  # the model has given the node's priors
    live = np.flatnonzero(~terminal[:, 0])
    if len(live):
        p, _ = evaluate(game, forest.states(live, np.zeros(len(live), np.int64)))
        prior[live, 0] = np.where(legal[live, 0], p, 0.0)
        evaluated[live, 0] = True

    def puct_score(r: np.ndarray, n: np.ndarray, kids: np.ndarray, kid_visits: np.ndarray) -> np.ndarray:
        q = np.where(kid_visits > 0, value_sum[r[:, None], kids] / np.maximum(kid_visits, 1.0), fpu)
        u = c_puct * prior[r, n] * np.sqrt(np.maximum(visits[r, n], 1.0))[:, None] / (1.0 + kid_visits)
        score = q + u + 1e-9 * rng.random(kids.shape)
        if solve:
            proof = np.where(kids >= 0, proven[r[:, None], kids], 0)
            score = np.where(proof == 1, 1e12, np.where(proof == -1, -1e12 + score, score))
        return score

    def descend() -> tuple[list, np.ndarray, np.ndarray]:
        """One selection per tree, down to a new node, a terminal one, or one allocated this
        wave whose evaluation is not back yet."""
        path, node, new_leaf = forest.descend(game, puct_score, solve, halt=~evaluated & ~terminal)
        ends = terminal[rows, node]
        leaf_value[rows[ends], node[ends]] = _value_for(mover[rows[ends], node[ends]], winner[rows[ends], node[ends]])
        return path, node, new_leaf

    done_simulations = 0
    while done_simulations < num_simulations:
        waves = min(parallel, num_simulations - done_simulations)
        done_simulations += waves
        descents = []
        for _ in range(waves):
            path, node, new_leaf = descend()
            for r, n in path:
                visits[r, n] += 1.0
                value_sum[r, n] -= 1.0  # virtual loss, replaced by the result below
            descents.append((path, node, new_leaf))
        # one evaluation call for every new non-terminal leaf of the wave
        leaf_rows = np.concatenate([rows[new_leaf] for _, _, new_leaf in descents])
        leaf_nodes = np.concatenate([node[new_leaf] for _, node, new_leaf in descents])
        fresh = ~terminal[leaf_rows, leaf_nodes]
        leaf_rows, leaf_nodes = leaf_rows[fresh], leaf_nodes[fresh]
        if len(leaf_rows):
            p, v = evaluate(game, forest.states(leaf_rows, leaf_nodes))
            prior[leaf_rows, leaf_nodes] = np.where(legal[leaf_rows, leaf_nodes], p, 0.0)
            leaf_value[leaf_rows, leaf_nodes] = -np.asarray(v, np.float64)  # for the mover into the leaf
            evaluated[leaf_rows, leaf_nodes] = True
        for path, node, _ in descents:
            result = leaf_value[rows, node]  # for the mover into each tree's leaf
            leaf_mover = mover[rows, node]
            for r, n in path:
                sign = np.where(mover[r, n] == leaf_mover[r], 1.0, -1.0)
                value_sum[r, n] += 1.0 + sign * result[r]
            if solve:
                propagate_proofs(path, children, proven, legal)

    return root_choice(children, visits, value_sum, legal, terminal, proven if solve else None, tiebreak=prior[:, 0])


__all__ = ["Evaluator", "puct_search", "uniform_evaluator"]
