"""Array model of finite-state, finite-horizon mean-field games (MFGs).

A mean-field game here is a Markov decision process of one representative player whose
rewards and transitions may depend on the population distribution `mu_t` (the law of
all other players' states). Everything is an array; no game tree is ever walked.

Conventions (shared by every game and every solver in `gamescale.algorithms.mfg`):

* States are integers `0..S-1`, actions `0..A-1`, decision times `t = 0..T-1`
  (`T = horizon`). The distribution at time `t` is `mu_t`, shape `[S]`, non-negative,
  summing to one; `mu_0 = initial_distribution`. Distributions over the whole horizon are
  `[T + 1, S]` (`mu_T` is the terminal distribution).
* At time `t` a player in state `s` picks a legal action `a` (`legal_actions[s, a]`),
  collects `reward(t, mu_t)[s, a]`, and moves to `next_state[s, a, k]` with probability
  `prob[s, a, k]` where `(next_state, prob) = transition(t, mu_t)`. The kernel is SPARSE:
  `K` successors per (state, action) pair, shapes `[S, A, K]` (int64 and float64), rows
  `prob[s, a, :]` sum to one; unused slots carry probability 0. A dense `S x A x S`
  tensor is never built. At `t = T` the player collects `terminal_reward(mu_T)[s]`.
* Rewards are maximised. Values are undiscounted sums over the horizon.

Writing a game (e.g. a congestion or routing game): either pass arrays/callables to
`MeanFieldGame(...)` or subclass it and override `transition(t, mu)` and `reward(t, mu)`.
If `transition` depends on `mu` (congestion slows travel), set
`transition_depends_on_mu=True`; solvers then re-query it with the current `mu_t`.
Return cached arrays when nothing changes: solvers call both methods once per time step
per pass, so the cost of the game is `O(T * S * A * K)` per iteration.

Several populations (predator-prey, multi-class traffic) use `MultiPopulationGame`: the
same conventions with a leading population axis `P` (`mu` is `[P, S]`, the kernel
`[P, S, A, K]`, rewards `[P, S, A]`); each population's reward may depend on every
population's distribution. A single-population game is seen as `P = 1` through
`as_multi_population(game)`; solvers use that view internally.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Kernel = tuple[np.ndarray, np.ndarray]  # (next_state [.., S, A, K] int64, prob [.., S, A, K] float64)

_ATOL = 1e-9


def check_positive(name: str, value: int) -> int:
    """Return `value` as int, or raise ValueError when it is not a positive integer."""
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_distribution(mu: np.ndarray, num_states: int, name: str = "distribution") -> np.ndarray:
    """Validate a distribution over states (last axis); returns it as float64."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.shape[-1] != num_states:
        raise ValueError(f"{name} has {mu.shape[-1]} entries, expected {num_states}")
    if not np.all(np.isfinite(mu)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(mu < 0):
        raise ValueError(f"{name} has negative mass (min {mu.min():.3g})")
    total = mu.sum(axis=-1)
    if not np.allclose(total, 1.0, atol=1e-8):
        raise ValueError(f"{name} must sum to 1, sums to {np.round(total, 10).tolist()}")
    return mu


def check_kernel(next_state: np.ndarray, prob: np.ndarray, num_states: int, num_actions: int) -> Kernel:
    """Validate a sparse transition kernel with trailing shape `[S, A, K]`."""
    next_state = np.asarray(next_state)
    prob = np.asarray(prob, dtype=np.float64)
    if next_state.shape != prob.shape:
        raise ValueError(f"next_state shape {next_state.shape} differs from prob shape {prob.shape}")
    if next_state.ndim < 3 or next_state.shape[-3:-1] != (num_states, num_actions):
        raise ValueError(f"kernel shape {next_state.shape} must end with [S={num_states}, A={num_actions}, K]")
    if not np.issubdtype(next_state.dtype, np.integer):
        raise ValueError(f"next_state must hold integers, got dtype {next_state.dtype}")
    if next_state.size and (next_state.min() < 0 or next_state.max() >= num_states):
        raise ValueError(f"next_state entries must lie in [0, {num_states})")
    if np.any(prob < 0) or not np.all(np.isfinite(prob)):
        raise ValueError("transition probabilities must be finite and non-negative")
    row_sums = prob.sum(axis=-1)
    if not np.allclose(row_sums, 1.0, atol=_ATOL):
        bad = np.argwhere(~np.isclose(row_sums, 1.0, atol=_ATOL))[0]
        raise ValueError(f"transition rows must sum to 1; row {tuple(bad.tolist())} sums to {row_sums[tuple(bad)]:.6g}")
    return next_state.astype(np.int64, copy=False), prob


def push_forward(mu: np.ndarray, policy_t: np.ndarray, next_state: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """One forward step of the distribution through a sparse kernel.

    Shapes: `mu [..., S]`, `policy_t [..., S, A]`, kernel `[..., S, A, K]` -> `[..., S]`
    (leading axes, e.g. populations, are independent).
    """
    lead, num_states = mu.shape[:-1], mu.shape[-1]
    mass = (mu[..., None] * policy_t)[..., None] * prob  # [..., S, A, K]
    groups = int(np.prod(lead, dtype=np.int64))
    offset = (np.arange(groups) * num_states).reshape(*lead, 1, 1, 1)
    flat = np.bincount((next_state + offset).reshape(-1), weights=mass.reshape(-1), minlength=groups * num_states)
    return flat.reshape(mu.shape)


class MeanFieldGame:
    """A single-population finite MFG (see the module docstring for all conventions).

    Build one directly from arrays and callables, or subclass and override
    `transition`, `reward` and (optionally) `terminal_reward`.

    Args:
        num_states: S.  num_actions: A.  horizon: T (number of decisions).
        initial_distribution: `[S]`, non-negative, sums to 1.
        kernel: a static `(next_state [S, A, K], prob [S, A, K])`, or None when a subclass
            overrides `transition`.
        transition_fn: `(t, mu_t [S]) -> kernel`, for kernels depending on time or `mu`.
        reward_fn: `(t, mu_t [S]) -> [S, A]`.
        terminal_reward_fn: `(mu_T [S]) -> [S]`; default zero.
        legal_actions: `[S, A]` bool; default all legal. Every state needs one legal action.
    """

    transition_depends_on_mu: bool = False

    def __init__(
        self,
        num_states: int,
        num_actions: int,
        horizon: int,
        initial_distribution: np.ndarray,
        *,
        kernel: Kernel | None = None,
        transition_fn: Callable[[int, np.ndarray], Kernel] | None = None,
        reward_fn: Callable[[int, np.ndarray], np.ndarray] | None = None,
        terminal_reward_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        legal_actions: np.ndarray | None = None,
        transition_depends_on_mu: bool | None = None,
        name: str = "mfg",
    ):
        self.num_states = check_positive("num_states", num_states)
        self.num_actions = check_positive("num_actions", num_actions)
        self.horizon = check_positive("horizon", horizon)
        self.name = name
        self.initial_distribution = check_distribution(initial_distribution, self.num_states, "initial_distribution")
        if legal_actions is None:
            legal_actions = np.ones((self.num_states, self.num_actions), dtype=bool)
        legal_actions = np.asarray(legal_actions, dtype=bool)
        if legal_actions.shape != (self.num_states, self.num_actions):
            raise ValueError(f"legal_actions shape {legal_actions.shape} != {(self.num_states, self.num_actions)}")
        if not legal_actions.any(axis=1).all():
            raise ValueError("every state needs at least one legal action")
        self.legal_actions = legal_actions
        self._kernel = None if kernel is None else check_kernel(*kernel, self.num_states, self.num_actions)
        self._transition_fn = transition_fn
        self._reward_fn = reward_fn
        self._terminal_reward_fn = terminal_reward_fn
        if transition_depends_on_mu is not None:
            self.transition_depends_on_mu = transition_depends_on_mu

    @property
    def num_populations(self) -> int:
        return 1

    def transition(self, t: int, mu: np.ndarray) -> Kernel:
        """Sparse kernel at time t given `mu_t [S]`: `(next_state, prob)`, each `[S, A, K]`."""
        if self._transition_fn is not None:
            return self._transition_fn(t, mu)
        if self._kernel is None:
            raise NotImplementedError(f"{type(self).__name__} defines no transition")
        return self._kernel

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        """Reward `[S, A]` at time t given the population distribution `mu_t [S]`."""
        if self._reward_fn is None:
            raise NotImplementedError(f"{type(self).__name__} defines no reward")
        return self._reward_fn(t, mu)

    def step_distribution(self, t: int, mu: np.ndarray, policy_t: np.ndarray) -> np.ndarray:
        """`mu_{t+1} [S]` from `mu_t [S]` and the policy at time t `[S, A]`.

        Default: push `mu_t` through `transition(t, mu_t)`. Games may override it with an
        equivalent structured step (e.g. to reproduce a reference's arithmetic order).
        """
        return push_forward(mu, policy_t, *self.transition(t, mu))

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        """Reward `[S]` collected at t = T given `mu_T`; zero by default."""
        if self._terminal_reward_fn is None:
            return np.zeros(self.num_states)
        return self._terminal_reward_fn(mu)

    def state_coordinates(self) -> dict[str, np.ndarray]:
        """Where each state sits, for pictures: `{"x": [S]}` on a line (the default), or
        `{"x": [S], "y": [S], "wall": [S] bool}` on a grid. Games on grids override it."""
        return {"x": np.arange(self.num_states)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, S={self.num_states}, A={self.num_actions}, T={self.horizon})"


class MultiPopulationGame:
    """A finite MFG with `P` populations sharing one state/action space.

    Shapes: `initial_distribution [P, S]`, `legal_actions [P, S, A]`,
    `transition(t, mu [P, S]) -> (next_state, prob)` each `[P, S, A, K]`,
    `reward(t, mu [P, S]) -> [P, S, A]`, `terminal_reward(mu [P, S]) -> [P, S]`.
    Population `p`'s player moves with kernel `p` and collects reward row `p`; the
    coupling between populations is only through `mu`. Subclasses override the methods.
    """

    transition_depends_on_mu: bool = False

    def __init__(
        self,
        num_populations: int,
        num_states: int,
        num_actions: int,
        horizon: int,
        initial_distribution: np.ndarray,
        legal_actions: np.ndarray | None = None,
        name: str = "mfg",
    ):
        self.num_populations = check_positive("num_populations", num_populations)
        self.num_states = check_positive("num_states", num_states)
        self.num_actions = check_positive("num_actions", num_actions)
        self.horizon = check_positive("horizon", horizon)
        self.name = name
        init = check_distribution(initial_distribution, self.num_states, "initial_distribution")
        if init.shape != (self.num_populations, self.num_states):
            raise ValueError(f"initial_distribution shape {init.shape} != {(self.num_populations, self.num_states)}")
        self.initial_distribution = init
        shape = (self.num_populations, self.num_states, self.num_actions)
        legal = np.ones(shape, dtype=bool) if legal_actions is None else np.asarray(legal_actions, dtype=bool)
        if legal.shape != shape:
            raise ValueError(f"legal_actions shape {legal.shape} != {shape}")
        if not legal.any(axis=-1).all():
            raise ValueError("every state needs at least one legal action")
        self.legal_actions = legal

    def transition(self, t: int, mu: np.ndarray) -> Kernel:
        raise NotImplementedError

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros((self.num_populations, self.num_states))

    def step_distribution(self, t: int, mu: np.ndarray, policy_t: np.ndarray) -> np.ndarray:
        """`mu_{t+1} [P, S]` from `mu_t [P, S]` and `policy_t [P, S, A]`."""
        return push_forward(mu, policy_t, *self.transition(t, mu))

    def state_coordinates(self) -> dict[str, np.ndarray]:
        """Where each state sits, for pictures (see `MeanFieldGame.state_coordinates`)."""
        return {"x": np.arange(self.num_states)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, P={self.num_populations}, S={self.num_states}, "
            f"A={self.num_actions}, T={self.horizon})"
        )


class _SinglePopulationView(MultiPopulationGame):
    """A `MeanFieldGame` seen as a one-population `MultiPopulationGame` (adds axis 0)."""

    def __init__(self, game: MeanFieldGame):
        self.game = game
        self.num_populations = 1
        self.num_states = game.num_states
        self.num_actions = game.num_actions
        self.horizon = game.horizon
        self.name = game.name
        self.initial_distribution = game.initial_distribution[None]
        self.legal_actions = game.legal_actions[None]
        self.transition_depends_on_mu = game.transition_depends_on_mu

    def transition(self, t: int, mu: np.ndarray) -> Kernel:
        next_state, prob = self.game.transition(t, mu[0])
        return next_state[None], prob[None]

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        return np.asarray(self.game.reward(t, mu[0]), dtype=np.float64)[None]

    def state_coordinates(self) -> dict[str, np.ndarray]:
        return self.game.state_coordinates()

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        return np.asarray(self.game.terminal_reward(mu[0]), dtype=np.float64)[None]

    def step_distribution(self, t: int, mu: np.ndarray, policy_t: np.ndarray) -> np.ndarray:
        return self.game.step_distribution(t, mu[0], policy_t[0])[None]


def as_multi_population(game: MeanFieldGame | MultiPopulationGame) -> MultiPopulationGame:
    """The population-batched view every solver works on (identity for multi-population games)."""
    if isinstance(game, MultiPopulationGame):
        return game
    if isinstance(game, MeanFieldGame):
        return _SinglePopulationView(game)
    raise TypeError(f"expected a MeanFieldGame or MultiPopulationGame, got {type(game).__name__}")
