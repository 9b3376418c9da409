"""Self-contained HTML reports for a run (results.json + log.jsonl) and for a comparison of conditions.

The pages open offline: plotly.js is embedded inline once per page, and nothing is fetched from a CDN.
Every plot is a ``<div class="lifelong-plot" data-kind="...">`` drawn by ``Plotly.newPlot``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from lifelong import report_html as h
from lifelong.diagnostics.report import why_section
from lifelong.errors import InputError
from lifelong.files import write_atomic
from lifelong.report_html import CSS, PLOT_CONFIG  # noqa: F401  (their old home)
from lifelong.selftest.dashboard import dashboard_section

# (key in results.json -> metrics, label from DESIGN §3)
METRICS: list[tuple[str, str]] = [
    ("average_accuracy", "average accuracy"),
    ("learning_accuracy", "learning accuracy"),
    ("forgetting", "forgetting"),
    ("bwt", "backward transfer"),
    ("fwt", "forward transfer"),
    ("general_retention", "general retention"),
    ("worst_general_retention", "worst general retention"),
    ("learning_efficiency", "learning efficiency"),
    ("self_teaching_quality", "self-teaching quality"),
]
# the metrics charted side by side in the compare report
COMPARE_CHART_METRICS = ["average_accuracy", "forgetting", "general_retention"]
# ---------------------------------------------------------------- small helpers


def _fmt_metric(value: Any, domains: list[str]) -> str:
    """One metric value as text; per-domain lists become 'domain: value' pairs."""
    if isinstance(value, list):
        names = domains + [f"#{i + 1}" for i in range(len(domains), len(value))]
        return ", ".join(f"{name}: {h.fmt(v)}" for name, v in zip(names, value, strict=False)) or "n/a"
    return h.fmt(value)


def _domains(results: dict) -> list[str]:
    return [str(d) for d in results.get("domains") or []]


def _matrix(results: dict) -> list[list[float | None]]:
    """The accuracy matrix's existing rows, each padded/truncated to the number of domains."""
    width = len(_domains(results))
    rows = results.get("accuracy_matrix") or []
    out = []
    for row in rows:
        cells = [h.num(v) for v in (row or [])][:width]
        out.append(cells + [None] * (width - len(cells)))
    return out


def _row_labels(domains: list[str], n_rows: int) -> list[str]:
    labels = []
    for i in range(n_rows):
        if i == 0:
            labels.append("before")
        else:
            label = f"after {domains[i - 1]}" if i - 1 < len(domains) else f"after #{i}"
            labels.append(f"{label} (#{i})" if label in labels else label)  # plotly merges equal labels
    return labels


def _canary(results: dict) -> list[float | None] | None:
    """Canary scores per row, or None when the stream has no canary (null or all-null)."""
    canary = results.get("canary")
    if not isinstance(canary, list):
        return None
    values = [h.num(v) for v in canary]
    return values if any(v is not None for v in values) else None


def _final_scores(results: dict) -> tuple[str, list[float | None]]:
    """The last matrix row with any score, with its label (a partial run's latest state)."""
    matrix = _matrix(results)
    labels = _row_labels(_domains(results), len(matrix))
    for label, row in reversed(list(zip(labels, matrix, strict=True))):
        if any(v is not None for v in row):
            return label, row
    return "none", [None] * len(_domains(results))


# ---------------------------------------------------------------- figures (one helper per kind)


def _heatmap_fig(results: dict, title: str) -> go.Figure:
    domains, matrix = _domains(results), _matrix(results)
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=domains, y=_row_labels(domains, len(matrix)), text=text, texttemplate="%{text}",
        zmin=0, zmax=1, colorscale="RdYlGn", colorbar={"title": {"text": "score"}},
        hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", title="model state")
    fig.update_xaxes(side="top")
    return h.layout(fig, f"{title} (columns: domain evaluated)", height=max(260, 130 + 50 * len(matrix)),
                   margin={"l": 110, "r": 30, "t": 100, "b": 20})


# ---------------------------------------------------------------- page pieces


def _metrics_table(results: dict) -> str:
    metrics, domains = results.get("metrics") or {}, _domains(results)
    rows = [[h.esc(label), f"<code>{h.esc(key)}</code>", h.esc(_fmt_metric(metrics.get(key), domains))]
            for key, label in METRICS]
    return h.table(["metric", "key", "value"], rows, numeric_from=2)


