"""Writes issue 21's tuning streams of plain documents (docs/documents_only.md, "The streams").

    python bench/doc_streams.py OUT_DIR            # OUT_DIR/example-docs and OUT_DIR/glossary-docs

- example-docs: the shipped example stream without its practice questions, core and canary (its
  documents and its eval questions only).
- glossary-docs: from the prepared five-domains stream (`lifelong data prepare` first), for medical,
  legal and code, the first 16 documents and the eval questions whose `" is {answer}."` the documents
  state; one domain of it alone is OUT_DIR/gl1 (a_medical, for quick probes).

Neither has a core or a canary: a run supplies the general set's (docs/data.md, "The general set").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lifelong.data import prepared

EXAMPLE = Path(__file__).resolve().parents[1] / "lifelong" / "data" / "builtin" / "example"
EXAMPLE_DOMAINS = ["zorvian_medicine", "keldari_law", "glimmer_code"]
GLOSSARY_DOMAINS = {"medical": "a_medical", "legal": "b_legal", "code": "c_code"}
GLOSSARY_DOCUMENTS = 16


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def example_docs(out: Path) -> None:
    for name in EXAMPLE_DOMAINS:
        records = read_jsonl(EXAMPLE / f"{name}.jsonl")
        keep = [r for r in records if r["kind"] == "document" or r.get("split", "eval") == "eval"]
        write_jsonl(out / f"{name}.jsonl", keep)


def glossary_domain(records: list[dict]) -> list[dict]:
    documents = [r for r in records if r["kind"] == "document"][:GLOSSARY_DOCUMENTS]
    text = "\n".join(d["text"] for d in documents)
    stated = [r for r in records if r["kind"] == "qa" and r.get("split", "eval") == "eval"
              and f" is {r['answer']}." in text]
    return documents + stated


def glossary_docs(out: Path, source: Path) -> None:
    for domain, name in GLOSSARY_DOMAINS.items():
        files = sorted(source.glob(f"*{domain}*.jsonl"))
        if not files:
            raise SystemExit(f"{source}: no {domain} domain file (run `lifelong data prepare` first)")
        records = glossary_domain(read_jsonl(files[0]))
        write_jsonl(out / "glossary-docs" / f"{name}.jsonl", records)
        if name == "a_medical":
            write_jsonl(out / "gl1" / f"{name}.jsonl", records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--five-domains", type=Path, default=None,
                        help="a prepared five-domains folder (default: the cache's)")
    args = parser.parse_args()
    example_docs(args.out / "example-docs")
    glossary_docs(args.out, args.five_domains or prepared.streams_dir() / "five-domains")
    for name in ["example-docs", "glossary-docs", "gl1"]:
        folder = args.out / name
        counts = {p.stem: sum(1 for r in read_jsonl(p) if r["kind"] != "document")
                  for p in sorted(folder.glob("*.jsonl"))}
        print(f"{folder}: eval questions per domain {counts}")


if __name__ == "__main__":
    main()
