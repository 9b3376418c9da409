"""The five real domains (issue 23, lifelong/data/fields.py) as a stream folder, to run and score.

    python bench/fields_stream.py --out runs/fields
    python bench/base_scores.py --stream runs/fields --out docs/real_domains_base.md   # the untrained model
    lifelong run --condition a --stream runs/fields --out runs/fields-a                # the forgetting check

Builds the domains from the pinned packages (downloaded into the cache once) and writes them with the prepared
five-domains stream's core set, canary and settings (no MMLU exam). `--words` is the per-domain word budget
(default: the size's).
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/fields"))
    parser.add_argument("--size", choices=sorted(fields.SIZES), default="small")
    parser.add_argument("--words", type=int, help="per-domain word budget (default: the size's)")
    parser.add_argument("--seed", type=int, default=0)
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


if __name__ == "__main__":
    main()
