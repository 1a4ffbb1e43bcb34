"""Exact separation for games that are sums of conjunction rules, by mixed-integer programming.

An MC-net rule r (positive literals P_r, negative literals N_r, value c_r) pays c_r to S
when P_r is inside S and N_r outside it; an induced subgraph game is the MC-net whose rules
are its edges ({i, j} positive, c = w_ij). The most violated least-core constraint at a
payoff x is then

    max  sum_r c_r z_r - sum_i x_i s_i     over s in {0, 1}^n, z in [0, 1]^R
    s.t. z_r <= s_i (i in P_r),  z_r <= 1 - s_j (j in N_r)      where c_r > 0
         z_r >= 1 - sum_{P_r} (1 - s_i) - sum_{N_r} s_j         where c_r < 0
         1 <= sum_i s_i <= n - 1                                 (proper, non-empty)

With s binary the linearisation is exact: a positive rule's z_r rises to the conjunction
and a negative rule's z_r falls to it. HiGHS solves it; with a time limit the result is a
proven bracket (the best coalition found, and the dual bound on the largest excess).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIP_REL_GAP = 1e-9
MIP_ABS_GAP = 1e-9


@dataclass(frozen=True)
class Separation:
    """coalitions `[k, n]` bool (largest excess first), excess `[k]`, upper_bound (>= excess[0]:
    a proven bound on the largest excess over all proper non-empty coalitions), optimal."""

    coalitions: np.ndarray
    excess: np.ndarray
    upper_bound: float
    optimal: bool


def _rows(positive: np.ndarray, negative: np.ndarray, values: np.ndarray, payoff: np.ndarray, at_least):
    """Constraint rows (CSR parts and bounds) over columns [s_0..s_{n-1}, z_0..z_{R-1}]."""
    n = positive.shape[1]
    lower, upper, starts, index, coef = [], [], [0], [], []

    def add(cols, vals, lo, hi):
        index.extend(cols)
        coef.extend(vals)
        starts.append(len(index))
        lower.append(lo)
        upper.append(hi)

    for r, value in enumerate(values):
        z = n + r
        pos, neg = np.flatnonzero(positive[r]), np.flatnonzero(negative[r])
        if value > 0:
            for i in pos:
                add([z, int(i)], [1.0, -1.0], -np.inf, 0.0)
            for j in neg:
                add([z, int(j)], [1.0, 1.0], -np.inf, 1.0)
        else:
            add([z, *pos.tolist(), *neg.tolist()], [1.0] + [-1.0] * len(pos) + [1.0] * len(neg), 1.0 - len(pos), np.inf)
    add(list(range(n)), [1.0] * n, 1.0, n - 1.0)
    if at_least is not None:
        add(list(range(n + len(values))), [-float(v) for v in payoff] + [float(v) for v in values], at_least, np.inf)
    return (
        np.asarray(lower),
        np.asarray(upper),
        np.asarray(starts, np.int32),
        np.asarray(index, np.int32),
        np.asarray(coef, np.float64),
    )


def separate_rules(
    positive: np.ndarray,
    negative: np.ndarray,
    values: np.ndarray,
    payoff: np.ndarray,
    evaluate,
    k: int = 1,
    time_limit: float | None = None,
    at_least: float | None = None,
    max_solutions: int | None = None,
) -> Separation:
    """The proper non-empty coalitions of largest excess v(S) - x(S) of the rule game
    (`positive`, `negative` `[R, n]` bool, `values` `[R]`), solved by HiGHS.

    `evaluate([B, n] bool) -> [B]` is the game's own characteristic function: the excess of
    every returned coalition is recomputed with it, not read off the MILP. Besides the optimum,
    up to k - 1 improving solutions HiGHS met on the way are returned (distinct, largest first).

    For cutting planes: `at_least` adds the row "excess >= at_least", so the MILP only looks for
    violated coalitions and, when there is none, proves it by infeasibility (then no rows are
    returned and upper_bound = at_least); `max_solutions` stops it after that many improving
    coalitions (optimal is then False: the rows are violated, not necessarily the most).
    """
    import highspy

    n = positive.shape[1]
    keep = values != 0
    pos, neg, c = positive[keep], negative[keep], values[keep]
    num_rules = len(c)
    x = np.asarray(payoff, np.float64)
    lower, upper, starts, index, coef = _rows(pos, neg, c, x, at_least)
    lp = highspy.HighsLp()
    lp.num_col_ = n + num_rules
    lp.num_row_ = len(lower)
    lp.col_cost_ = np.concatenate([-x, c])
    lp.col_lower_ = np.zeros(n + num_rules)
    lp.col_upper_ = np.ones(n + num_rules)
    lp.row_lower_ = lower
    lp.row_upper_ = upper
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = coef
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous] * num_rules
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    return finish_mip(h, n, x, evaluate, k, time_limit, at_least, max_solutions)


def finish_mip(h, n: int, x: np.ndarray, evaluate, k: int, time_limit, at_least, max_solutions) -> Separation:
    """Run the separation MILP loaded in HiGHS `h` (columns 0..n-1 the binary memberships, its
    objective the excess) and read off the Separation, as `separate_rules` describes."""
    import highspy

    h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
    h.setOptionValue("mip_abs_gap", MIP_ABS_GAP)
    h.setOptionValue("mip_improving_solution_save", k > 1)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    if max_solutions is not None:
        h.setOptionValue("mip_max_improving_sols", int(max_solutions))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    ok = highspy.HighsModelStatus
    if at_least is not None and status == ok.kInfeasible:  # proven: no coalition reaches at_least
        return Separation(np.zeros((0, n), bool), np.zeros(0), float(at_least), True)
    if status not in (ok.kOptimal, ok.kTimeLimit, ok.kSolutionLimit):
        raise RuntimeError(f"the separation MILP failed: {h.modelStatusToString(status)}")
    optimal = status == ok.kOptimal
    floor = -np.inf if at_least is None else float(at_least)
    bound = max(float(info.mip_dual_bound), floor)  # HiGHS stops within MIP_ABS_GAP of its dual bound
    found = []
    if info.primal_solution_status == 2:  # a feasible point exists
        found.append(np.asarray(h.getSolution().col_value[:n]))
    if k > 1:
        found += [np.asarray(sol.col_value[:n]) for sol in h.getSavedMipSolutions()]
    rows = np.round(np.array(found).reshape(len(found), n)) > 0.5
    sizes = rows.sum(axis=1)
    rows = rows[(sizes > 0) & (sizes < n)]
    if len(rows) == 0:
        return Separation(rows, np.zeros(0), bound, optimal)
    _, first = np.unique(np.packbits(rows, axis=1), axis=0, return_index=True)
    rows = rows[np.sort(first)]
    ex = evaluate(rows) - rows @ x
    order = np.argsort(-ex, kind="stable")[:k]
    return Separation(rows[order], ex[order], max(bound, float(ex[order[0]])), optimal)
