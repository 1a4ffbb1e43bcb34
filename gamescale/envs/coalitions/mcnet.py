"""Marginal contribution networks (Ieong & Shoham 2005): v(S) is the sum of the values of
the rules that apply to S; a rule applies when S holds all its positive literals and none
of its negative ones. Shapley values have a closed form rule by rule; separation is exact
by mixed-integer programming (`separation.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np

from gamescale.envs.coalitions.game import CoalitionGame, check_num_players, check_payoff
from gamescale.envs.coalitions.separation import Separation, separate_rules


class MCNet(CoalitionGame):
    """positive `[R, n]` bool, negative `[R, n]` bool (disjoint per rule, at least one literal), values `[R]`."""

    name = "mc_net"
    has_exact_oracle = True
    oracle_time_limit: float | None = None  # seconds per separation MILP (None: until proven)

    def __init__(self, num_players: int, positive: np.ndarray, negative: np.ndarray, values: np.ndarray):
        self.num_players = n = check_num_players(num_players)
        pos, neg = np.asarray(positive, bool), np.asarray(negative, bool)
        vals = np.asarray(values, np.float64)
        if pos.ndim != 2 or pos.shape != neg.shape or pos.shape[1] != n or vals.shape != (len(pos),):
            raise ValueError(f"rules must be [R, {n}] positive/negative masks with [R] values")
        if len(vals) == 0:
            raise ValueError("an MC-net needs at least one rule")
        if np.any(pos & neg):
            r = int(np.argmax((pos & neg).any(axis=1)))
            raise ValueError(f"rule {r} has a player both as a positive and a negative literal")
        if np.any((pos | neg).sum(axis=1) == 0):
            raise ValueError("every rule needs at least one literal")
        if not np.all(np.isfinite(vals)):
            raise ValueError("rule values must be finite")
        self.positive, self.negative, self.rule_values = pos, neg, vals
        self._pos_t = pos.T.astype(np.float32)
        self._neg_t = neg.T.astype(np.float32)
        self._num_pos = pos.sum(axis=1).astype(np.float32)

    @classmethod
    def from_rules(cls, num_players: int, rules: Sequence[dict]) -> MCNet:
        """rules: [{positive: [players], negative: [players], value: float}, ...]."""
        n = check_num_players(num_players)
        pos = np.zeros((len(rules), n), bool)
        neg = np.zeros((len(rules), n), bool)
        vals = np.zeros(len(rules))
        for r, rule in enumerate(rules):
            for key, mask in (("positive", pos), ("negative", neg)):
                for p in rule.get(key, []):
                    if int(p) != p or not 0 <= p < n:
                        raise ValueError(f"MC-net rule {r} names unknown player {p!r}; players are 0..{n - 1}")
                    mask[r, int(p)] = True
            vals[r] = float(rule["value"])
        return cls(n, pos, neg, vals)

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        s = coalitions.astype(np.float32)
        applies = (s @ self._pos_t == self._num_pos) & (s @ self._neg_t == 0)
        return applies.astype(np.float64) @ self.rule_values

    def flip_values(self, coalitions: np.ndarray) -> np.ndarray:
        return self.values(coalitions)[:, None] + self.flip_deltas(coalitions)

    def flip_deltas(self, coalitions: np.ndarray) -> np.ndarray:
        # with c_r the satisfied literals of rule r (held positives + absent negatives) and k_r its
        # literals, flipping i moves c_r by one for every rule naming i: an unsatisfied literal of i
        # (i positive and out, or negative and in) switches on the rules at c = k - 1, and a
        # satisfied one switches off the rules that apply (c = k, where every literal is
        # satisfied). Sparse products over the literals: O(m L) instead of O(m R n)
        diff, pos_t, neg_t, both_t = self._sparse_rules()
        s_t = coalitions.T.astype(np.float64)  # [n, m]
        c = diff @ s_t + self._num_neg[:, None]  # [R, m]
        on = self.rule_values[:, None] * (c == self._num_literals[:, None] - 1)
        applies = self.rule_values[:, None] * (c == self._num_literals[:, None])
        gain = (1.0 - s_t) * (pos_t @ on) + s_t * (neg_t @ on) - both_t @ applies
        return gain.T

    def _sparse_rules(self):
        if getattr(self, "_sparse", None) is None:
            from scipy.sparse import csr_matrix  # lazy: the registries import this module light

            pos, neg = self.positive.astype(np.float64), self.negative.astype(np.float64)
            self._num_neg = neg.sum(axis=1)
            self._num_literals = pos.sum(axis=1) + self._num_neg
            self._sparse = (csr_matrix(pos - neg), csr_matrix(pos.T), csr_matrix(neg.T), csr_matrix((pos + neg).T))
        return self._sparse

    def shapley_closed_form(self) -> np.ndarray:
        """Per rule with p positive and q negative literals and value v: each positive player
        gets v / (p C(p+q, q)) and each negative player -v / (q C(p+q, p))."""
        p = self.positive.sum(axis=1)
        q = self.negative.sum(axis=1)
        total = p + q
        binom = np.array([comb(int(t), int(k)) for t, k in zip(total, q, strict=True)], np.float64)
        share_pos = np.where(p > 0, self.rule_values / np.maximum(p, 1) / binom, 0.0)
        share_neg = np.where(q > 0, -self.rule_values / np.maximum(q, 1) / binom, 0.0)
        return self.positive.T.astype(float) @ share_pos + self.negative.T.astype(float) @ share_neg

    def separate(self, payoff: np.ndarray, k: int = 1, time_limit: float | None = None, **options) -> Separation:
        """The coalitions of largest excess at `payoff` by MILP (a proven bracket if `time_limit` hits);
        options: `at_least`, `max_solutions` of `separate_rules`."""
        x = check_payoff(payoff, self.num_players)
        return separate_rules(self.positive, self.negative, self.rule_values, x, self.values, k, time_limit, **options)

    def most_violated(self, payoff: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact: the optimum of the separation MILP first, then other large-excess coalitions it met."""
        found = self.separate(payoff, k, self.oracle_time_limit)
        if not found.optimal or len(found.excess) == 0:
            raise RuntimeError(f"the separation MILP hit its {self.oracle_time_limit} s limit unproven")
        return found.coalitions, found.excess

    def describe(self) -> dict:
        return {**super().describe(), "rules": len(self.rule_values)}


