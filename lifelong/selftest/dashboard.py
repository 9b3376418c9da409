"""The capability dashboard: every capability the self-test watches, over rounds, with its decisions marked.

Built from log.jsonl alone (so `lifelong report DIR` rebuilds it): `selftest` events give each
capability's scores per round (the baseline, the scores the round left, the scores kept), `canary`
events the checks inside a round, and `regression`, `repair`, `rollback` and `selftest_kept` events
the decisions. Round r's in-round checks sit between r - 1 and r on the x axis, at step / steps.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from lifelong import report_html as r

DECISIONS = ("regression", "repair", "rollback", "selftest_kept")


def _round_of(record: dict) -> int | None:
    value = r.num(record.get("round"))
    return None if value is None else int(value)


def capability_series(records: list[dict]) -> dict[str, dict[int, float]]:
    """Capability -> {round: score kept}: the baseline (round 0 or the round before it was first seen) and each
    round's accepted scores."""
    series: dict[str, dict[int, float]] = {}
    for rec in records:
        if rec.get("event") != "selftest" or rec.get("phase") not in ("baseline", "accepted"):
            continue
        round_ = _round_of(rec)
        for name, entry in (rec.get("scores") or {}).items():
            score = r.num(entry.get("score") if isinstance(entry, dict) else entry)
            if round_ is not None and score is not None:
                series.setdefault(str(name), {})[round_] = score
    return series


def _raw_scores(records: list[dict]) -> dict[str, dict[int, float]]:
    """What each round left before any repair or rollback (`after_round`)."""
    raw: dict[str, dict[int, float]] = {}
    for rec in records:
        if rec.get("event") == "selftest" and rec.get("phase") == "after_round":
            for name, entry in (rec.get("scores") or {}).items():
                score = r.num(entry.get("score") if isinstance(entry, dict) else entry)
                if score is not None and _round_of(rec) is not None:
                    raw.setdefault(str(name), {})[_round_of(rec)] = score
    return raw


def _in_round(records: list[dict]) -> tuple[list[float], list[float], list[str], list[bool]]:
    xs, ys, text, alarms = [], [], [], []
    for rec in records:
        round_, step, score = _round_of(rec), r.num(rec.get("step")), r.num(rec.get("score"))
        if rec.get("event") != "canary" or None in (round_, step, score):
            continue
        total = r.num(rec.get("steps")) or max(step, 1.0)
        xs.append(round_ - 1 + min(step / total, 1.0))
        ys.append(score)
        alarms.append(bool(rec.get("regressed")))
        text.append(f"round {round_}{' (repair)' if rec.get('repair') else ''}, step {int(step)}: "
                    f"{score:.3f}{' ALARM' if rec.get('regressed') else ''}")
    return xs, ys, text, alarms


def _hover(rec: dict) -> str:
    keep = ("capability", "capabilities", "phase", "step", "before", "after", "attempt", "result", "start",
            "ewc_lambda", "replay_examples", "steps", "seconds", "still_regressed", "note")
    parts = [f"{k}: {r.fmt(rec[k])}" for k in keep if k in rec]
    for key in ("drop", "trend"):
        if isinstance(rec.get(key), dict) and rec[key].get("reason"):
            parts.append(f"{key}: {rec[key]['reason']}")
    if isinstance(rec.get("why"), dict):
        parts += [f"{name}: {detail.get('reason', '')}" for name, detail in rec["why"].items()
                  if isinstance(detail, dict)]
    return "<br>".join(r.esc(p) for p in parts)


def dashboard_figure(records: list[dict]) -> go.Figure:
    series, raw = capability_series(records), _raw_scores(records)
    fig = go.Figure()
    for name, points in series.items():
        rounds = sorted(points)
        fig.add_trace(go.Scatter(x=rounds, y=[points[k] for k in rounds], name=name, mode="lines+markers",
                                 legendgroup=name))
        changed = [k for k in sorted(raw.get(name, {})) if abs(raw[name][k] - points.get(k, raw[name][k])) > 1e-9]
        if changed:
            fig.add_trace(go.Scatter(x=changed, y=[raw[name][k] for k in changed], mode="markers", legendgroup=name,
                                     name=f"{name}: before repair/rollback",
                                     marker={"symbol": "circle-open", "size": 10},
                                     hovertemplate=f"{r.esc(name)} as the round left it: %{{y:.3f}}<extra></extra>"))
    xs, ys, text, alarms = _in_round(records)
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, text=text, name="canary, inside rounds", mode="markers",
                                 marker={"symbol": "circle", "size": 6, "color": ["#d62728" if a else "#7f7f7f"
                                                                                  for a in alarms]},
                                 hovertemplate="%{text}<extra></extra>"))
    _decision_markers(fig, records, series, raw)
    fig.update_xaxes(title="round (0: before training; in-round checks between rounds)", dtick=1)
    fig.update_yaxes(title="score", range=[-0.02, 1.05])
    return r.layout(fig, "Capabilities over time, with regressions, repairs and rollbacks", height=480)


