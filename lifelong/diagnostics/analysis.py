"""Diagnostics beside forgetting: one row per (round, earlier domain or canary), and which measurement tracks it.

Forgetting of a source in round i is R[i-1][j] - R[i][j] from the accuracy matrix (the canary's from
its row of scores): the score it lost while domain i was learned. Each row carries that pair's own
measurements (gradient cosine with the new domain, layer attribution) and the round's (CKA, drift,
sharpness, rotation, collapse); `correlations` gives, for every measurement, Pearson's r and
Spearman's rho with the forgetting across the rows. With a few rounds there are few rows, and round-level
measurements take one value per round, so these are descriptions of one run, not tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable

CANARY = "canary"


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _largest(mapping) -> float | None:
    """The value at the largest radius of a {str(rho): value} mapping."""
    if not isinstance(mapping, dict) or not mapping:
        return None
    try:
        key = max(mapping, key=float)
    except ValueError:
        return None
    return _num(mapping[key])


def _get(event: dict, *path):
    for key in path:
        if not isinstance(event, dict):
            return None
        event = event.get(key)
    return event


def _change(event: dict, key: str) -> float | None:
    """How much a collapse statistic fell in the round (before - after)."""
    before, after = _num(_get(event, "collapse", "before", key)), _num(_get(event, "collapse", "after", key))
    return before - after if before is not None and after is not None else None


def _one_minus(value) -> float | None:
    value = _num(value)
    return None if value is None else 1.0 - value


# (key, label, how it is read from a row's round event; the pair's own measurements are added per row)
ROUND_MEASURES: list[tuple[str, str, Callable[[dict], float | None]]] = [
    ("cka_loss", "1 - mean CKA over layers", lambda e: _one_minus(_get(e, "drift", "cka_mean"))),
    ("cka_min_loss", "1 - lowest CKA of a layer", lambda e: _one_minus(_get(e, "drift", "cka_min"))),
    ("cka_robust_loss", "1 - mean CKA without the 2 largest-variance channels",
     lambda e: _one_minus(_get(e, "drift", "cka_robust_mean"))),
    ("attention_drift_lower", "attention-output drift, lower layers", lambda e: _num(_get(e, "drift",
                                                                                       "attention_drift_lower"))),
    ("attention_drift_upper", "attention-output drift, upper layers", lambda e: _num(_get(e, "drift",
                                                                                       "attention_drift_upper"))),
    ("sharpness_gradient", "sharpness, gradient direction (largest radius)",
     lambda e: _largest(_get(e, "sharpness", "gradient"))),
    ("sharpness_random", "sharpness, random directions (largest radius)",
     lambda e: _largest(_get(e, "sharpness", "random"))),
    ("gradient_norm", "gradient norm of the new domain's loss at the round's end",
     lambda e: _num(_get(e, "sharpness", "gradient_norm"))),
    ("rotation_residual", "non-rotational drift (Procrustes residual, mean over layers)",
     lambda e: _num(_get(e, "rotation", "residual_mean"))),
    ("rotation_unexplained", "share of drift a rotation does not explain (held out, pooled over layers)",
     lambda e: _one_minus(_get(e, "rotation", "heldout_explained_total"))),
    ("distinct_2_fall", "fall in distinct-2 of free generations", lambda e: _change(e, "distinct_2")),
    ("entropy_fall", "fall in predictive entropy of free generations", lambda e: _change(e, "predictive_entropy")),
]
PAIR_MEASURES: list[tuple[str, str]] = [
    ("gradient_cosine", "gradient cosine, new domain vs this source (all weights)"),
]
MEASURES = PAIR_MEASURES + [(key, label) for key, label, _ in ROUND_MEASURES]


def round_events(records: list[dict]) -> dict[int, dict]:
    """The diagnostics event of every round (the last one, if a resumed run logged a round twice)."""
    events = {}
    for record in records:
        if isinstance(record, dict) and record.get("event") == "diagnostics" and isinstance(record.get("round"), int):
            events[record["round"]] = record
    return dict(sorted(events.items()))


def _score(results: dict, row: int, source: str) -> float | None:
    if source == CANARY:
        canary = results.get("canary") or []
        return _num(canary[row]) if row < len(canary) else None
    domains = list(results.get("domains") or [])
    matrix = results.get("accuracy_matrix") or []
    if source not in domains or row >= len(matrix) or not isinstance(matrix[row], list):
        return None
    column = domains.index(source)
    return _num(matrix[row][column]) if column < len(matrix[row]) else None


def pairs(results: dict, records: list[dict]) -> list[dict]:
    """One row per (round, earlier domain or canary) that a diagnostics event measured."""
    rows = []
    for number, event in round_events(records).items():
        sources = list(event.get("earlier") or [])
        if CANARY in (event.get("scores") or {}) or CANARY in (event.get("gradient_conflict") or {}):
            sources.append(CANARY)
        round_values = {key: read(event) for key, _, read in ROUND_MEASURES}
        for source in sources:
            before, after = _score(results, number - 1, source), _score(results, number, source)
            cosines = _get(event, "gradient_conflict", source, "cosine") or {}
            rows.append({
                "round": number, "learned": event.get("domain"), "source": source,
                "before": before, "after": after,
                "forgetting": before - after if before is not None and after is not None else None,
                "probe_drop": _num(_get(event, "scores", source, "drop")),
                "gradient_cosine": _num(cosines.get("all")) if isinstance(cosines, dict) else None,
                "gradient_cosines": cosines if isinstance(cosines, dict) else {},
                "returned": _get(event, "attribution", "returned", source) or {},
                **round_values,
            })
    return rows


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2  # ties share their mean rank
        i = j + 1
    return ranks


def pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def spearman(xs: list[float], ys: list[float]) -> float | None:
    return pearson(_ranks(xs), _ranks(ys)) if len(xs) >= 3 else None


def correlations(rows: list[dict], target: str = "forgetting") -> list[dict]:
    """Per measurement: the rows with both values, Pearson's r and Spearman's rho with `target`."""
    out = []
    for key, label in MEASURES:
        points = [(r[key], r[target]) for r in rows if _num(r.get(key)) is not None and _num(r.get(target)) is not None]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        out.append({"measure": key, "label": label, "n": len(points), "distinct": len(set(xs)),
                    "pearson": pearson(xs, ys), "spearman": spearman(xs, ys)})
    return out