def _header(results: dict) -> str:
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    items = [("model", results.get("model")), ("condition", results.get("condition")),
             ("stream", config.get("stream")), ("domains", " → ".join(_domains(results)) or None),
             ("seed", results.get("seed", config.get("seed")))]
    timing = results.get("timing")
    if isinstance(timing, dict):
        items += [(f"time: {k}", h.fmt(v)) for k, v in timing.items() if not isinstance(v, (dict, list))]
    meta = "<br>".join(f"<b>{h.esc(k)}</b>: {h.esc(v)}" for k, v in items if v not in (None, ""))
    return f"<h1>lifelong run report</h1><p class=\"meta\">{meta}</p>"


def _canary_section(results: dict) -> str:
    canary = _canary(results)
    if canary is None:
        return '<h2>Canary (general ability)</h2><p class="note">This stream has no canary.</p>'
    labels = _row_labels(_domains(results), len(canary))
    fig = h.lines_fig(labels, {"canary": canary}, "Canary score over the stream", "model state",
                     "score", yrange=[0, 1.05])
    return "<h2>Canary (general ability)</h2>" + h.plot_div(fig, "canary", "plot-canary")


def _train_series(log_records: list[dict]) -> dict[str, tuple[list, list]]:
    """Loss per domain against a global step; step counters that restart (per domain) are offset."""
    series: dict[str, tuple[list, list]] = {}
    offset, prev = 0.0, None
    for rec in log_records:
        loss = h.num(rec.get("loss"))
        if rec.get("event") != "train" or loss is None:
            continue
        step = h.num(rec.get("step"))
        step = (prev or 0.0) + 1 if step is None else step
        if prev is not None and step < prev:
            offset += prev
        prev = step
        xs, ys = series.setdefault(str(rec.get("domain", "training")), ([], []))
        xs.append(step + offset)
        ys.append(loss)
    return series


def _loss_section(log_records: list[dict]) -> str:
    series = _train_series(log_records)
    if not series:
        return '<h2>Training loss</h2><p class="note">No training points in log.jsonl.</p>'
    fig = h.xy_lines_fig(series, "Training loss", "optimizer step", "loss")
    return "<h2>Training loss</h2>" + h.plot_div(fig, "loss", "plot-loss")


def _events_section(log_records: list[dict]) -> str:
    events = [r for r in log_records if r.get("event") not in ("train", "eval", "restem", "diagnostics", None)]
    if not events:
        return ""
    keys = ["event"] + sorted({k for r in events for k in r} - {"event"})
    rows = [[h.esc(h.fmt(r.get(k, ""))) for k in keys] for r in events]
    return "<h2>Events</h2>" + h.table(keys, rows, numeric_from=len(keys))


RESTEM_COLUMNS = ["mean_score", "best_score", "baseline_score", "candidate_spread", "repeat_spread",
                  "mean_likelihood", "best_likelihood", "candidate_spread_likelihood", "repeat_spread_likelihood",
                  "kept", "writer_loss", "seconds"]


def _restem_section(log_records: list[dict], condition: str = "") -> str:
    """ReSTEM rounds (`restem` events): do kept notes improve the writer, and is the reward above its noise?
    `condition` names the run in a comparison (heading and plot ids)."""
    rounds = [r for r in log_records if r.get("event") == "restem"]
    if not rounds:
        return ""
    suffix = f"-{condition}" if condition else ""
    labels = [f"{r.get('domain', '')} r{r.get('round', i + 1)}" for i, r in enumerate(rounds)]
    scores = h.lines_fig(labels, {name: [h.num(r.get(key)) for r in rounds] for name, key in (
        ("mean candidate", "mean_score"), ("best candidate", "best_score"), ("no notes", "baseline_score"))},
        "Quiz score of candidate notes per ReSTEM round", "domain, round", "score", yrange=[0, 1.05])
    likelihoods = h.lines_fig(labels, {name: [h.num(r.get(key)) for r in rounds] for name, key in (
        ("mean candidate", "mean_likelihood"), ("best candidate", "best_likelihood"),
        ("no notes", "baseline_likelihood"))},
        "Mean log-probability of the quiz answers per ReSTEM round (the graded reward)", "domain, round",
        "log-probability per answer token")
    spreads = h.lines_fig(labels, {name: [h.num(r.get(key)) for r in rounds] for name, key in (
        ("between candidates (score)", "candidate_spread"), ("same candidate, other seeds (score)", "repeat_spread"),
        ("between candidates (log-lik.)", "candidate_spread_likelihood"),
        ("same candidate, other seeds (log-lik.)", "repeat_spread_likelihood"))},
        "Reward spread: candidates against repeated evaluations (noise)", "domain, round", "standard deviation")
    rows = [[h.esc(label)] + [h.esc(h.fmt(r.get(key))) for key in RESTEM_COLUMNS] for label, r in zip(labels, rounds,
                                                                                                   strict=True)]
    heading = f"ReSTEM rounds (study notes){f': condition {h.esc(condition)}' if condition else ''}"
    return (f"<h2>{heading}</h2>" + h.plot_div(scores, "restem", f"plot-restem-scores{suffix}")
            + h.plot_div(likelihoods, "restem", f"plot-restem-likelihood{suffix}")
            + h.plot_div(spreads, "restem", f"plot-restem-spread{suffix}") + h.table(["round"] + RESTEM_COLUMNS, rows))