def _decision_markers(fig: go.Figure, records: list[dict], series: dict, raw: dict) -> None:
    styles = {"regression": ("x", "#d62728", "regression"), "repair": ("diamond", "#ff7f0e", "repair"),
              "selftest_kept": ("triangle-down", "#9467bd", "regression kept")}
    marks: dict[str, tuple[list, list, list]] = {}
    for rec in records:
        kind, round_ = rec.get("event"), _round_of(rec)
        if kind not in DECISIONS or round_ is None:
            continue
        if kind == "rollback":
            fig.add_vline(x=round_, line_dash="dash", line_color="#444",
                          annotation_text=f"rollback r{round_}", annotation_position="top left")
            names = rec.get("capabilities") or []
            xs, ys, texts = marks.setdefault("rollback", ([], [], []))
            for name in names:
                y = series.get(name, {}).get(round_)
                if y is not None:
                    xs.append(round_)
                    ys.append(y)
                    texts.append(f"rollback: {r.esc(name)}<br>" + _hover(rec))
            continue
        if kind == "regression" and rec.get("phase") == "in_round":
            step, after = r.num(rec.get("step")), r.num(rec.get("after"))
            if step is None or after is None:
                continue
            total = next((r.num(c.get("steps")) for c in records if c.get("event") == "canary"
                          and _round_of(c) == round_ and r.num(c.get("step")) == step), None) or step
            x, names = round_ - 1 + min(step / total, 1.0), [rec.get("capability")]
            y_of = {rec.get("capability"): after}
        elif kind == "repair":
            scores = rec.get("scores") or {}
            names = rec.get("capabilities") or []
            x, y_of = round_, {n: r.num((scores.get(n) or {}).get("score")) for n in names}
        else:
            names = [rec.get("capability")] if rec.get("capability") else rec.get("capabilities") or []
            x = round_
            y_of = {n: r.num(rec.get("after")) if rec.get("after") is not None else raw.get(n, {}).get(round_)
                    for n in names}
        xs, ys, texts = marks.setdefault(kind, ([], [], []))
        for name in names:
            y = y_of.get(name)
            if y is not None:
                xs.append(x)
                ys.append(y)
                texts.append(f"{kind}: {r.esc(name)}<br>" + _hover(rec))
    for kind, (xs, ys, texts) in marks.items():
        symbol, color, label = styles.get(kind, ("square", "#444", "rollback"))
        fig.add_trace(go.Scatter(x=xs, y=ys, text=texts, mode="markers", name=label,
                                 marker={"symbol": symbol, "size": 13, "color": color, "line": {"width": 1}},
                                 hovertemplate="%{text}<extra></extra>"))


def _g(value: Any) -> str:
    number = r.num(value)
    return "n/a" if number is None else f"{number:g}"


def _details(rec: dict) -> str:
    """The table's details cell: the reasons, and what a repair or rollback did."""
    parts = []
    for key in ("drop", "trend"):
        if isinstance(rec.get(key), dict) and rec[key].get("reason"):
            parts.append(str(rec[key]["reason"]))
    if rec.get("event") == "regression" and rec.get("phase") == "in_round":
        parts.append(f"at step {rec.get('step')}" + (f"; the round ended at step {rec['restored_step']}'s weights"
                                                     if "restored_step" in rec else ""))
    if rec.get("event") == "repair" and "start" in rec:
        start = "the round's start" if rec["start"] == "snapshot" else "the regressed weights"
        parts.append(f"attempt {rec.get('attempt')}: retrained from {start}, lr {_g(rec.get('lr'))}, "
                     f"EWC lambda {_g(rec.get('ewc_lambda'))}, {_g(rec.get('replay_examples'))} replayed examples, "
                     f"{_g(rec.get('steps'))} steps, {_g(rec.get('seconds'))} s")
    elif rec.get("note"):
        parts.append(str(rec["note"]))
    if isinstance(rec.get("why"), dict):
        parts += [f"{name}: {detail.get('reason', '')}" for name, detail in rec["why"].items()
                  if isinstance(detail, dict)]
    return "<br>".join(r.esc(p) for p in parts)


def decisions_table(records: list[dict]) -> str:
    rows = []
    for rec in records:
        if rec.get("event") not in DECISIONS:
            continue
        what = rec.get("capability") or ", ".join(rec.get("capabilities") or [])
        change = ""
        if rec.get("before") is not None or rec.get("after") is not None:
            change = f"{r.fmt(r.num(rec.get('before')))} → {r.fmt(r.num(rec.get('after')))}"
        elif isinstance(rec.get("scores"), dict):
            change = ", ".join(f"{k}: {r.fmt(r.num((v or {}).get('score')))}" for k, v in rec["scores"].items()
                               if isinstance(v, dict))
        outcome = rec.get("result") or rec.get("action") or rec.get("to") or rec.get("note") or ""
        rows.append([r.esc(rec.get("round", "")), r.esc(rec["event"]), r.esc(rec.get("phase", "")), r.esc(what),
                     r.esc(change), r.esc(outcome), _details(rec)])
    if not rows:
        return '<p class="note">No regression in any round: nothing was repaired or rolled back.</p>'
    return r.table(["round", "decision", "phase", "capability", "score", "outcome", "details"], rows,
                    numeric_from=99)


def dashboard_section(records: list[dict]) -> str:
    """The dashboard (a plot and the table of decisions), or nothing when the run had no self-test."""
    if not any(rec.get("event") == "selftest" for rec in records):
        return ""
    time_rows = [rec for rec in records if rec.get("event") == "selftest" and rec.get("phase") == "accepted"]
    spent = sum(r.num(rec.get("seconds")) or 0.0 for rec in time_rows)
    summary: dict[str, Any] = {kind: sum(1 for rec in records if rec.get("event") == kind) for kind in DECISIONS}
    meta = (f"<p class=\"meta\">{len(time_rows)} rounds checked; regressions found: {summary['regression']}, "
            f"repairs: {summary['repair']}, rollbacks: {summary['rollback']}, kept regressed: "
            f"{summary['selftest_kept']}; self-test time (checks, repairs): {spent:.1f} s</p>")
    return ("<h2>Capability dashboard (self-test)</h2>" + meta
            + r.plot_div(dashboard_figure(records), "dashboard", "plot-dashboard") + decisions_table(records))
