"""Scoring speed with the shared few-shot prefix cache against without it, in one process.

The few-shot examples open every scoring prompt; the evaluator computes their keys and values once
and runs only the rest of each prompt. This bench scores the same items both ways, alternating
repeats to cancel machine noise, checks the verdicts are identical, and prints the ratio last.

    python bench/prefix_cache.py --model smollm2-135m --repeats 3
"""

from __future__ import annotations

import argparse

from ab_scoring import compare_ways, module_constant

import lifelong.evaluation.evaluator as evaluator_module
from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.models import load_model


def without_cache(evaluator, model, items) -> tuple[bool, ...]:
    with module_constant(evaluator_module, "MIN_SHARED_PREFIX", 10**9):
        return evaluator.score_items(model, items).correct


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
    evaluator.score_items(model, items[:8])  # warm-up
    print(f"model {args.model}, {args.stream} stream, batch {args.batch_size}, {args.repeats} repeats (medians)")
    compare_ways(("without prefix cache", lambda items: without_cache(evaluator, model, items)),
                 ("with prefix cache", lambda items: evaluator.score_items(model, items).correct),
                 {"every item": items}, args.repeats)


if __name__ == "__main__":
    main()
