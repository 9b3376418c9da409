"""`lifelong compare`: one run per condition, one report that sets them side by side.

With `parallel.workers` > 1 (`--workers N`) the conditions run at once as Ray tasks
(lifelong/parallel.py); each run is seeded alone, so the results are those of the serial run.
"""

from __future__ import annotations

import json
from pathlib import Path

from lifelong.config import RunConfig, load_config
from lifelong.errors import InputError, LifelongError
from lifelong.experiment import Experiment
from lifelong.files import write_json
from lifelong.parallel import map_tasks
from lifelong.report import write_compare_report, write_run_report


def run_compare(config_path: Path | None, conditions: list[str], out: Path, overrides: dict,
                ablate: str | None = None) -> dict:
    """Runs each condition into out/<condition>/ and writes compare.json and report.html. With `ablate` (a
    condition), runs that condition and, for each of its pieces, the condition without that piece
    (out/<condition>-no-<piece>/), instead of `conditions`: one row per piece, to see which earns its cost."""
    if not conditions and not ablate:
        raise LifelongError("--conditions: name at least one condition, e.g. a,b")
    if out.exists() and not out.is_dir():
        raise LifelongError(f"{out}: output folder is a file")
    # every config is validated before the first hour of training
    configs = ablation_configs(config_path, ablate, out, overrides) if ablate else \
        {c: load_config(config_path, {**overrides, "condition": c, "out": str(out / c)}) for c in conditions}
    parallel = next(iter(configs.values())).parallel
    runs = map_tasks(run_experiment, list(configs.values()), workers=parallel.workers, address=parallel.address,
                     gpus_per_task=parallel.gpus_per_task)
    results = dict(zip(configs, runs, strict=True))
    write_compare(out, results)
    return results


def ablation_configs(config_path: Path | None, condition: str, out: Path, overrides: dict) -> dict[str, RunConfig]:
    """The condition's config, and one config per piece with that piece left out, by run name."""
    full = load_config(config_path, {**overrides, "condition": condition, "out": str(out / condition)})
    if not full.pieces or len(full.pieces) < 2:
        raise LifelongError(f"--ablate {condition}: the condition has {len(full.pieces or [])} piece(s); "
                            "ablation leaves one out at a time, so it needs at least two")
    configs = {condition: full}
    for piece in full.pieces:
        name = f"{condition}-no-{piece}"
        rest = [p for p in full.pieces if p != piece]
        configs[name] = load_config(config_path, {**overrides, "condition": condition, "pieces": rest,
                                                  "out": str(out / name)})
    return configs


def run_experiment(config) -> dict:
    """One condition's run (a Ray task when the conditions run in parallel)."""
    return Experiment(config).run()


def write_compare(out: Path, results: dict[str, dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {c: {"metrics": r["metrics"], "domains": r["domains"], "accuracy_matrix": r["accuracy_matrix"],
                   "canary": r["canary"]} for c, r in results.items()}
    write_json(out / "compare.json", summary)
    write_compare_report(out, results)


def rebuild_report(directory: Path) -> Path:
    """report.html from results.json (a run), or, for a comparison folder, from every finished run in its
    subfolders: the conditions of compare.json plus any run made into the folder separately (`lifelong run
    --condition e --out DIR/e`, on another machine or after the compare), which also joins compare.json."""
    runs = _finished_runs(directory)
    if (directory / "compare.json").is_file() or runs:
        named = json.loads((directory / "compare.json").read_text(encoding="utf-8")) \
            if (directory / "compare.json").is_file() else {}
        conditions = sorted(set(named) | set(runs))
        write_compare(directory, {c: runs.get(c) or _read_results(directory / c) for c in conditions})
        return directory / "report.html"
    return write_run_report(directory)


def _finished_runs(directory: Path) -> dict[str, dict]:
    runs = {}
    for path in sorted(directory.glob("*/results.json")):
        results = _read_results(path.parent)
        if results.get("complete"):
            runs[path.parent.name] = results
    return runs


def _read_results(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise InputError(path, "results.json not found")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error.msg})", error.lineno) from None
    if not isinstance(results, dict):
        raise InputError(path, "expected a JSON object")
    return results