def random_mc_net(
    num_players: int,
    seed: int = 0,
    num_rules: int | None = None,
    max_positive: int = 3,
    max_negative: int = 1,
    min_value: float = 0.0,
    max_value: float = 1.0,
) -> MCNet:
    """`num_rules` (default 2n) rules; 1..max_positive positive and 0..max_negative negative literals
    (distinct players), values uniform in [min_value, max_value]."""
    n = check_num_players(num_players)
    rules_count = 2 * n if num_rules is None else num_rules
    if rules_count < 1:
        raise ValueError(f"num_rules must be at least 1, got {rules_count}")
    if max_positive < 1 or max_negative < 0 or max_positive + max_negative > n:
        raise ValueError(f"need 1 <= max_positive and max_positive + max_negative <= {n}")
    rng = np.random.default_rng(seed)
    pos = np.zeros((rules_count, n), bool)
    neg = np.zeros((rules_count, n), bool)
    num_pos = rng.integers(1, max_positive + 1, size=rules_count)
    num_neg = rng.integers(0, max_negative + 1, size=rules_count)
    order = np.argsort(rng.random((rules_count, n)), axis=1)
    rows = np.arange(rules_count)[:, None]
    ranks = np.arange(n)[None, :]
    pos[rows, order] = ranks < num_pos[:, None]
    neg[rows, order] = (ranks >= num_pos[:, None]) & (ranks < (num_pos + num_neg)[:, None])
    values = rng.uniform(min_value, max_value, size=rules_count)
    return MCNet(n, pos, neg, values)
