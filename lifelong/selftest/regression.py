"""When a score has regressed: pure functions of scores and item counts (DESIGN §5, self-testing).

A score is an accuracy over n items, so it carries binomial noise: with 40 items one item is 2.5
points. A drop counts as a regression only when it is both

- material: larger than max(abs_drop, rel_drop * before) (defaults 2 points and 5% relative), and
- beyond noise: the one-sided confidence interval of the difference of the two proportions
  (Newcombe's hybrid score interval, built from the two Wilson intervals) lies above zero.

Many small drops, none beyond noise alone, are caught by a trend test over the history of one
capability's scores: the least-squares slope over rounds, with its standard error from the
binomial variance of each point (pooled proportion, so a run of perfect scores still has a
variance); drift when the upper confidence bound of the slope is below zero and the fitted decline
over the window is material.

Sources: Wilson 1927, "Probable inference, the law of succession, and statistical inference";
Newcombe 1998, "Interval estimation for the difference between independent proportions:
comparison of eleven methods" (method 10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def z_value(confidence: float) -> float:
    """The one-sided normal quantile for `confidence` (0.95 -> 1.645)."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


def wilson_interval(successes: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion successes/n at normal quantile z (n = 0: the whole [0, 1])."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(successes / n, 0.0), 1.0)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def drop_interval(before: float, n_before: int, after: float, n_after: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the drop `before - after` of two proportions (scores in [0, 1])."""
    lo1, hi1 = wilson_interval(before * n_before, n_before, z)
    lo2, hi2 = wilson_interval(after * n_after, n_after, z)
    drop = before - after
    lower = drop - math.sqrt((before - lo1) ** 2 + (hi2 - after) ** 2)
    upper = drop + math.sqrt((hi1 - before) ** 2 + (after - lo2) ** 2)
    return lower, upper


def tolerance(before: float, abs_drop: float, rel_drop: float) -> float:
    """The largest drop that is not material: max(abs_drop, rel_drop * before)."""
    return max(abs_drop, rel_drop * before)


@dataclass(frozen=True)
class Verdict:
    """One comparison of a capability's score with its reference."""

    regressed: bool
    drop: float  # before - after (positive: worse)
    tolerance: float  # the material threshold
    lower: float  # lower confidence bound of the drop; > 0 means beyond noise
    reason: str

    def as_dict(self) -> dict:
        return {"regressed": self.regressed, "drop": round(self.drop, 4), "tolerance": round(self.tolerance, 4),
                "drop_lower_bound": round(self.lower, 4), "reason": self.reason}


def check_drop(before: float, after: float, n_before: int, n_after: int | None = None, *, abs_drop: float = 0.02,
               rel_drop: float = 0.05, confidence: float = 0.95) -> Verdict:
    """Regressed iff the drop is material (beyond max(abs, rel * before)) and beyond the noise n items allow."""
    n_after = n_before if n_after is None else n_after
    drop = before - after
    limit = tolerance(before, abs_drop, rel_drop)
    lower, _ = drop_interval(before, n_before, after, n_after, z_value(confidence))
    material, significant = drop > limit + 1e-12, lower > 0
    if material and significant:
        reason = f"dropped {drop:.3f} (> {limit:.3f}); beyond noise ({n_after} items, drop >= {lower:.3f})"
    elif material:
        reason = f"dropped {drop:.3f} (> {limit:.3f}) but within noise for {n_after} items"
    else:
        reason = f"drop {drop:.3f} within tolerance {limit:.3f}"
    return Verdict(material and significant, drop, limit, lower, reason)


@dataclass(frozen=True)
class Trend:
    """A least-squares trend over a capability's history (one point per round)."""

    drifting: bool
    slope: float  # score change per round
    upper: float  # upper confidence bound of the slope; < 0 means a real decline
    decline: float  # fitted decline over the window (first fitted - last fitted)
    tolerance: float
    points: int
    reason: str

    def as_dict(self) -> dict:
        return {"drifting": self.drifting, "slope": round(self.slope, 5), "slope_upper_bound": round(self.upper, 5),
                "decline": round(self.decline, 4), "tolerance": round(self.tolerance, 4), "points": self.points,
                "reason": self.reason}


def trend(scores: Sequence[float], items: Sequence[int] | int, *, abs_drop: float = 0.02, rel_drop: float = 0.05,
          confidence: float = 0.95, min_points: int = 4, window: int = 0) -> Trend:
    """Drift: a significant downward least-squares slope whose fitted decline over the window is material.

    `items` is the number of items behind each score (one number for all, or one per score). The
    slope's variance is sum (x - mean x)^2 var_i / Sxx^2 with var_i = p(1 - p) / n_i at the pooled
    proportion p. `window` > 0 keeps only the last `window` scores.
    """
    ys = [float(s) for s in scores]
    ns = [int(items)] * len(ys) if isinstance(items, int) else [int(n) for n in items]
    if len(ns) != len(ys):
        raise ValueError(f"{len(ys)} scores but {len(ns)} item counts")
    if window:
        ys, ns = ys[-window:], ns[-window:]
    k = len(ys)
    if k < max(min_points, 2):
        return Trend(False, 0.0, 0.0, 0.0, 0.0, k, f"{k} points; the trend test needs {max(min_points, 2)}")
    xs = list(range(k))
    mean_x, mean_y = sum(xs) / k, sum(ys) / k
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    pooled = sum(y * n for y, n in zip(ys, ns, strict=True)) / max(sum(ns), 1)
    pooled = min(max(pooled, 0.5 / max(sum(ns), 1)), 1 - 0.5 / max(sum(ns), 1))  # never a zero variance
    variance = sum((x - mean_x) ** 2 * pooled * (1 - pooled) / max(n, 1) for x, n in zip(xs, ns, strict=True))
    se = math.sqrt(variance) / sxx
    upper = slope + z_value(confidence) * se
    first_fit = mean_y + slope * (0 - mean_x)
    decline = -slope * (k - 1)
    limit = tolerance(first_fit, abs_drop, rel_drop)
    drifting = upper < 0 and decline > limit
    if drifting:
        reason = f"declining {-slope:.3f} per round over {k} rounds (fitted {decline:.3f} > {limit:.3f}), beyond noise"
    elif slope < 0 and upper >= 0:
        reason = f"slope {slope:.3f} per round within noise"
    elif slope < 0:
        reason = f"fitted decline {decline:.3f} within tolerance {limit:.3f}"
    else:
        reason = "no decline"
    return Trend(drifting, slope, upper, decline, limit, k, reason)
