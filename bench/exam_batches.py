"""Multiple-choice scoring with token-budgeted batches against fixed batches of `batch_size` items.

The evaluator cuts length-sorted prompts into batches of at most `batch_size` rows and at most
batch_size * TOKENS_PER_ROW padded tokens, so one long law passage does not pad fifteen shorter
prompts to its length. The baseline sets TOKENS_PER_ROW so high that every batch holds `batch_size`
items (what the evaluator did before). Both score the same exam items in alternating repeats; the
bench checks the verdicts are identical and prints the ratio last.

    OMP_NUM_THREADS=2 python bench/exam_batches.py                     # five-domains' exams (prepared)
"""

from __future__ import annotations

import argparse
import statistics
import time

import lifelong.evaluation.evaluator as evaluator_module
from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.models import load_model

UNBOUNDED = 10**9


def timed(evaluator: Evaluator, model, items, tokens_per_row: int) -> tuple[float, tuple[bool, ...]]:
    original = evaluator_module.TOKENS_PER_ROW
    evaluator_module.TOKENS_PER_ROW = tokens_per_row
    try:
        started = time.perf_counter()
        verdicts = evaluator.score_items(model, items).correct
        return time.perf_counter() - started, verdicts
    finally:
        evaluator_module.TOKENS_PER_ROW = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--stream", default="five-domains")
    parser.add_argument("--items", type=int, default=40, help="items of each exam")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, seed=0, mixed_precision="auto")
    stream = load_stream(args.stream)
    if not stream.exams:
        raise SystemExit(f"stream {args.stream} has no exams")
    evaluator = Evaluator(EvaluationConfig(progress=False), tokenizer)
    print(f"model {args.model}, stream {args.stream}, batch {evaluator.config.batch_size}, "
          f"{args.repeats} repeats (medians)")
    totals = {"fixed": 0.0, "budget": 0.0}
    for name, exam in stream.exams.items():
        items = evaluator.sample(exam.eval_items, args.items)
        times: dict[str, list[float]] = {"fixed": [], "budget": []}
        for _ in range(args.repeats):
            fixed_s, fixed = timed(evaluator, model, items, UNBOUNDED)
            budget_s, budget = timed(evaluator, model, items, evaluator_module.TOKENS_PER_ROW)
            assert fixed == budget, f"exam {name}: the verdicts differ"
            times["fixed"].append(fixed_s)
            times["budget"].append(budget_s)
        fixed_s, budget_s = statistics.median(times["fixed"]), statistics.median(times["budget"])
        totals["fixed"] += fixed_s
        totals["budget"] += budget_s
        print(f"exam {name:10s} {len(items):3d} items  fixed batches {fixed_s:6.2f} s   "
              f"token budget {budget_s:6.2f} s   speed-up {fixed_s / budget_s:.2f}x")
    print(f"all exams: fixed {totals['fixed']:.2f} s, budget {totals['budget']:.2f} s, "
          f"speed-up {totals['fixed'] / totals['budget']:.2f}x")


if __name__ == "__main__":
    main()
