"""Batch-first UCT Monte Carlo tree search with uniformly random rollouts.

`B` independent trees (one per game of a batch state) grow together: every simulation
selects, expands, rolls out and backs up in all of them with array operations, so the
Python cost of a simulation is paid once per batch, not once per game (the same shape as
mctx's search; the game is a `BatchGame`, the search never owns the rules). Each tree is
a set of flat arrays `[B, M]` (`M = num_simulations + 1` nodes), plus `[B, M, A]`
children and legal masks, plus the game state of every node (`[B, M, ...]` per field).

Values: a node's `value_sum` is kept from the point of view of the player who moved into
it (+1 won, -1 lost, 0 drawn), so a parent picks the child maximising
`Q + c * sqrt(ln N_parent / N_child)`; unvisited legal children are tried first, in
random order. `parallel = W` batches over simulations too: W selections per tree (kept
apart by a virtual loss) share one rollout call of `B * W` games.

With `solve=True` (the default, as in OpenSpiel's MCTSBot) proven results are propagated
as in MCTS-Solver: a node whose mover's opponent has a winning reply is a proven loss for
its mover, one whose every legal reply is a proven loss for the replier is a proven win.
Selection plays a proven win at once and avoids proven losses while any other move is
left, so immediate wins are taken and immediate losses blocked after a few dozen
simulations instead of being averaged away by random rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from gamescale.envs.board.batch import BatchGame, random_legal


@dataclass(frozen=True)
class SearchOutput:
    """Result of one search over a batch of `B` root positions with `A` actions.

    action: int64 [B]      most visited root action (best mean value among equals); 0 for finished games
    visits: float64 [B, A] visit count of each root child (0 for illegal or unvisited actions)
    values: float64 [B, A] mean value of each root child for the player to move (nan where unvisited)
    """

    action: np.ndarray
    visits: np.ndarray
    values: np.ndarray


def _gather(store: dict[str, np.ndarray], template: Any, rows: np.ndarray, nodes: np.ndarray) -> Any:
    return replace(template, **{name: array[rows, nodes] for name, array in store.items()})


def _scatter(store: dict[str, np.ndarray], state: Any, rows: np.ndarray, nodes: np.ndarray) -> None:
    for name, array in store.items():
        array[rows, nodes] = getattr(state, name)


def _value_for(mover: np.ndarray, winner: np.ndarray) -> np.ndarray:
    """+1 / -1 / 0 for the player who moved into a node, given the game's winner (-1 draw)."""
    return np.where(winner < 0, 0.0, np.where(winner == mover, 1.0, -1.0))


