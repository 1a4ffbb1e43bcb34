"""First-order least-core updates over a set of coalitions (the paper's iterative methods).

Both work on the rows `A` `[K, n]` (0/1) with values `v` `[K]` of the coalitions seen so
far, over payoffs on the efficient set X = {x : sum x = v(N)} (the efficient simplex
when x >= 0 is asked for):

* `saddle_point`: the least core is min_{x in X} max_{mu in simplex_K} mu^T (v - A x),
  a bilinear saddle point; solved by mirror prox (Euclidean steps on x, entropic steps
  on the Lagrange multipliers mu), returning the average of the extrapolated iterates.
* `penalty`: min_{x in X, eps} eps + (rho / 2) sum_k max(0, v_k - A_k x - eps + lam_k / rho)^2
  by accelerated projected gradient (FISTA), with the multipliers lam updated between
  rounds (the augmented Lagrangian), so rho can stay moderate and eps is not biased by 1/rho.

Values are rescaled to O(1) inside, so the step sizes need no tuning per game.
"""

from __future__ import annotations

import numpy as np


def project_simplex(y: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of `y` `[n]` onto {x >= 0, sum x = total} (sort-based)."""
    if total < 0:
        raise ValueError(f"the efficient simplex needs v(N) >= 0, got {total}")
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - total
    idx = np.arange(1, len(y) + 1)
    cond = u - css / idx > 0
    r = idx[cond][-1]
    theta = css[r - 1] / r
    return np.maximum(y - theta, 0.0)


def project_efficient(y: np.ndarray, total: float, nonnegative: bool) -> np.ndarray:
    """Projection onto the efficient hyperplane (or the efficient simplex when `nonnegative`)."""
    if nonnegative:
        return project_simplex(y, total)
    return y + (total - y.sum()) / len(y)


def squared_norm(m: np.ndarray, iterations: int) -> float:
    """|M|_2^2 (the largest eigenvalue of M^T M) by power iteration from the all-ones vector."""
    u = np.ones(m.shape[1]) / np.sqrt(m.shape[1])
    for _ in range(iterations):
        u = m.T @ (m @ u)
        u /= np.linalg.norm(u)
    return float(np.linalg.norm(m @ u)) ** 2


def _scale(values: np.ndarray, total: float) -> float:
    return float(max(np.abs(values).max(initial=0.0), abs(total), 1e-12))


def saddle_point(
    a: np.ndarray,
    v: np.ndarray,
    x: np.ndarray,
    log_mu: np.ndarray,
    total: float,
    nonnegative: bool,
    iterations: int,
    step_size: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror prox from (x, mu = softmax(log_mu)); returns (average payoff `[n]`, last log_mu `[K]`)."""
    s = _scale(v, total)
    vs, xs, t = v / s, x / s, total / s
    n = a.shape[1]
    size = max(float(a.sum(axis=1).max(initial=1.0)), 1.0)
    gamma = step_size / np.sqrt(size)
    eta_x = gamma * max(abs(t), 1.0) / np.sqrt(n)
    eta_mu = gamma
    lm = log_mu - log_mu.max()
    avg = np.zeros_like(xs)

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    for _ in range(iterations):
        mu = softmax(lm)
        xh = project_efficient(xs + eta_x * (a.T @ mu), t, nonnegative)
        lmh = lm + eta_mu * (vs - a @ xs)
        muh = softmax(lmh)
        xs = project_efficient(xs + eta_x * (a.T @ muh), t, nonnegative)
        lm = lm + eta_mu * (vs - a @ xh)
        lm -= lm.max()
        avg += xh
    return project_efficient(avg / max(iterations, 1) * s, total, nonnegative), lm


def penalty(
    a: np.ndarray,
    v: np.ndarray,
    x: np.ndarray,
    eps: float,
    lam: np.ndarray,
    total: float,
    nonnegative: bool,
    rho: float,
    iterations: int,
    rounds: int = 10,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Quadratic penalty with multiplier updates (augmented Lagrangian) on the constraints
    g_k = v_k - A_k x - eps <= 0:  min eps + (1 / 2 rho) sum_k [max(0, lam_k + rho g_k)^2 - lam_k^2],
    by FISTA for iterations / rounds steps, then lam <- max(0, lam + rho g), `rounds` times.

    Returns (payoff `[n]`, eps, multipliers `[K]`); the multipliers sum to about one at the optimum.
    """
    s = _scale(v, total)
    vs, t = v / s, total / s
    z = np.concatenate([x / s, [eps / s]])
    m = np.hstack([a.astype(np.float64), np.ones((len(a), 1))])
    # Lipschitz constant of the gradient: rho * ||M||_2^2 (power iteration)
    lip = rho * squared_norm(m, 30) * 1.05 + 1e-12
    lam = np.maximum(np.asarray(lam, np.float64), 0.0)
    per_round = max(iterations // rounds, 1)
    for _ in range(rounds):
        y, z_prev, k = z.copy(), z.copy(), 1.0
        for _ in range(per_round):
            r = np.maximum(lam + rho * (vs - m @ y), 0.0)
            grad = -(m.T @ r)
            grad[-1] += 1.0
            z_new = y - grad / lip
            z_new[:-1] = project_efficient(z_new[:-1], t, nonnegative)
            k_new = 0.5 * (1 + np.sqrt(1 + 4 * k * k))
            y = z_new + (k - 1) / k_new * (z_new - z_prev)
            z_prev, k = z_new, k_new
        z = z_prev
        lam = np.maximum(lam + rho * (vs - m @ z), 0.0)
    return z[:-1] * s, float(z[-1] * s), lam


def proximal_master(
    a: np.ndarray,
    v: np.ndarray,
    centre: np.ndarray,
    t: float,
    lam: np.ndarray,
    total: float,
    nonnegative: bool,
    tolerance: float = 1e-3,
    iterations: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """The proximal bundle master: min over efficient x of max_k (v_k - A_k x) + |x - centre|^2 / (2 t).

    Solved through its dual, max over lam in the simplex of
    g(lam) = min_x [lam^T (v - A x) + |x - centre|^2 / (2 t)], whose minimiser is
    x(lam) = project_efficient(centre + t A^T lam) and whose gradient is v - A x(lam)
    (Lipschitz t |A|^2), by FISTA with simplex projections from the given `lam` (warm start,
    `[K]` >= 0). It stops when the duality gap is below `tolerance` times the predicted
    decrease max_k (v_k - A_k centre) - max_k (v_k - A_k x) (at least 1e-6 of the values' scale), or
    after `iterations` steps. Returns (x `[n]`, lam `[K]`):
    lam > 0 marks the coalitions the model leans on.
    """
    a = np.asarray(a, np.float64)
    lam = np.asarray(lam, np.float64)
    lam = project_simplex(lam, 1.0) if lam.shape == v.shape and lam.sum() > 0 else np.full(len(v), 1.0 / len(v))
    lip = t * squared_norm(a, 20) * 1.05 + 1e-300
    centre_model = float(np.max(v - a @ centre))

    def primal(weights: np.ndarray) -> np.ndarray:
        return project_efficient(centre + t * (a.T @ weights), total, nonnegative)

    y, k = lam.copy(), 1.0
    for step in range(iterations):
        z = project_simplex(y + (v - a @ primal(y)) / lip, 1.0)
        k_new = 0.5 * (1 + np.sqrt(1 + 4 * k * k))
        y = z + (k - 1) / k_new * (z - lam)
        lam, k = z, k_new
        if step % 25 == 24:
            x = primal(lam)
            residual = v - a @ x
            model = float(np.max(residual))
            # gap = P(x) - g(lam): the model plus prox term at x, less the dual value at lam
            gap = model - float(lam @ residual)
            if gap <= tolerance * max(centre_model - model, 1e-6 * _scale(v, total)):
                break
    return primal(lam), lam
