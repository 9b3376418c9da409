"""A markdown table of finished runs against a baseline run (the same columns as bench/sweep.py).

    python bench/results_table.py --baseline runs/tune/ex-a runs/tune/ex-fp runs/tune/ex-lpd1 \
        --out docs/issue21_table.md

Each run folder's results.json gives one row, named by the folder; ratios are to the baseline's
figures (learning accuracy and forgetting x baseline, canary x its own start).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sweep import row, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--stream", default=None, help="stream name for the table (default: the baseline's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    base_results = json.loads((args.baseline / "results.json").read_text())
    stream = args.stream or base_results["stream"]
    base = row(base_results)
    rows = [(stream, args.baseline.name, base, base)]
    for folder in args.runs:
        results = json.loads((folder / "results.json").read_text())
        if results.get("complete"):
            rows.append((stream, folder.name, row(results), base))
    text = table(rows, base_results["condition"])
    print(text)
    if args.out:
        args.out.write_text(f"Made by `python bench/results_table.py {' '.join(sys.argv[1:])}`\n\n{text}")


if __name__ == "__main__":
    main()
