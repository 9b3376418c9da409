"""Shared by the scoring benches: two ways of scoring the same items, timed side by side.

Each way is a function from a list of items to their verdicts. Every repeat runs the baseline and
then the candidate on each item set (alternating, so machine noise hits both alike), asserts the
verdicts are identical, and the medians are compared. The speed-up (baseline / candidate) is printed
last.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Score = Callable[[list], tuple[bool, ...]]


@contextmanager
def module_constant(module, name: str, value) -> Iterator[None]:
    """Sets a module-level constant for the duration of a block (how a bench switches a speed-up off)."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def timed(score: Score, items: list) -> tuple[float, tuple[bool, ...]]:
    started = time.perf_counter()
    verdicts = score(items)
    return time.perf_counter() - started, verdicts


def compare_ways(baseline: tuple[str, Score], candidate: tuple[str, Score], sets: dict[str, list],
                 repeats: int) -> float:
    """Times both ways on every item set; prints a line per set and the overall speed-up last, and returns it."""
    ways = dict([baseline, candidate])
    totals = dict.fromkeys(ways, 0.0)
    for label, items in sets.items():
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(repeats):
            verdicts = {}
            for name, score in ways.items():
                seconds, verdicts[name] = timed(score, items)
                times[name].append(seconds)
            assert len(set(verdicts.values())) == 1, f"{label}: the verdicts differ"
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, seconds in medians.items():
            totals[name] += seconds
        print(f"{label:16s} {len(items):4d} items  " + "   ".join(f"{name} {s:6.2f} s" for name, s in medians.items())
              + f"   speed-up {medians[baseline[0]] / medians[candidate[0]]:.2f}x")
    speed_up = totals[baseline[0]] / totals[candidate[0]]
    print("all sets: " + ", ".join(f"{name} {s:.2f} s" for name, s in totals.items()) + f", speed-up {speed_up:.2f}x")
    return speed_up
