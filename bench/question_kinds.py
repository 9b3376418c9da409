"""Which kinds of question naive fine-tuning learns, per real domain (issue 23): the base model and condition a
after one domain's round, scored on every eval question, by the kind of question its source made.

    python bench/question_kinds.py --words 2500 --epochs 4 --domain medical --domain creative --out runs/kinds.json

Each domain is learned alone, from the embedded model, as condition a learns it (full fine-tuning on the
documents and practice questions); the table has per domain and kind the eval questions, the base's accuracy
and the accuracy after the round.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

from lifelong.config import load_config
from lifelong.data import fields, prepared
from lifelong.data.records import Domain
from lifelong.evaluation.evaluator import Evaluator
from lifelong.evaluation.prompts import normalize_answer
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces
from lifelong.precision import active_precision, apply_mixed_precision, resolve_precision


def kinds_of(sources: fields.FieldSources, name: str) -> dict[str, str]:
    return {normalize_answer(c.question): c.kind for piece in sources.pieces[name] for c in piece.candidates}


def by_kind(items, correct, kinds) -> dict[str, list[int]]:
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item, right in zip(items, correct, strict=True):
        row = table[kinds.get(normalize_answer(item.question), "?")]
        row[0] += 1
        row[1] += int(right)
    return dict(table)


def probe(name: str, built: fields.Field, kinds: dict[str, str], epochs: int, seed: int,
          mixed_precision: str = "no") -> dict:
    config = load_config(overrides={"condition": "a", "seed": seed, "training": {"epochs": epochs,
                                    "group_by_length": True}, "evaluation": {"progress": False}})
    model, tokenizer = load_model(config.model, seed=seed)
    model = apply_mixed_precision(model, resolve_precision(mixed_precision, model.device, model.dtype))
    evaluator = Evaluator(config.evaluation, tokenizer, seed=seed)
    domain = Domain(name, built.documents, built.items)
    items = list(domain.eval_items)
    base = evaluator.score_items(model, items, "base").correct
    learner = Learner(model, tokenizer, build_pieces(config.pieces, config), config)
    learner.evaluator = evaluator
    started = time.perf_counter()
    stats = learner.learn(domain, seed=seed)
    after = evaluator.score_items(learner.model, items, "after").correct
    shots = practice_prompt(config, domain)
    shot_evaluator = Evaluator(config.evaluation.model_copy(update={"prompt": shots}), tokenizer, seed=seed)
    after_shots = shot_evaluator.score_items(learner.model, items, "after, practice shots").correct
    return {"domain": name, "epochs": epochs, "steps": stats.steps, "train_s": round(time.perf_counter() - started),
            "base": by_kind(items, base, kinds), "after": by_kind(items, after, kinds),
            "after_shots": by_kind(items, after_shots, kinds),
            "mixed_precision": active_precision(model), "base_score": sum(base) / len(items),
            "after_score": sum(after) / len(items),
            "after_shots_score": sum(after_shots) / len(items)}


def practice_prompt(config, domain: Domain, n: int = 3):
    """The run's prompt with its few-shot examples taken from the domain's practice questions (as
    lm-evaluation-harness takes them from a task's train split)."""
    shots = [(item.question, item.answer) for item in domain.train_items][:n]
    return config.evaluation.prompt.model_copy(update={"examples": shots})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=2500)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--eval", type=int, help="eval questions wanted per domain (default: the size's)")
    parser.add_argument("--practice", type=int, help="practice questions wanted per domain (default: the size's)")
    parser.add_argument("--domain", action="append", choices=fields.DOMAINS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "auto"], default="no")
    parser.add_argument("--out", type=Path, default=Path("runs/kinds.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sources = fields.load_field_sources(prepared.cache_dir() / "downloads")
    size = replace(fields.SIZES["small"], word_budget=args.words)
    size = replace(size, eval_questions=args.eval or size.eval_questions,
                   train_questions=args.practice or size.train_questions)
    built = fields.build_fields(sources, size, args.seed)
    rows = []
    for name in args.domain or fields.DOMAINS:
        row = probe(name, built[name], kinds_of(sources, name), args.epochs, args.seed, args.mixed_precision)
        rows.append(row)
        print(f"{name}: base {row['base_score']:.3f} -> {row['after_score']:.3f}, with practice shots "
              f"{row['after_shots_score']:.3f} ({row['steps']} steps, {row['train_s']} s)", flush=True)
        for kind, (n, right) in sorted(row["after"].items()):
            print(f"  {kind:12s} {n:4d} items  base {row['base'][kind][1] / n:.2f}  after {right / n:.2f}  "
                  f"shots {row['after_shots'][kind][1] / n:.2f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
