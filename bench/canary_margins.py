"""Which canary items a run lost, by how well the base model knew them.

    python bench/canary_margins.py --canary CANARY.jsonl RUN_DIR [RUN_DIR ...] [--min-prob 0.5]

Scores the canary with the base model (`Evaluator.answer_likelihoods`: exact match and the geometric
mean of the answer tokens' probabilities), then each run's latest checkpoint (LoRA merged), and prints
per run the canary score over all items, over the items the base model gave at least --min-prob, and
over the rest. A canary's file is in $LIFELONG_CACHE/general/v1/canaries/<key>.jsonl (the key is in the
run's `general` event). docs/documents_only.md, "The canary needs a margin", was made with it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lifelong.config import RunConfig
from lifelong.data.records import load_domain
from lifelong.evaluate import _load_any, _plain
from lifelong.evaluation.evaluator import Evaluator
from lifelong.precision import set_threads


def share(verdicts: list[bool], keep: list[bool]) -> str:
    chosen = [v for v, k in zip(verdicts, keep, strict=True) if k]
    return f"{sum(chosen) / len(chosen):.3f} ({len(chosen)})" if chosen else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--canary", type=Path, required=True)
    parser.add_argument("--min-prob", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    config = RunConfig()
    items = load_domain(args.canary, name="canary").eval_items
    model, tokenizer, _ = _load_any(config, None)
    evaluator = Evaluator(config.evaluation, tokenizer)
    base = evaluator.answer_likelihoods(model, items, desc="base")
    confident = [right and math.exp(mean) >= args.min_prob for right, mean in base]
    narrow = [right and not sure for (right, _), sure in zip(base, confident, strict=True)]
    print(f"base: {sum(r for r, _ in base)} of {len(items)} right, {sum(confident)} at p >= {args.min_prob}")
    print(f"| run | all | p >= {args.min_prob} | below |")
    print("|---|---|---|---|")
    for run in args.runs:
        model, _, _ = _load_any(config, run)
        verdicts = list(evaluator.score_items(_plain(model), items, desc=run.name).correct)
        print(f"| {run.name} | {share(verdicts, [True] * len(items))} | {share(verdicts, confident)} | "
              f"{share(verdicts, narrow)} |")


if __name__ == "__main__":
    main()
