"""Pure functions over candidate rewards: ranking, keeping, spreads and the per-round summary."""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Reward:
    """A candidate's quiz result: exact-match accuracy, and the mean answer log-probability that breaks ties."""

    accuracy: float
    likelihood: float

    @property
    def key(self) -> tuple[float, float]:
        return (self.accuracy, self.likelihood)


@dataclass(frozen=True)
class DocumentOutcome:
    """One document in one round: every candidate's reward, which were kept, the no-notes baseline, and
    the best candidate re-evaluated under other seeds (its first entry is the original evaluation)."""

    rewards: tuple[Reward, ...]
    kept: tuple[int, ...]
    baseline: Reward
    repeats: tuple[Reward, ...]


def derive_seed(*parts: object) -> int:
    """A stable seed from any parts (run seed, domain, round, document), independent of Python's hash salt."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def ranking(rewards: Sequence[Reward]) -> list[int]:
    """Candidate indices best first: accuracy, then answer likelihood; equal rewards keep their order."""
    return sorted(range(len(rewards)), key=lambda i: rewards[i].key, reverse=True)


def keep(rewards: Sequence[Reward], top_n: int, baseline: Reward | None = None) -> list[int]:
    """The top_n candidates; with a baseline, only those that beat it (ReST-EM's binary reward)."""
    best = ranking(rewards)[:top_n]
    if baseline is None:
        return best
    return [i for i in best if rewards[i].key > baseline.key]


def spread(values: Sequence[float]) -> float:
    """Population standard deviation; 0 for fewer than two finite values."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.pstdev(finite) if len(finite) > 1 else 0.0


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(sum(finite) / len(finite), 6) if finite else None


def summarize(outcomes: Sequence[DocumentOutcome]) -> dict:
    """Per-round figures, each a mean over documents: candidates' mean and best, the no-notes baseline,
    the spread between candidates against the spread between repeated evaluations of the same one."""
    acc = [[r.accuracy for r in o.rewards] for o in outcomes]
    lik = [[r.likelihood for r in o.rewards] for o in outcomes]
    best = [o.rewards[ranking(o.rewards)[0]] for o in outcomes]
    return {
        "documents": len(outcomes),
        "mean_score": _mean([sum(a) / len(a) for a in acc]),
        "best_score": _mean([b.accuracy for b in best]),
        "baseline_score": _mean([o.baseline.accuracy for o in outcomes]),
        "candidate_spread": _mean([spread(a) for a in acc]),
        "repeat_spread": _mean([spread([r.accuracy for r in o.repeats]) for o in outcomes]),
        "mean_likelihood": _mean([_mean(x) or -math.inf for x in lik]),
        "best_likelihood": _mean([b.likelihood for b in best]),
        "baseline_likelihood": _mean([o.baseline.likelihood for o in outcomes]),
        "candidate_spread_likelihood": _mean([spread(x) for x in lik]),
        "repeat_spread_likelihood": _mean([spread([r.likelihood for r in o.repeats]) for o in outcomes]),
        "kept": sum(len(o.kept) for o in outcomes),
    }
