"""Polynomial (power-law) convergence fits and teacher-hacking detection (2502.02671).

A distance that converges polynomially follows `d(t) = a * t ** (-b)`, a straight line
on log-log axes; `fit_power_law` fits it by least squares in log space. Teacher hacking
is flagged when the golden distance (student vs oracle) leaves its law and rises while
the proxy distance (student vs teacher) keeps falling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLaw:
    """`d(t) = a * t ** (-b)` fitted on `t` in [t_start, t_end]; `r2` in log space."""

    a: float
    b: float
    r2: float
    t_start: float
    t_end: float

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(t, dtype=np.float64) ** (-self.b)


def fit_power_law(t: np.ndarray, d: np.ndarray) -> PowerLaw:
    """Least-squares fit of log d = log a - b log t (needs >= 2 points with t, d > 0)."""
    t, d = np.asarray(t, dtype=np.float64), np.asarray(d, dtype=np.float64)
    keep = (t > 0) & (d > 0) & np.isfinite(d)
    if keep.sum() < 2:
        raise ValueError(f"a power law needs at least 2 positive points, got {int(keep.sum())}")
    x, y = np.log(t[keep]), np.log(d[keep])
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / total if total > 0 else 1.0
    return PowerLaw(
        a=float(np.exp(intercept)), b=float(-slope), r2=float(r2), t_start=float(t[keep][0]), t_end=float(t[keep][-1])
    )


def departure_index(t: np.ndarray, d: np.ndarray, law: PowerLaw, tolerance: float, start: int = 0) -> int | None:
    """First index i >= start from which `d` stays above `law` by more than `tolerance`
    (relative) for every later point; None when it never does."""
    above = np.asarray(d, dtype=np.float64) > law(t) * (1.0 + tolerance)
    above[:start] = False
    if not above[-1]:
        return None
    below = np.flatnonzero(~above)
    return int(below[-1] + 1) if len(below) else start


@dataclass(frozen=True)
class HackingReport:
    """Outcome of `detect_teacher_hacking`.

    detected: the golden distance rose by more than `min_rise` (relative) above its minimum
        while the proxy distance fell after that minimum and is still falling at the end.
    onset_step: the step from which the golden distance stays above its power law
        (fitted before its minimum); the golden minimum's step when the law cannot be fitted.
    golden_min_step, golden_rise: where the golden distance is lowest, and final / min - 1.
    proxy_drop_after_onset: 1 - proxy(end) / proxy(onset).
    proxy_law, golden_law: the fitted laws (None when too few points).
    proxy_departure_step: the oracle-free diagnostic: the step from which the proxy stays
        above its own early power law (None when it never leaves it).
    """

    detected: bool
    onset_step: float | None
    golden_min_step: float
    golden_rise: float
    proxy_drop_after_onset: float
    proxy_law: PowerLaw | None
    golden_law: PowerLaw | None
    proxy_departure_step: float | None


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of each point and the `window - 1` before it (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.concatenate(([0.0], values)))
    index = np.arange(1, len(values) + 1)
    lower = np.maximum(index - window, 0)
    return (sums[index] - sums[lower]) / (index - lower)


def detect_teacher_hacking(
    steps: np.ndarray,
    proxy: np.ndarray,
    golden: np.ndarray,
    min_rise: float = 0.05,
    fit_start: int = 1,
    tolerance: float = 0.05,
    tail: int = 5,
    smooth: int = 1,
) -> HackingReport:
    """Flag teacher hacking in curves measured at `steps` (increasing, > 0).

    Both curves are first smoothed by a trailing mean over `smooth` points (SGD noise of
    online runs is not a rise). The golden law is fitted on the smoothed points
    [fit_start, argmin golden] and the onset is where the golden curve leaves it for good
    (by more than `tolerance`); the proxy law is fitted on the same window. `tail` points at the end decide whether the
    proxy is still falling (least-squares slope of log proxy vs log step < 0).
    """
    steps = np.asarray(steps, dtype=np.float64)
    if not (len(steps) == len(proxy) == len(golden)) or len(steps) == 0:
        raise ValueError("steps, proxy and golden must be non-empty and of equal length")
    proxy = trailing_mean(proxy, smooth)
    golden = trailing_mean(golden, smooth)
    i_min = int(np.argmin(golden))
    golden_rise = float(golden[-1] / golden[i_min] - 1.0) if golden[i_min] > 0 else 0.0
    golden_law = proxy_law = None
    onset = i_min
    if i_min - fit_start + 1 >= 3:
        window = slice(fit_start, i_min + 1)
        golden_law = fit_power_law(steps[window], golden[window])
        proxy_law = fit_power_law(steps[window], proxy[window])
        left = departure_index(steps, golden, golden_law, tolerance, start=i_min)
        onset = i_min if left is None else left
    proxy_departure = None
    if proxy_law is not None:
        j = departure_index(steps, proxy, proxy_law, tolerance, start=i_min)
        proxy_departure = None if j is None else float(steps[j])
    k = max(2, min(tail, len(steps)))
    tail_slope = (
        np.polyfit(np.log(steps[-k:]), np.log(np.maximum(proxy[-k:], 1e-300)), 1)[0] if len(steps) >= 2 else 0.0
    )
    proxy_drop = float(1.0 - proxy[-1] / proxy[onset]) if proxy[onset] > 0 else 0.0
    detected = bool(golden_rise > min_rise and i_min < len(steps) - 1 and proxy_drop > 0 and tail_slope < 0)
    return HackingReport(
        detected=detected,
        onset_step=float(steps[onset]) if detected else None,
        golden_min_step=float(steps[i_min]),
        golden_rise=golden_rise,
        proxy_drop_after_onset=proxy_drop,
        proxy_law=proxy_law,
        golden_law=golden_law,
        proxy_departure_step=proxy_departure,
    )
