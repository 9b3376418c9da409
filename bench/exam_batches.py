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

from ab_scoring import compare_ways, module_constant

import lifelong.evaluation.evaluator as evaluator_module
from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.models import load_model

UNBOUNDED = 10**9


def fixed_batches(evaluator: Evaluator, model, items) -> tuple[bool, ...]:
    with module_constant(evaluator_module, "TOKENS_PER_ROW", UNBOUNDED):
        return evaluator.score_items(model, items).correct


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
    sets = {f"exam {name}": evaluator.sample(exam.eval_items, args.items) for name, exam in stream.exams.items()}
    compare_ways(("fixed batches", lambda items: fixed_batches(evaluator, model, items)),
                 ("token budget", lambda items: evaluator.score_items(model, items).correct), sets, args.repeats)


if __name__ == "__main__":
    main()
