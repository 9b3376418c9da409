"""Six `lifelong learn` calls with a sleep after every third, once per consolidation method: the table of issue 22.

    python bench/sleep.py --method distill --method merge --seed 0 --seed 1 --set threads=2 \
        --out runs/sleep --table docs/sleep_table.md

The six batches are the shipped example stream's three domains cut in halves (documents, with each
question going to the half whose documents state its answer; practice questions are learned, eval
questions only scored). Each method and seed teaches one state folder (out/<method>-s<seed>) with
`lifelong.learn.learn`, the function behind `lifelong learn`: calls 1-3, a sleep call (`--sleep`, no
documents), calls 4-6, a sleep call. Routing thresholds are chosen on practice questions only
(`fast_adapters.route_thresholds_from: practice`). A state folder that already holds calls resumes.
`--set consolidation.KEY=V` overrides the method's own settings (e.g. `consolidation.repair_epochs=2`).

The table has one row per sleep (method, adapters in, the eval questions' gain over the base model
before and after the sleep and the share kept, the sleep's own check on practice questions, canary
before and after, its seconds against the learn calls it consolidates, kept or rolled back and why),
then the goal's lines per method and seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lifelong.cli import _overrides
from lifelong.data.records import Document, Domain, QAItem, load_domain, record_to_json
from lifelong.evaluation.prompts import normalize_answer as normalize

EXAMPLE = Path(__file__).resolve().parents[1] / "lifelong" / "data" / "builtin" / "example"
METHODS = {
    "distill": {"method": "distill"},
    "merge": {"method": "merge", "merge_type": "cat", "repair_epochs": 0},
    "merge-repair": {"method": "merge", "merge_type": "cat", "repair_epochs": 1},
    "ties": {"method": "merge", "merge_type": "ties_svd", "repair_epochs": 1},
    "rehearse": {"method": "rehearse"},
    "merge-rehearse": {"method": "merge", "merge_type": "cat", "repair_epochs": 1, "repair": "rehearse"},
    "mean-repair": {"method": "merge", "merge_type": "cat", "merge_weight": 0.3333, "repair_epochs": 1},
}
EVERY = 3
CALLS = 6


def batches(folder: Path) -> list[Path]:
    """The six batch files: each example domain's documents in two halves, each question with the half that
    states its answer (a question whose answer no document states is left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for domain_file in sorted(EXAMPLE.glob("*.jsonl")):
        if domain_file.stem in ("core", "canary"):
            continue
        domain = load_domain(domain_file)
        half = (len(domain.documents) + 1) // 2
        for part, docs in enumerate((domain.documents[:half], domain.documents[half:]), start=1):
            text = normalize(" ".join(d.text for d in docs))
            items = [i for i in domain.items if isinstance(i, QAItem) and normalize(i.answer) in text]
            path = folder / f"{domain_file.stem}-{part}.jsonl"
            records = [record_to_json(Document(d.text)) for d in docs] + [record_to_json(i) for i in items]
            text = "".join(json.dumps(r) + "\n" for r in records)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:  # runs side by side share them
                path.write_text(text, encoding="utf-8")
            paths.append(path)
    return paths


def base_scores(paths: list[Path], overrides: dict) -> dict[str, float]:
    """Each batch's eval score on the untrained model, scored as the learn calls score."""
    from lifelong.config import load_config
    from lifelong.evaluation.evaluator import Evaluator
    from lifelong.models import load_model

    config = load_config(None, {"condition": "f", **overrides})
    model, tokenizer = load_model(config.model, dtype=config.dtype, device=config.device, seed=config.seed,
                                  mixed_precision=config.mixed_precision)
    evaluator = Evaluator(config.evaluation, tokenizer, seed=config.seed)
    return {p.stem: evaluator.score_domain(model, Domain(p.stem, items=load_domain(p).eval_items)).score
            for p in paths}


def batch_of(entry: dict) -> str:
    """The batch a learn call taught (its one --docs file)."""
    return Path(entry["docs"][0]).stem


def teach(state: Path, paths: list[Path], overrides: dict) -> list[dict]:
    """The calls not yet in `state`: learn, learn, learn, sleep, learn, learn, learn, sleep."""
    from lifelong.learn import learn

    plan = [[p] for p in paths[:EVERY]] + [[]] + [[p] for p in paths[EVERY:]] + [[]]
    history_file = state / "history.json"
    done = len(json.loads(history_file.read_text())["history"]) if history_file.is_file() else 0
    for docs in plan[done:]:
        learn(docs, state, None, overrides, sleep=not docs)
    return json.loads(history_file.read_text())["history"]


def sleep_rows(history: list[dict], base: dict[str, float]) -> list[dict]:
    """One row per sleep call: what it consolidated and what the base kept."""
    rows, since = [], []
    for before, entry in zip([None, *history], history, strict=False):
        if entry.get("episode"):
            since.append(entry)
            continue
        record = entry["sleep"]
        gain_before = _mean([before["scores"][e["name"]] - base[batch_of(e)] for e in since])
        # after a rollback the scores are the restored adapters', not the base's: nothing was kept
        gain_after = _mean([entry["scores"][e["name"]] - base[batch_of(e)] for e in since]) \
            if record.get("passed") else None
        kept = gain_after / gain_before if gain_after is not None and gain_before > 1e-9 else None
        rows.append({"adapters_in": len(record.get("episodes", [])), "gain_before": gain_before,
                     "gain_after": gain_after, "kept": kept,
                     "practice_kept": record.get("answer_transfer"), "canary_before": record.get("canary_before"),
                     "canary_after": record.get("canary_after"), "seconds": record.get("seconds"),
                     "learn_seconds": round(sum(e["train_s"] for e in since), 1),
                     "passed": record.get("passed"), "why": record.get("why", ""), "method": record.get("method")})
        since = []
    return rows


def goal_lines(history: list[dict], rows: list[dict], base: dict[str, float], canary0: float | None) -> dict:
    final = history[-1]["scores"]
    taught = {e["name"]: batch_of(e) for e in history if e.get("episode")}
    return {
        "every sleep kept": all(r["passed"] for r in rows),
        f"at most {EVERY} adapters live": max(len(e.get("adapters", [])) for e in history) <= EVERY,
        "base keeps >= 80% of the gain": all(r["kept"] is not None and r["kept"] >= 0.8 for r in rows),
        "each batch >= base + 0.15 at the end": all(final[n] >= base[b] + 0.15 for n, b in taught.items()),
        "canary >= 95% after every sleep": canary0 is not None and all(
            (r["canary_after"] or 0.0) >= 0.95 * canary0 for r in rows),
        "sleep <= its learn calls' time": all((r["seconds"] or 0) <= r["learn_seconds"] for r in rows),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(results: list[tuple[str, int, list[dict], dict]], command: str) -> str:
    lines = [f"Made by `{command}`", "",
             "| method | seed | sleep | adapters in | eval gain before -> after (kept) | practice kept | "
             "canary before -> after | seconds (learn calls') | outcome |", "|---|---|---|---|---|---|---|---|---|"]
    for method, seed, rows, _ in results:
        for n, r in enumerate(rows, start=1):
            outcome = "kept" if r["passed"] else f"rolled back: {r['why']}"
            lines.append(f"| {method} | {seed} | {n} | {r['adapters_in']} | {_fmt(r['gain_before'])} -> "
                         f"{_fmt(r['gain_after'])} ({_fmt(r['kept'], 2)}) | {_fmt(r['practice_kept'], 2)} | "
                         f"{_fmt(r['canary_before'], 2)} -> {_fmt(r['canary_after'], 2)} | "
                         f"{_fmt(r['seconds'], 0)} ({_fmt(r['learn_seconds'], 0)}) | {outcome} |")
    names = list(results[0][3]) if results else []
    lines += ["", "| method | seed | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for method, seed, _, goals in results:
        lines.append(f"| {method} | {seed} | " + " | ".join("yes" if goals[k] else "**no**" for k in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", action="append", choices=sorted(METHODS), help="repeat; default: all")
    parser.add_argument("--seed", action="append", type=int, help="repeat; default: 0")
    parser.add_argument("--set", action="append", default=[], help="any config key, as in lifelong learn")
    parser.add_argument("--extra-piece", action="append", default=[],
                        help="a piece to add before consolidation (repeat), e.g. distill; names the state folder")
    parser.add_argument("--out", type=Path, default=Path("runs/sleep"))
    parser.add_argument("--table", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    paths = batches(args.out / "batches")
    results = []
    for seed in args.seed or [0]:
        common = {"stream": "example", "seed": seed, **_overrides(args.set)}
        base_file = args.out / f"base-s{seed}.json"
        if not base_file.is_file():
            base_file.write_text(json.dumps(base_scores(paths, common)))
        base = json.loads(base_file.read_text())
        for method in args.method or list(METHODS):
            overrides = {**common, "pieces": ["fast_adapters", "replay", *args.extra_piece, "consolidation"],
                         "fast_adapters": {**common.get("fast_adapters", {}), "route_thresholds_from": "practice"},
                         "consolidation": {**METHODS[method], **common.get("consolidation", {}), "every": 0}}
            label = "+".join([method, *args.extra_piece])
            state = args.out / f"{label}-s{seed}"
            history = teach(state, paths, overrides)
            rows = sleep_rows(history, base)
            canary0 = json.loads((state / "state.json").read_text()).get("canary0") \
                if (state / "state.json").is_file() else None
            results.append((label, seed, rows, goal_lines(history, rows, base, canary0)))
    text = table(results, "python bench/sleep.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(text)
    if args.table:
        args.table.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
