"""A small grid of a condition's settings over tuning streams, written as one markdown table.

    python bench/sweep.py --condition e --stream /path/docs-a --stream example \
        --grid training.lr=1e-3,3e-3 --grid replay.ratio=0.2,0.4 --set threads=2 \
        --out runs/sweep-e --table docs/sweep_e.md

Every combination of the --grid values runs once per stream (the run's folder is
out/<stream>/<combination>, so an interrupted sweep resumes where it stopped), beside one run of
--baseline (default: condition a, the bar e is measured against) per stream. The table has one row
per stream and combination: learning accuracy, forgetting, canary at the end and at its worst, average
accuracy, wall time, and each of them as a ratio to the baseline's. Keep one stream out of every
sweep and report it once, at the end, with the chosen settings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from lifelong.cli import _overrides
from lifelong.config import load_config
from lifelong.experiment import Experiment


def parse_grid(entries: list[str]) -> dict[str, list[str]]:
    grid = {}
    for entry in entries:
        key, _, values = entry.partition("=")
        if not key or not values:
            raise SystemExit(f"--grid {entry!r}: expected key=value1,value2")
        grid[key] = values.split(",")
    return grid


def combinations(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def label(combination: dict[str, str]) -> str:
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in combination.items()) or "preset"


def run_one(condition: str, stream: str, sets: list[str], out: Path) -> dict:
    overrides = _overrides(sets)
    config = load_config(None, {**overrides, "condition": condition, "stream": stream, "out": str(out)})
    started = time.perf_counter()
    results = Experiment(config).run()
    results.setdefault("timing", {})["sweep_wall_s"] = round(time.perf_counter() - started, 1)
    return results


def wall_s(results: dict) -> float:
    """A run's wall time: its training and evaluation seconds (results.json `timing`)."""
    timing = results.get("timing") or {}
    return sum(timing.get("train_s", [])) + sum(timing.get("eval_s", []))


def row(results: dict) -> dict:
    m = results["metrics"]
    canary = results["canary"] or [None]
    wall = wall_s(results)
    return {"learning_accuracy": m["learning_accuracy"], "forgetting": m["forgetting"],
            "canary_end": canary[-1], "canary_worst": min(c for c in canary if c is not None) if canary[0] else None,
            "canary_start": canary[0], "average_accuracy": m["average_accuracy"], "wall_s": round(wall)}


def ratio(value, base) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}"


def table(rows: list[tuple[str, str, dict, dict]], baseline: str) -> str:
    head = ("| stream | settings | learning acc. (x base) | forgetting (x base) | canary end / worst (of start) "
            "| average acc. | wall s (x base) |\n|---|---|---|---|---|---|---|\n")
    lines = []
    for stream, name, r, base in rows:
        start = r["canary_start"] or 0
        canary = (f"{r['canary_end']:.2f} / {r['canary_worst']:.2f} ({ratio(r['canary_end'], start)} / "
                  f"{ratio(r['canary_worst'], start)})") if start else "-"
        learned = f"{r['learning_accuracy']:.3f} ({ratio(r['learning_accuracy'], base['learning_accuracy'])})"
        forgot = f"{r['forgetting']:.3f} ({ratio(r['forgetting'], base['forgetting'])})"
        wall = f"{r['wall_s']} ({ratio(r['wall_s'], base['wall_s'])})"
        lines.append(f"| {stream} | {name} | {learned} | {forgot} | {canary} | {r['average_accuracy']:.3f} | {wall} |")
    note = f"\n\nBaseline per stream: condition {baseline} (its own row, settings `baseline`).\n"
    return head + "\n".join(lines) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", default="e")
    parser.add_argument("--baseline", default="a")
    parser.add_argument("--stream", action="append", required=True)
    parser.add_argument("--grid", action="append", default=[])
    parser.add_argument("--set", action="append", default=[], dest="sets", help="key=value for every run")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--table", type=Path, default=None, help="write the table here (markdown) too")
    args = parser.parse_args()
    rows = []
    for stream in args.stream:
        stream_dir = args.out / Path(stream).name
        base = row(run_one(args.baseline, stream, args.sets, stream_dir / "baseline"))
        rows.append((Path(stream).name, "baseline", base, base))
        for combination in combinations(parse_grid(args.grid)):
            sets = args.sets + [f"{k}={v}" for k, v in combination.items()]
            name = label(combination)
            rows.append((Path(stream).name, name, row(run_one(args.condition, stream, sets, stream_dir / name)), base))
    text = table(rows, args.baseline)
    print(text)
    (args.out / "sweep.json").write_text(json.dumps([{"stream": s, "settings": n, **r} for s, n, r, _ in rows],
                                                    indent=1))
    if args.table:
        command = " ".join(sys.argv[1:])
        heading = f"# Sweep of condition {args.condition}\n\nMade by `python bench/sweep.py {command}`\n\n"
        args.table.write_text(heading + text)


if __name__ == "__main__":
    main()