SLEEP_COLUMNS = ["method", "adapters in", "practice answers: base -> with adapters -> base after",
                 "answer gain kept", "perplexity gain kept", "canary before -> after", "seconds", "outcome"]


def _sleep_section(log_records: list[dict]) -> str:
    """One row per sleep (`sleep` and `rollback` events of the consolidation piece)."""
    sleeps = [r for r in log_records if r.get("event") in ("sleep", "rollback") and "passed" in r]
    if not sleeps:
        return ""
    rows = []
    for r in sleeps:
        answers = r.get("answers") or {}
        outcome = "kept" if r.get("passed") else f"rolled back: {r.get('why', '')}"
        rows.append([h.esc(h.fmt(v)) for v in (
            r.get("method", "distill"), len(r.get("episodes", [])),
            " -> ".join(h.fmt(answers.get(k)) for k in ("base_before", "with_adapters", "base_after")),
            r.get("answer_transfer"), r.get("transfer"),
            f"{h.fmt(r.get('canary_before'))} -> {h.fmt(r.get('canary_after'))}", r.get("seconds"), outcome)])
    return "<h2>Sleeps (consolidation)</h2>" + h.table(SLEEP_COLUMNS, rows, numeric_from=len(SLEEP_COLUMNS))


def _prompts_section(results: dict) -> str:
    prompts = results.get("prompts")
    if not prompts:
        return ""
    if not isinstance(prompts, dict):
        prompts = {"prompt": prompts}
    blocks = "".join(
        f"<h3>{h.esc(name)}</h3><pre>{h.esc(t if isinstance(t, str) else json.dumps(t, indent=2))}</pre>"
        for name, t in prompts.items()
    )
    return "<h2>Scoring prompts</h2>" + blocks


def _config_section(results: dict) -> str:
    config = results.get("config")
    if not config:
        return ""
    text = json.dumps(config, indent=2, sort_keys=True, default=str)
    return f"<h2>Config</h2><details><summary>resolved config</summary><pre>{h.esc(text)}</pre></details>"


def _curves_section(results: dict) -> str:
    domains, matrix = _domains(results), _matrix(results)
    series = {d: [row[j] for row in matrix] for j, d in enumerate(domains)}
    fig = h.lines_fig(_row_labels(domains, len(matrix)), series, "Per-domain score over the stream",
                     "model state", "score", yrange=[0, 1.05])
    return "<h2>Per-domain scores over the stream</h2>" + h.plot_div(fig, "curves", "plot-curves")


# ---------------------------------------------------------------- public API


def _exam_section(results: dict) -> str:
    """The second score: each domain's exam questions (e.g. MMLU), when the stream has them."""
    exams = results.get("exam_matrix")
    if not exams:
        return ""
    fig = _heatmap_fig({**results, "accuracy_matrix": exams}, "Exam scores (second score; blank: no exam)")
    return "<h2>Exam questions</h2>" + h.plot_div(fig, "heatmap", "plot-exam-heatmap")


def _dashboard_section(records: list[dict]) -> str:
    """The self-test's capability dashboard (lifelong/selftest/dashboard.py); empty without a self-test."""

    return dashboard_section(records)


def _why_section(results: dict, records: list[dict]) -> str:
    """Forgetting diagnostics beside each round's forgetting (lifelong/diagnostics/report.py)."""

    return why_section(results, records)


def render_run_report(results: dict, log_records: list[dict]) -> str:
    """The full HTML page for one run (results.json contents + log.jsonl records)."""
    records = [r for r in log_records or [] if isinstance(r, dict)]
    heat = h.plot_div(_heatmap_fig(results, "Accuracy matrix"), "heatmap", "plot-heatmap")
    body = "\n".join([
        _header(results),
        "<h2>Metrics</h2>" + _metrics_table(results),
        "<h2>Accuracy matrix</h2>" + heat,
        _exam_section(results),
        _curves_section(results),
        _canary_section(results),
        _dashboard_section(records),
        _loss_section(records),
        _why_section(results, records),
        _restem_section(records),
        _sleep_section(records),
        _events_section(records),
        _prompts_section(results),
        _config_section(results),
    ])
    title = f"lifelong run: {results.get('model', '?')} / condition {results.get('condition', '?')}"
    return h.page(title, body)