Score = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(rows [k], nodes [k], children [k, A], child visits [k, A]) -> selection score [k, A]."""


@dataclass
class Forest:
    """`B` search trees of at most `M` nodes each, as flat arrays; node 0 is each tree's root.

    store: the game state of every node, `[B, M, ...]` per field of the batch state
    children int32 [B, M, A] (-1: not expanded), legal bool [B, M, A],
    visits / value_sum float [B, M] (value from the view of the player who moved into the node),
    terminal bool, winner int8 (-1 none or draw), mover int8 (who moved into the node),
    proven int8 [B, M] (+1 / -1: a proven win / loss for the mover), used int64 [B] (nodes allocated).
    """

    template: Any
    store: dict[str, np.ndarray]
    children: np.ndarray
    legal: np.ndarray
    visits: np.ndarray
    value_sum: np.ndarray
    terminal: np.ndarray
    winner: np.ndarray
    mover: np.ndarray
    proven: np.ndarray
    used: np.ndarray

    @classmethod
    def plant(cls, game: BatchGame, root: Any, size: int) -> Forest:
        """Trees of `size` nodes rooted at the `B` positions of the batch state `root`."""
        batch, actions = game.done(root).shape[0], game.num_actions
        store = {f.name: np.zeros((batch, size) + getattr(root, f.name).shape[1:], getattr(root, f.name).dtype)
                 for f in fields(root)}
        _scatter(store, root, np.arange(batch), np.zeros(batch, np.int64))
        forest = cls(
            root, store,
            children=np.full((batch, size, actions), -1, np.int32),
            legal=np.zeros((batch, size, actions), bool),
            visits=np.zeros((batch, size)),
            value_sum=np.zeros((batch, size)),
            terminal=np.zeros((batch, size), bool),
            winner=np.full((batch, size), -1, np.int8),
            mover=np.zeros((batch, size), np.int8),
            proven=np.zeros((batch, size), np.int8),
            used=np.ones(batch, np.int64),
        )
        forest.legal[:, 0], forest.terminal[:, 0], forest.winner[:, 0] = (
            game.legal_mask(root), game.done(root), game.winner(root))
        forest.mover[:, 0] = 1 - game.to_play(root)
        return forest

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.children.shape[0])

    def states(self, rows: np.ndarray, nodes: np.ndarray) -> Any:
        """The batch state of the given nodes."""
        return _gather(self.store, self.template, rows, nodes)

    def expand(self, game: BatchGame, rows: np.ndarray, nodes: np.ndarray, actions: np.ndarray, solve: bool) -> np.ndarray:
        """A new node in each tree of `rows` (distinct), reached by `actions` from `nodes`; returns them.
        With `solve` a won or lost terminal node is proven (draws stay open)."""
        new = self.used[rows]
        self.used[rows] += 1
        parent = self.states(rows, nodes)
        state = game.step(parent, actions)
        _scatter(self.store, state, rows, new)
        self.children[rows, nodes, actions] = new
        self.legal[rows, new], self.terminal[rows, new], self.winner[rows, new] = (
            game.legal_mask(state), game.done(state), game.winner(state))
        self.mover[rows, new] = game.to_play(parent)
        if solve:
            self.proven[rows, new] = np.where(self.terminal[rows, new], _value_for(self.mover[rows, new], self.winner[rows, new]), 0)
        return new

    def descend(
        self, game: BatchGame, score: Score, solve: bool, halt: np.ndarray | None = None
    ) -> tuple[list, np.ndarray, np.ndarray]:
        """One selection from every root, by `score` over the legal children, down to a new
        node (expanded here), a terminal one, or one where `halt` [B, M] is set.

        Returns (path [(rows, nodes)] from the roots down, the last node of every tree [B],
        whether a tree expanded a node [B]).
        """
        rows = self.rows
        node = np.zeros(len(rows), np.int64)
        path = [(rows, node.copy())]
        going = ~self.terminal[:, 0]
        expanded = np.zeros(len(rows), bool)
        while going.any():
            r, n = rows[going], node[going]
            kids = self.children[r, n]  # [k, A]
            kid_visits = np.where(kids >= 0, self.visits[r[:, None], kids], 0.0)
            a = np.argmax(np.where(self.legal[r, n], score(r, n, kids, kid_visits), -np.inf), axis=1)
            child = kids[np.arange(len(r)), a].astype(np.int64)
            new = child < 0
            if new.any():  # expand one node in each tree that reached an unexpanded child
                child[new] = self.expand(game, r[new], n[new], a[new], solve)
                expanded[r[new]] = True
            node[r] = child
            path.append((r, child))
            stop = new | self.terminal[r, child]
            if halt is not None:
                stop |= halt[r, child]
            going[r[stop]] = False
        return path, node, expanded


def uct_search(
    game: BatchGame,
    root: Any,
    num_simulations: int,
    rng: np.random.Generator,
    exploration: float = 1.4,
    solve: bool = True,
    parallel: int = 1,
) -> SearchOutput:
    """Run `num_simulations` UCT simulations in each of the `B` trees rooted at `root`.

    `parallel` > 1 runs that many selections per tree before evaluating their leaves in one
    rollout call (a virtual loss of -1 on each visited node keeps them apart); 1 is exact,
    sequential UCT.
    """
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    batch = game.done(root).shape[0]
    forest = Forest.plant(game, root, num_simulations + 1)
    rows, children, legal, proven = forest.rows, forest.children, forest.legal, forest.proven
    visits, value_sum, terminal, winner, mover = (
        forest.visits, forest.value_sum, forest.terminal, forest.winner, forest.mover)

    def uct_score(r: np.ndarray, n: np.ndarray, kids: np.ndarray, kid_visits: np.ndarray) -> np.ndarray:
        q = np.where(kid_visits > 0, value_sum[r[:, None], kids] / np.maximum(kid_visits, 1.0), 0.0)
        explore = exploration * np.sqrt(np.log(np.maximum(visits[r, n], 1.0))[:, None] / np.maximum(kid_visits, 1.0))
        score = np.where(kid_visits > 0, q + explore, 1e9) + 1e-6 * rng.random(kids.shape)
        if solve:
            kid_proof = np.where(kids >= 0, proven[r[:, None], kids], 0)
            score = np.where(kid_proof == 1, 1e12, np.where(kid_proof == -1, -1e12, score))
        return score

    def descend() -> tuple[list, np.ndarray, np.ndarray]:
        return forest.descend(game, uct_score, solve)

    done_simulations = 0
    while done_simulations < num_simulations:
        waves = min(parallel, num_simulations - done_simulations)
        done_simulations += waves
        descents = []
        for _ in range(waves):  # several selections per tree, kept apart by a virtual loss
            path, node, expanded = descend()
            for r, n in path:
                visits[r, n] += 1.0
                value_sum[r, n] -= 1.0
            descents.append((path, node, expanded))
        # Evaluate all leaves of the round at once: the stored result at terminal nodes, one
        # random rollout from every new node.
        leaf_rows = np.concatenate([rows] * waves)
        leaf_nodes = np.concatenate([node for _, node, _ in descents])
        results = winner[leaf_rows, leaf_nodes].copy()
        roll = np.concatenate([expanded for _, _, expanded in descents]) & ~terminal[leaf_rows, leaf_nodes]
        if roll.any():
            results[roll] = game.random_winners(forest.states(leaf_rows[roll], leaf_nodes[roll]), rng)
        for w, (path, _, _) in enumerate(descents):
            result = results[w * batch : (w + 1) * batch]
            for r, n in path:  # the visit is already counted; replace the virtual loss by the result
                value_sum[r, n] += 1.0 + _value_for(mover[r, n], result[r])
            if solve:
                propagate_proofs(path, children, proven, legal)

    return root_choice(children, visits, value_sum, legal, terminal, proven if solve else None)


def propagate_proofs(path: list, children: np.ndarray, proven: np.ndarray, legal: np.ndarray) -> None:
    """MCTS-Solver backup along one selection `path` ([(rows, nodes)] from the root down),
    from its deepest node to the root, in place: a node whose mover's opponent has a
    winning reply is a proven loss (-1), one whose every legal reply is a proven loss for
    the replier a proven win (+1)."""
    for r, n in reversed(path[:-1]):
        kids = children[r, n]
        kid_proof = np.where(kids >= 0, proven[r[:, None], kids], 0)
        replier_wins = (kid_proof == 1).any(axis=1)
        replier_loses = ((kid_proof == -1) | ~legal[r, n]).all(axis=1) & legal[r, n].any(axis=1)
        proven[r, n] = np.where(replier_wins, -1, np.where(replier_loses, 1, proven[r, n]))


def root_choice(
    children: np.ndarray,
    visits: np.ndarray,
    value_sum: np.ndarray,
    legal: np.ndarray,
    terminal: np.ndarray,
    proven: np.ndarray | None,
    tiebreak: np.ndarray | None = None,
) -> SearchOutput:
    """The move of every tree: most visits, then best mean value (then `tiebreak` [B, A],
    e.g. a prior); a proven win first and a proven loss last when `proven` is given."""
    rows = np.arange(children.shape[0])
    kids = children[:, 0]
    root_visits = np.where(kids >= 0, visits[rows[:, None], kids], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        root_values = np.where(root_visits > 0, value_sum[rows[:, None], kids] / root_visits, np.nan)
    rank = root_visits + 1e-3 * np.nan_to_num(root_values, nan=-2.0)
    if tiebreak is not None:
        rank = rank + 1e-6 * tiebreak
    if proven is not None:
        root_proof = np.where(kids >= 0, proven[rows[:, None], kids], 0)
        rank = np.where(root_proof == 1, 1e12 + rank, np.where(root_proof == -1, rank - 1e12, rank))
    action = np.where(terminal[:, 0], 0, np.argmax(np.where(legal[:, 0], rank, -np.inf), axis=1))
    return SearchOutput(action.astype(np.int64), root_visits, root_values)


__all__ = ["Forest", "SearchOutput", "propagate_proofs", "random_legal", "root_choice", "uct_search"]
