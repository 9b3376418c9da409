"""The report's "why" section: per round, the diagnostics beside the forgetting that round caused.

Built from log.jsonl's `diagnostics` events and results.json's accuracy matrix (lifelong/report.py
calls `why_section`); empty when a run has no diagnostics events.
"""

from __future__ import annotations

import plotly.graph_objects as go

from lifelong.diagnostics import analysis
from lifelong.report_html import esc as _esc
from lifelong.report_html import layout as _layout
from lifelong.report_html import plot_div as _plot_div
from lifelong.report_html import table as _table


def _f(value, digits: int = 3) -> str:
    value = analysis._num(value)
    return "n/a" if value is None else f"{value:.{digits}f}"


def _arrow(before, after, digits: int = 3) -> str:
    return f"{_f(before, digits)} → {_f(after, digits)}"


def _per_group(values: dict, digits: int = 2) -> str:
    if not isinstance(values, dict) or not values:
        return "n/a"
    return ", ".join(f"{name}: {_f(v, digits)}" for name, v in values.items() if name != "all")


def _round_table(events: dict[int, dict], esc, table) -> str:
    rows = []
    for number, e in events.items():
        d, s, r = e.get("drift") or {}, e.get("sharpness") or {}, e.get("rotation") or {}
        c = e.get("collapse") or {}
        before, after = c.get("before") or {}, c.get("after") or {}
        rows.append([
            esc(number), esc(e.get("domain", "?")),
            esc(f"{_f(d.get('cka_mean'))} ({_f(d.get('cka_min'))}) / {_f(d.get('cka_robust_mean'))}"),
            esc(f"{_f(d.get('attention_drift_lower'))} / {_f(d.get('attention_drift_upper'))}"),
            esc(f"{_f(analysis._largest(s.get('gradient')), 4)} / {_f(analysis._largest(s.get('random')), 4)}"),
            esc(f"{_f(r.get('explained_total'))} / {_f(r.get('heldout_explained_total'))}"),
            esc(_arrow(before.get("distinct_2"), after.get("distinct_2"))),
            esc(_arrow(before.get("predictive_entropy"), after.get("predictive_entropy"))),
            esc(_f((e.get("cost_s") or {}).get("total"), 1)),
        ])
    header = ["round", "learned", "CKA mean (min) / without top channels", "attention drift lower / upper",
              "sharpness gradient / random", "rotation explains (in-sample / held out)", "distinct-2",
              "predictive entropy", "cost (s)"]
    return table(header, rows, numeric_from=2)


def _pair_table(rows: list[dict], esc, table) -> str:
    cells = []
    for row in rows:
        forgot = analysis._num(row["forgetting"])
        mark = "<b>{}</b>" if forgot is not None and forgot > 0 else "{}"
        returned = _per_group(row["returned"]) if row["returned"] else ("not regressed on the probe"
                                                                         if row["probe_drop"] is not None else "n/a")
        cells.append([
            esc(row["round"]), esc(row["learned"]), esc(row["source"]),
            esc(_arrow(row["before"], row["after"], 2)), mark.format(esc(_f(forgot, 2))),
            esc(_f(row["probe_drop"], 2)),
            esc(_f(row["gradient_cosine"])), esc(_per_group(row["gradient_cosines"])), esc(returned),
        ])
    header = ["round", "learned", "source", "score before → after", "forgetting", "probe drop",
              "gradient cosine", "gradient cosine per layer group", "score returned by restoring a group"]
    return table(header, cells, numeric_from=3)


def _correlation_table(rows: list[dict], esc, table) -> str:
    cells = [[esc(c["label"]), esc(c["n"]), esc(_f(c["pearson"], 2)), esc(_f(c["spearman"], 2))]
             for c in analysis.correlations(rows)]
    return table(["measurement", "rows", "Pearson r", "Spearman rho"], cells)


def _cost_table(events: dict[int, dict], esc, table) -> str:
    keys = sorted({k for e in events.values() for k in (e.get("cost_s") or {}) if k != "total"})
    cells = [[esc(n), esc(e.get("domain", "?"))] + [esc(_f((e.get("cost_s") or {}).get(k), 1)) for k in keys]
             + [esc(_f((e.get("cost_s") or {}).get("total"), 1))] for n, e in events.items()]
    return table(["round", "learned", *[esc(k) for k in keys], "total"], cells, numeric_from=2)


