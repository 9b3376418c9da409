"""Continual-learning metrics (DESIGN §3), as pure functions of the accuracy matrix.

R[i][j] is the score on domain j after learning domains 1..i; row 0 is before any training.
So R has T+1 rows and T columns. Domains are 1-based in the formulas, 0-based in the lists.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def _check(matrix: Matrix) -> int:
    tasks = len(matrix[0]) if matrix else 0
    if tasks == 0 or len(matrix) != tasks + 1 or any(len(row) != tasks for row in matrix):
        raise ValueError("accuracy matrix must have T+1 rows of T scores")
    return tasks


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def average_accuracy(matrix: Matrix) -> float:
    """mean_j R[T][j]."""
    tasks = _check(matrix)
    return sum(matrix[tasks]) / tasks


def learning_accuracy(matrix: Matrix) -> float:
    """mean_j R[j][j]: how well each domain was learned right after studying it."""
    tasks = _check(matrix)
    return sum(matrix[j][j - 1] for j in range(1, tasks + 1)) / tasks


def forgetting(matrix: Matrix) -> float | None:
    """mean over j < T of (max_{j <= i < T} R[i][j] - R[T][j]) (Chaudhry et al. 2018)."""
    tasks = _check(matrix)
    drops = [max(matrix[i][j - 1] for i in range(j, tasks)) - matrix[tasks][j - 1] for j in range(1, tasks)]
    return _mean(drops)


def backward_transfer(matrix: Matrix) -> float | None:
    """mean over j < T of (R[T][j] - R[j][j])."""
    tasks = _check(matrix)
    return _mean([matrix[tasks][j - 1] - matrix[j][j - 1] for j in range(1, tasks)])


def forward_transfer(matrix: Matrix) -> float | None:
    """mean over j > 1 of (R[j-1][j] - R[0][j])."""
    tasks = _check(matrix)
    return _mean([matrix[j - 1][j - 1] - matrix[0][j - 1] for j in range(2, tasks + 1)])


def general_retention(canary: Sequence[float | None] | None) -> float | None:
    """canary[T] / canary[0]; None when there is no canary or it started at zero."""
    if not canary or canary[0] in (None, 0) or canary[-1] is None:
        return None
    return canary[-1] / canary[0]


def worst_general_retention(canary: Sequence[float | None] | None) -> float | None:
    """min over i of canary[i] / canary[0]: the worst point a mid-stream model reached."""
    if not canary or canary[0] in (None, 0):
        return None
    return min(score / canary[0] for score in canary if score is not None)


def steps_to_fraction(curve: Sequence[tuple[int, float]], fraction: float = 0.9) -> int | None:
    """Optimizer steps until the score first reaches `fraction` of its final value.

    `curve` is (step, score) pairs in step order, the last being the final score.
    """
    if not curve:
        return None
    target = fraction * curve[-1][1]
    return next(step for step, score in curve if score >= target)


def learning_efficiency(curves: Sequence[Sequence[tuple[int, float]]]) -> list[int | None]:
    """One steps_to_fraction(0.9) per domain, from its in-domain learning curve."""
    return [steps_to_fraction(curve) for curve in curves]


def self_teaching_quality(self_taught: Sequence[float], reference: Sequence[float]) -> list[float | None]:
    """Per domain: score after self-generated material / score after the same budget of reference material."""
    return [s / r if r else None for s, r in zip(self_taught, reference, strict=True)]


def all_metrics(matrix: Matrix, canary: Sequence[float | None] | None,
                curves: Sequence[Sequence[tuple[int, float]]] | None = None,
                self_teaching: list[float | None] | None = None) -> dict:
    """Every metric of DESIGN §3 under its results.json key."""
    return {
        "average_accuracy": average_accuracy(matrix),
        "learning_accuracy": learning_accuracy(matrix),
        "forgetting": forgetting(matrix),
        "bwt": backward_transfer(matrix),
        "fwt": forward_transfer(matrix),
        "general_retention": general_retention(canary),
        "worst_general_retention": worst_general_retention(canary),
        "learning_efficiency": learning_efficiency(curves) if curves else None,
        "self_teaching_quality": self_teaching,
    }
