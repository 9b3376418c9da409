"""HTML and plotly helpers shared by every report section: escaping, number formatting, tables, one
plot per div, the page around them (plotly.js embedded inline once per page, nothing fetched).

Below lifelong/report.py and the sections it includes (lifelong/diagnostics/report.py,
lifelong/selftest/dashboard.py), which all draw with these.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

PLOT_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; } .meta b { color: #222; } .note { color: #666; font-style: italic; }
pre { background: #f7f7f7; padding: 0.7em; overflow-x: auto; white-space: pre-wrap; }
.lifelong-plot { width: 100%; }
"""



def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(value: Any) -> float | None:
    """A finite float, or None for null / missing / non-numeric / NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if math.isfinite(value) else "n/a"
    return str(value)


def table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML. Columns from ``numeric_from`` are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"



def plot_div(fig: go.Figure, kind: str, div_id: str) -> str:
    """A div plus the script that draws ``fig`` into it (plotly.js itself is embedded once per page)."""
    spec = json.loads(pio.to_json(fig, validate=False))
    payload = json.dumps(
        {"data": spec.get("data", []), "layout": spec.get("layout", {}), "config": PLOT_CONFIG}
    ).replace("<", "\\u003c")  # no '</script>' can close the tag early
    return (
        f'<div id="{esc(div_id)}" class="lifelong-plot" data-kind="{esc(kind)}"></div>\n'
        f"<script>(function(){{var s={payload};"
        f'Plotly.newPlot("{esc(div_id)}",s.data,s.layout,s.config);}})();</script>'
    )


def layout(fig: go.Figure, title: str, height: int = 400, **kwargs: Any) -> go.Figure:
    kwargs.setdefault("margin", {"l": 60, "r": 30, "t": 60, "b": 60})
    fig.update_layout(title=title, template="plotly_white", height=height, **kwargs)
    return fig


def lines_fig(x: list, series: dict[str, list], title: str, xtitle: str, ytitle: str,
               markers: bool = True, yrange: list | None = None) -> go.Figure:
    mode = "lines+markers" if markers else "lines"
    fig = go.Figure([go.Scatter(x=x, y=ys, name=name, mode=mode) for name, ys in series.items()])
    fig.update_xaxes(title=xtitle)
    fig.update_yaxes(title=ytitle, range=yrange)
    return layout(fig, title, legend={"title": {"text": ""}})


def xy_lines_fig(series: dict[str, tuple[list, list]], title: str, xtitle: str, ytitle: str) -> go.Figure:
    """Lines whose x values differ per series (e.g. loss per domain over global steps)."""
    fig = go.Figure([go.Scatter(x=xs, y=ys, name=name, mode="lines") for name, (xs, ys) in series.items()])
    fig.update_xaxes(title=xtitle)
    fig.update_yaxes(title=ytitle)
    return layout(fig, title)


def bars_fig(categories: list[str], groups: dict[str, list], title: str, ytitle: str) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=categories, y=ys, name=name, text=[fmt(v) if v is not None else "" for v in ys],
               textposition="outside")
        for name, ys in groups.items()
    ])
    fig.update_yaxes(title=ytitle)
    return layout(fig, title, barmode="group", legend={"title": {"text": "condition"}})



def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body>\n{body}\n</body></html>\n"
    )