def _cka_fig(events: dict[int, dict], layout) -> go.Figure | None:
    rows = [(f"round {n}: {e.get('domain')}", (e.get("drift") or {}).get("cka")) for n, e in events.items()]
    rows = [(label, cka) for label, cka in rows if isinstance(cka, list) and cka]
    if not rows:
        return None
    width = max(len(cka) for _, cka in rows)
    z = [[analysis._num(v) for v in cka] + [None] * (width - len(cka)) for _, cka in rows]
    fig = go.Figure(go.Heatmap(z=z, x=[("emb" if i == 0 else f"L{i}") for i in range(width)],
                               y=[label for label, _ in rows], colorscale="Viridis",
                               colorbar={"title": {"text": "CKA"}},
                               hovertemplate="%{y}<br>%{x}: CKA %{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="hidden state (emb: embeddings output, Lk: after block k)")
    return layout(fig, "Linear CKA of each layer's features, before vs after the round",
                  height=max(240, 120 + 45 * len(rows)))


def _attention_fig(events: dict[int, dict], layout) -> go.Figure | None:
    traces = []
    for n, e in events.items():
        drift = (e.get("drift") or {}).get("attention_drift")
        if isinstance(drift, list) and drift:
            traces.append(go.Scatter(x=list(range(len(drift))), y=[analysis._num(v) for v in drift],
                                     name=f"round {n}: {e.get('domain')}", mode="lines+markers"))
    if not traces:
        return None
    fig = go.Figure(traces)
    fig.update_xaxes(title="block (0 = lowest)")
    fig.update_yaxes(title="relative drift of attention output")
    return layout(fig, "Attention-output drift per block")


def _conflict_fig(rows: list[dict], layout) -> go.Figure | None:
    points = [r for r in rows if analysis._num(r["gradient_cosine"]) is not None
              and analysis._num(r["forgetting"]) is not None]
    if not points:
        return None
    fig = go.Figure(go.Scatter(
        x=[r["gradient_cosine"] for r in points], y=[r["forgetting"] for r in points], mode="markers+text",
        text=[f"{r['source']} (r{r['round']})" for r in points], textposition="top center",
        marker={"size": 10}, hovertemplate="%{text}<br>cosine %{x:.3f}<br>forgetting %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="gradient cosine, new domain vs source, at the round's start")
    fig.update_yaxes(title="forgetting (score lost in the round)")
    return layout(fig, "Gradient conflict vs the forgetting that followed")


def why_section(results: dict, records: list[dict]) -> str:
    """HTML for the "why" section, or "" when the run logged no diagnostics."""
    events = analysis.round_events(records)
    if not events:
        return ""
    rows = analysis.pairs(results, records)
    parts = [
        "<h2>Why it forgot (diagnostics)</h2>",
        '<p class="note">Measured by the <code>diagnostics</code> piece around every round '
        "(docs/architecture.md). Forgetting is the score a source lost in the round (accuracy matrix; "
        "the canary's row); probe drop is the same on the piece's bounded sample of eval items, which the "
        "layer attribution rescores.</p>",
        "<h3>Per round</h3>", _round_table(events, _esc, _table),
        "<h3>Per earlier domain and canary (bold: it lost score)</h3>", _pair_table(rows, _esc, _table),
    ]
    figures = [("cka", _cka_fig(events, _layout)), ("drift", _attention_fig(events, _layout)),
               ("conflict", _conflict_fig(rows, _layout))]
    parts += [_plot_div(fig, kind, f"plot-why-{kind}") for kind, fig in figures if fig is not None]
    parts += ["<h3>Which measurement tracks forgetting in this run</h3>",
              '<p class="note">Across the rows above; round-level measurements take one value per round, so with '
              "few rounds these are descriptions, not tests.</p>",
              _correlation_table(rows, _esc, _table),
              "<h3>Cost of the diagnostics (seconds)</h3>", _cost_table(events, _esc, _table)]
    return "\n".join(parts)