def _compare_metrics_table(compare: dict[str, dict]) -> str:
    names = list(compare)
    rows = []
    for key, label in METRICS:
        cells = [_fmt_metric((res.get("metrics") or {}).get(key), _domains(res)) for res in compare.values()]
        rows.append([h.esc(label)] + [h.esc(c) for c in cells])
    return h.table(["metric"] + [h.esc(n) for n in names], rows)


def _compare_charts(compare: dict[str, dict]) -> str:
    labels = dict(METRICS)
    groups = {name: [h.num((res.get("metrics") or {}).get(k)) for k in COMPARE_CHART_METRICS]
              for name, res in compare.items()}
    summary = h.bars_fig([labels[k] for k in COMPARE_CHART_METRICS], groups, "Key metrics by condition",
                        "value")
    domains = list(dict.fromkeys(d for res in compare.values() for d in _domains(res)))
    finals = {}
    for name, res in compare.items():
        label, row = _final_scores(res)
        scores = dict(zip(_domains(res), row, strict=True))
        finals[f"{name} ({label})"] = [scores.get(d) for d in domains]
    per_domain = h.bars_fig(domains, finals, "Final score per domain, by condition", "score")
    return (
        "<h2>Key metrics</h2>" + h.plot_div(summary, "bars", "plot-compare-metrics")
        + "<h2>Final per-domain scores</h2>" + h.plot_div(per_domain, "bars", "plot-compare-domains")
    )


def render_compare_report(compare: dict[str, dict], logs: dict[str, list[dict]] | None = None) -> str:
    """The HTML page comparing conditions: ``compare`` maps condition name -> its results dict; ``logs``
    (condition -> its log.jsonl records, where the runs sit in subfolders) adds links to each run's own
    report and the ReSTEM rounds of the conditions that have them."""
    models = sorted({str(r.get("model")) for r in compare.values() if r.get("model")})
    meta = (f"<b>model</b>: {h.esc(', '.join(models) or 'n/a')}<br>"
            f"<b>conditions</b>: {h.esc(', '.join(compare))}")
    heatmaps = "".join(
        h.plot_div(_heatmap_fig(res, f"Accuracy matrix: {name}"), "heatmap", f"plot-heatmap-{i}")
        for i, (name, res) in enumerate(compare.items())
    )
    body = "\n".join([
        f'<h1>lifelong comparison</h1><p class="meta">{meta}</p>',
        "<h2>Metrics</h2>" + _compare_metrics_table(compare),
        _compare_charts(compare),
        "<h2>Accuracy matrices</h2>" + heatmaps,
        _runs_section(logs) if logs else "",
    ])
    return h.page("lifelong comparison: " + ", ".join(compare), body)


def _runs_section(logs: dict[str, list[dict]]) -> str:
    links = " · ".join(f'<a href="{h.esc(name)}/report.html">{h.esc(name)}</a>' for name in logs)
    restem = "".join(_restem_section(records, name) for name, records in logs.items())
    return f"<h2>Each condition's own report</h2><p>{links}</p>" + restem


def read_log(path: Path) -> list[dict]:
    """log.jsonl records; blank, truncated or non-object lines (a run still writing) are skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def write_run_report(out_dir: Path, results: dict | None = None) -> Path:
    """Write ``out_dir/report.html`` from ``results`` (default: results.json there) and its log.jsonl."""
    out_dir = Path(out_dir)
    if results is None:
        path = out_dir / "results.json"
        if not path.exists():
            raise InputError(path, "no results.json in this folder (is it a run's output folder?)")
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(path, f"not valid JSON: {e.msg}", line=e.lineno) from None
        if not isinstance(results, dict):
            raise InputError(path, "expected a JSON object")
    page = render_run_report(results, read_log(out_dir / "log.jsonl"))
    return write_atomic(out_dir / "report.html", page)


def write_compare_report(out_dir: Path, compare: dict[str, dict]) -> Path:
    """Write ``out_dir/report.html`` comparing the conditions in ``compare`` (their runs in out_dir/<name>/)."""
    out_dir = Path(out_dir)
    logs = {name: read_log(out_dir / name / "log.jsonl") for name in compare if (out_dir / name).is_dir()}
    return write_atomic(out_dir / "report.html", render_compare_report(compare, logs))
