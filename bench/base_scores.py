"""The untrained model's score on every eval question of each domain of a stream (issue 23's bar: <= 0.35).

    python bench/base_scores.py --stream five-domains --out docs/five_domains_base.md

A run's row 0 scores a sample (`evaluation.max_items`); this scores all of each domain's eval questions,
as a run scores them (the default prompt, exact match).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

BAR = 0.35


def main(argv: list[str] | None = None) -> None:
    from lifelong.config import load_config
    from lifelong.data.stream import load_stream
    from lifelong.evaluation.evaluator import Evaluator
    from lifelong.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", default="five-domains")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    config = load_config(None, {"stream": args.stream, "threads": args.threads})
    stream = load_stream(config.stream)
    model, tokenizer = load_model(config.model, dtype=config.dtype, device=config.device, seed=config.seed,
                                  mixed_precision=config.mixed_precision)
    evaluator = Evaluator(config.evaluation, tokenizer, seed=config.seed)
    command = "python bench/base_scores.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"Made by `{command}`", "", f"| domain | documents | median words | eval questions | base accuracy | "
             f"at most {BAR} |", "|---|---|---|---|---|---|"]
    for domain in stream.domains:
        items = domain.eval_items
        score = evaluator.score_items(model, items, domain.name).score
        words = statistics.median(len(d.text.split()) for d in domain.documents) if domain.documents else 0
        lines.append(f"| {domain.name} | {len(domain.documents)} | {words:.0f} | {len(items)} | {score:.3f} | "
                     f"{'yes' if score <= BAR else '**no**'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
