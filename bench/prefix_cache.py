"""Scoring speed with the shared few-shot prefix cache against without it, in one process.

The few-shot examples open every scoring prompt; the evaluator computes their keys and values once
and runs only the rest of each prompt. This bench scores the same items both ways, alternating
repeats to cancel machine noise, checks the verdicts are identical, and prints the ratio last.

    python bench/prefix_cache.py --model smollm2-135m --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import lifelong.evaluation.evaluator as evaluator_module
from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.models import load_model


def timed_score(evaluator, model, items, share_prefix: bool) -> tuple[float, tuple[bool, ...]]:
    original = evaluator_module.MIN_SHARED_PREFIX
    evaluator_module.MIN_SHARED_PREFIX = original if share_prefix else 10**9
    try:
        started = time.perf_counter()
        verdicts = evaluator.score_items(model, items).correct
        return time.perf_counter() - started, verdicts
    finally:
        evaluator_module.MIN_SHARED_PREFIX = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--stream", default="example")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    model, tokenizer = load_model(args.model)
    stream = load_stream(args.stream)
    items = [item for domain in [*stream.domains, stream.canary] if domain for item in domain.eval_items]
    evaluator = evaluator_module.Evaluator(EvaluationConfig(progress=False, batch_size=args.batch_size), tokenizer)
    timed_score(evaluator, model, items[:8], True)  # warm-up
    shared, plain = [], []
    for _ in range(args.repeats):
        seconds, with_cache = timed_score(evaluator, model, items, True)
        shared.append(seconds)
        seconds, without = timed_score(evaluator, model, items, False)
        plain.append(seconds)
        assert with_cache == without, "the prefix cache changed a verdict"
    print(f"model {args.model}, {len(items)} items ({args.stream}), batch {args.batch_size}")
    print(f"without prefix cache: median {statistics.median(plain):.2f} s")
    print(f"with prefix cache:    median {statistics.median(shared):.2f} s")
    print(f"ratio with/without: {statistics.median(shared) / statistics.median(plain):.2f}")


if __name__ == "__main__":
    main()
