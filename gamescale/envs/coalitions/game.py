"""Cooperative (transferable-utility) games as batched characteristic functions.

Conventions (shared by every game here and every solver in `gamescale.algorithms.coalitions`):

* Players are `0..n-1`. A coalition is a row of a `[B, n]` bool array (`True` = member);
  `as_coalitions` also accepts 0/1 integer rows and, for n <= 62, packed integer
  bitmasks `[B]` (bit i = player i). `pack`/`unpack` turn rows into `[B, ceil(n/8)]`
  uint8 bytes (numpy `packbits` order) for the wire.
* `game.values(coalitions) -> [B] float64` is the characteristic function v(S) of a whole
  batch at once; v(empty) = 0 for every built-in game. Values are profits (larger is
  better); cost games are written as their savings games (see `AirportGame`).
* A payoff is a `[n]` float64 vector x; it is efficient when x(N) = v(N). The excess of
  coalition S at x is v(S) - x(S); the least core is min over efficient x of the largest
  excess over proper non-empty coalitions (the least-core value epsilon). The core is
  non-empty iff epsilon <= 0.
* Optional hooks a family may offer: `shapley_closed_form() -> [n]` and
  `most_violated(payoff, k) -> (coalitions [k', n], excess [k'])`, an EXACT separation
  oracle over proper non-empty coalitions (`has_exact_oracle` says whether it exists,
  `cheap_oracle` whether it is a quick dynamic program rather than a mixed-integer program).
"""

from __future__ import annotations

import numpy as np

MAX_BITMASK_PLAYERS = 62


def check_num_players(n: int) -> int:
    if int(n) != n or n < 2:
        raise ValueError(f"a cooperative game needs at least two players, got {n!r}")
    return int(n)


def as_coalitions(coalitions: np.ndarray, num_players: int) -> np.ndarray:
    """Coalitions as a `[B, n]` bool array, from bool/0-1 rows or packed integer bitmasks `[B]`."""
    c = np.asarray(coalitions)
    if c.ndim == 1 and np.issubdtype(c.dtype, np.integer):
        if num_players > MAX_BITMASK_PLAYERS:
            raise ValueError(f"integer bitmasks hold at most {MAX_BITMASK_PLAYERS} players, game has {num_players}")
        if np.any(c < 0) or np.any(c >= (1 << num_players)):
            raise ValueError(f"a bitmask is outside [0, 2^{num_players})")
        bits = np.int64(1) << np.arange(num_players, dtype=np.int64)
        return (c.astype(np.int64)[:, None] & bits) != 0
    if c.ndim != 2 or c.shape[1] != num_players:
        raise ValueError(f"coalitions must be [B, {num_players}] rows or [B] bitmasks, got shape {c.shape}")
    if c.dtype == np.bool_:
        return c
    if not np.all((c == 0) | (c == 1)):
        raise ValueError("coalition rows must be 0/1")
    return c.astype(bool)


def to_bitmasks(coalitions: np.ndarray) -> np.ndarray:
    """`[B, n]` bool rows (n <= 62) -> `[B]` int64 bitmasks."""
    n = coalitions.shape[1]
    if n > MAX_BITMASK_PLAYERS:
        raise ValueError(f"integer bitmasks hold at most {MAX_BITMASK_PLAYERS} players, got {n}")
    return coalitions.astype(np.int64) @ (np.int64(1) << np.arange(n, dtype=np.int64))


def pack(coalitions: np.ndarray) -> np.ndarray:
    """`[B, n]` bool -> `[B, ceil(n / 8)]` uint8."""
    return np.packbits(coalitions, axis=1)


def unpack(packed: np.ndarray, num_players: int) -> np.ndarray:
    """Inverse of `pack`."""
    return np.unpackbits(packed, axis=1, count=num_players).astype(bool)


def all_coalitions(num_players: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Coalitions with bitmasks `start..stop-1` (default: all 2^n) as `[B, n]` bool; row k is bitmask start+k."""
    if num_players > 30:
        raise ValueError(f"enumerating all coalitions of {num_players} players is not possible")
    stop = (1 << num_players) if stop is None else stop
    return as_coalitions(np.arange(start, stop, dtype=np.int64), num_players)


def check_payoff(payoff: np.ndarray, num_players: int) -> np.ndarray:
    x = np.asarray(payoff, dtype=np.float64)
    if x.shape != (num_players,):
        raise ValueError(f"payoff has shape {x.shape}, the game has {num_players} players")
    if not np.all(np.isfinite(x)):
        raise ValueError("payoff has non-finite entries")
    return x


class CoalitionGame:
    """Base class: subclasses set `num_players` and implement `_values(bool [B, n]) -> [B]`."""

    name = "coalition_game"
    num_players: int
    has_exact_oracle = False
    cheap_oracle = False  # True where the oracle is fast enough to certify every iteration

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def values(self, coalitions: np.ndarray) -> np.ndarray:
        """v(S) of every coalition of the batch: `[B, n]` bool (or bitmasks `[B]`) -> `[B]` float64."""
        c = as_coalitions(coalitions, self.num_players)
        if len(c) == 0:
            return np.zeros(0)
        return np.asarray(self._values(c), dtype=np.float64)

    def flip_values(self, coalitions: np.ndarray) -> np.ndarray:
        """`[m, n]` bool -> `[m, n]`: v(S with player i's membership flipped) for every row S and
        player i (the neighbourhood of a local search). Families override this with an update
        from v(S) that costs O(n) per row instead of a full evaluation per neighbour."""
        m, n = coalitions.shape
        flipped = coalitions[:, None, :] ^ np.eye(n, dtype=bool)[None]
        return self.values(flipped.reshape(m * n, n)).reshape(m, n)

    def flip_deltas(self, coalitions: np.ndarray) -> np.ndarray:
        """`[m, n]` bool -> `[m, n]`: v(S with player i flipped) - v(S), the move values of a local
        search (`tabu_search`). Families with a cheap update override this."""
        return self.flip_values(coalitions) - self.values(coalitions)[:, None]

    def grand_value(self) -> float:
        return float(self.values(np.ones((1, self.num_players), bool))[0])

    def shapley_closed_form(self) -> np.ndarray | None:
        return None

    def start_payoffs(self) -> list[np.ndarray]:
        """Cheap efficient payoffs a solver may start from (equal split, closed-form Shapley);
        families add their own guesses."""
        total = self.grand_value()
        found = [np.full(self.num_players, total / self.num_players)]
        shapley = self.shapley_closed_form()
        if shapley is not None:
            found.append(np.asarray(shapley, np.float64) + (total - float(np.sum(shapley))) / self.num_players)
        return found

    def most_violated(self, payoff: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{self.name} has no exact separation oracle")

    def describe(self) -> dict:
        return {"game": self.name, "num_players": self.num_players}


def excess(game: CoalitionGame, coalitions: np.ndarray, payoff: np.ndarray) -> np.ndarray:
    """v(S) - x(S) for each coalition `[B, n]`; `[B]`."""
    x = check_payoff(payoff, game.num_players)
    return game.values(coalitions) - coalitions @ x
