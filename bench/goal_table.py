"""Issue 21's goal, checked line by line on finished runs: is condition e the best learner?

    python bench/goal_table.py runs/v3/* --held-out invented-heldout --out docs/goal_table.md

Runs are grouped by (stream, seed) from their results.json. In each group every condition-e run is
one row, checked against the group's runs of the other conditions (the first of each that is found):

- learning: e's learning accuracy >= 0.9 x a's;
- forgetting: e's forgetting <= 0.25 x a's (DESIGN section 3's forgetting);
- canary: e's canary at the end >= 0.95 x its start, and at its worst >= 0.90 x its start;
- average: e's average accuracy at the end >= each of b, c, d and f's;
- cost: e's wall time (training + evaluation, results.json `timing`) <= 2 x d's.

A line whose baseline run is missing reads "no a" (or the missing conditions); it is not a pass.
A stream named with --held-out is marked as held out: scored, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sweep import wall_s  # noqa: E402

LINES = ("learning", "forgetting", "canary", "average", "cost")
RIVALS = ("b", "c", "d", "f")


def check(e: dict, others: dict[str, dict]) -> dict[str, tuple[bool | None, str]]:
    """Each goal line for the e run `e` against the same stream and seed's `others` (condition -> results):
    (passed, what was compared); passed is None when a run it needs is missing."""
    m = e["metrics"]
    out: dict[str, tuple[bool | None, str]] = {}
    a = others.get("a")
    if a is None:
        out["learning"] = out["forgetting"] = (None, "no a")
    else:
        la, fa = a["metrics"]["learning_accuracy"], a["metrics"]["forgetting"]
        out["learning"] = (m["learning_accuracy"] >= 0.9 * la, f"{m['learning_accuracy']:.3f} vs a {la:.3f}")
        out["forgetting"] = (m["forgetting"] <= 0.25 * fa, f"{m['forgetting']:.3f} vs a {fa:.3f}")
    canary = [c for c in (e.get("canary") or []) if c is not None]
    if not canary or not canary[0]:
        out["canary"] = (None, "no canary")
    else:
        end, worst = canary[-1] / canary[0], min(canary) / canary[0]
        out["canary"] = (end >= 0.95 and worst >= 0.90, f"end {end:.2f}, worst {worst:.2f}")
    out["average"] = _average(m["average_accuracy"], {c: others[c] for c in RIVALS if c in others})
    d = others.get("d")
    if d is None or not wall_s(d):
        out["cost"] = (None, "no d")
    else:
        ratio = wall_s(e) / wall_s(d)
        out["cost"] = (ratio <= 2.0, f"{ratio:.2f} x d")
    return out


def _average(e_accuracy: float, rivals: dict[str, dict]) -> tuple[bool | None, str]:
    """e against the best of b, c, d, f; undecided while a rival is missing and e beats those present."""
    if not rivals:
        return None, "no b, c, d, f"
    best, name = max((r["metrics"]["average_accuracy"], c) for c, r in rivals.items())
    missing = [c for c in RIVALS if c not in rivals]
    note = f"{e_accuracy:.3f} vs {name} {best:.3f}" + (f"; no {', '.join(missing)}" if missing else "")
    if e_accuracy < best:
        return False, note
    return (None if missing else True), note


def group_runs(folders: list[Path]) -> dict[tuple[str, int], list[tuple[str, dict]]]:
    groups: dict[tuple[str, int], list[tuple[str, dict]]] = {}
    for folder in folders:
        path = folder / "results.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        if not results.get("complete"):
            continue
        key = (Path(str(results["stream"])).name, int(results["config"]["seed"]))
        groups.setdefault(key, []).append((folder.name, results))
    return groups


def mark(passed: bool | None, note: str) -> str:
    return {True: "yes", False: "**no**", None: "not run"}[passed] + f" ({note})"


def table(groups: dict[tuple[str, int], list[tuple[str, dict]]], held_out: set[str]) -> str:
    head = ("| stream | seed | e run | " + " | ".join(LINES) + " |\n|" + "---|" * (3 + len(LINES)) + "\n")
    lines = []
    for (stream, seed), runs in sorted(groups.items()):
        others: dict[str, dict] = {}
        for _, results in runs:
            if results["condition"] != "e":
                others.setdefault(results["condition"], results)
        name = stream + (" (held out, not tuned on)" if stream in held_out else "")
        for run, results in runs:
            if results["condition"] == "e":
                checks = check(results, others)
                lines.append(f"| {name} | {seed} | {run} | " + " | ".join(mark(*checks[k]) for k in LINES) + " |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with results.json)")
    parser.add_argument("--held-out", action="append", default=[], help="a stream scored but never tuned on")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    text = table(group_runs(args.runs), set(args.held_out))
    print(text)
    if args.out:
        args.out.write_text(f"Made by `python bench/goal_table.py {' '.join(sys.argv[1:])}`\n\n{text}")


if __name__ == "__main__":
    main()
