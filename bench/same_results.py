"""Do two runs give the same results.json? Everything but wall-clock time and the output folder must match.

    python bench/same_results.py RUN_A RUN_B [--ignore KEY.PATH ...]

RUN_A, RUN_B: run folders (or their results.json). Ignored: the `timing` section, `config.out` (the runs
write to different folders), and every key ending in `_s` (seconds, wherever it stands). Floats must be
equal exactly (the same seed on the same machine gives the same bits). Prints each difference as
`path: a != b` and exits 1 when there is one, else prints `same` and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

IGNORED = {"timing", "config.out"}


def load(path: str) -> dict:
    file = Path(path)
    return json.loads((file / "results.json" if file.is_dir() else file).read_text())


def differences(a, b, path: str = "", ignored: set[str] = IGNORED) -> list[str]:
    if path in ignored or path.rsplit(".", 1)[-1].endswith("_s"):
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                if where not in ignored:
                    found.append(f"{where}: {'missing in A' if key not in a else 'missing in B'}")
                continue
            found += differences(a[key], b[key], where, ignored)
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} entries != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]", ignored)]
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return [] if both_nan or (a == b and type(a) is type(b)) else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--ignore", action="append", default=[], help="a further key path to ignore")
    args = parser.parse_args(argv)
    found = differences(load(args.a), load(args.b), ignored=IGNORED | set(args.ignore))
    for line in found:
        print(line)
    print("same" if not found else f"{len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
