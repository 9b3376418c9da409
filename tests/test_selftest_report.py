"""The capability dashboard in report.html: built from log.jsonl alone, decisions marked, drawn in Chromium."""

from __future__ import annotations

import json
import re

import pytest

from lifelong.report import render_run_report, write_run_report
from lifelong.selftest.dashboard import capability_series, dashboard_section

from browser import render_in_chromium, require_chromium

RESULTS = {"model": "tiny", "condition": "a", "domains": ["med", "law"],
           "accuracy_matrix": [[0.1, 0.1], [0.5, 0.1], [0.45, 0.5]], "canary": [1.0, 1.0, 0.95], "metrics": None}
DROP = {"regressed": True, "drop": 0.4, "tolerance": 0.05, "drop_lower_bound": 0.27,
        "reason": "dropped 0.400 (> 0.050); beyond noise (40 items, drop >= 0.267)"}
LOG = [
    {"event": "selftest", "round": 0, "phase": "baseline", "domain": "med", "scores": {"canary": {"score": 1.0,
                                                                                                  "items": 40}}},
    {"event": "canary", "round": 1, "domain": "med", "step": 5, "steps": 36, "score": 1.0, "items": 40,
     "regressed": False},
    {"event": "canary", "round": 1, "domain": "med", "step": 10, "steps": 36, "score": 0.6, "items": 40,
     "regressed": True},
    {"event": "regression", "round": 1, "phase": "in_round", "step": 10, "capability": "canary", "before": 1.0,
     "after": 0.6, "drop": DROP, "action": "restore", "restored_step": 5},
    {"event": "selftest", "round": 1, "phase": "after_round", "domain": "med",
     "scores": {"canary": {"score": 1.0, "items": 40}, "med": {"score": 0.2, "items": 32}}, "regressed": []},
    {"event": "repair", "round": 1, "attempt": 1, "capabilities": ["canary"], "start": "snapshot", "lr": 1.5e-4,
     "ewc_lambda": 1000.0, "replay_examples": 24, "steps": 30, "seconds": 80.0, "result": "repaired",
     "scores": {"canary": {"score": 0.975, "items": 40}, "med": {"score": 0.5, "items": 32}}},
    {"event": "selftest", "round": 1, "phase": "accepted", "domain": "med", "seconds": 120.5,
     "scores": {"canary": {"score": 0.975, "items": 40}, "med": {"score": 0.5, "items": 32}}},
    {"event": "selftest", "round": 2, "phase": "after_round", "domain": "law", "regressed": ["med"],
     "scores": {"canary": {"score": 0.95, "items": 40}, "med": {"score": 0.2, "items": 32},
                "law": {"score": 0.5, "items": 32}}},
    {"event": "regression", "round": 2, "phase": "after_round", "capability": "med", "before": 0.5, "after": 0.2,
     "drop": DROP},
    {"event": "repair", "round": 2, "attempt": 1, "capabilities": ["med"], "start": "snapshot", "result":
     "still regressed", "scores": {"med": {"score": 0.25, "items": 32}}},
    {"event": "rollback", "round": 2, "domain": "law", "capabilities": ["med"], "to": "the round's start", "step": 0,
     "why": {"med": {"before": 0.5, "after": 0.25, "reason": "dropped 0.250 <script>x</script>"}}},
    {"event": "selftest", "round": 2, "phase": "accepted", "domain": "law", "seconds": 200.0,
     "scores": {"canary": {"score": 0.975, "items": 40}, "med": {"score": 0.5, "items": 32},
                "law": {"score": 0.1, "items": 32}}},
]


def test_series_hold_the_kept_scores_per_round():
    series = capability_series(LOG)
    assert series == {"canary": {0: 1.0, 1: 0.975, 2: 0.975}, "med": {1: 0.5, 2: 0.5}, "law": {2: 0.1}}


def test_dashboard_marks_every_decision_and_escapes():
    html = dashboard_section(LOG)
    assert 'data-kind="dashboard"' in html
    assert "regressions found: 2, repairs: 2, rollbacks: 1" in html
    assert "round ended at step 5" in html and "retrained from the round&#x27;s start" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    spec = json.loads(re.search(r"var s=(\{.*?\});Plotly", html, re.S).group(1))
    names = [trace.get("name") for trace in spec["data"]]
    assert {"canary", "med", "law", "regression", "repair", "rollback", "canary, inside rounds"} <= set(names)
    assert "med: before repair/rollback" in names  # the damage a rollback undid is still shown
    inside = next(t for t in spec["data"] if t.get("name") == "canary, inside rounds")
    assert inside["x"] == pytest.approx([5 / 36, 10 / 36])
    assert any(shape.get("type") == "line" and shape.get("x0") == 2 for shape in spec["layout"]["shapes"])


def test_no_self_test_means_no_dashboard():
    assert dashboard_section([{"event": "eval", "domain": "canary", "score": 1.0}]) == ""
    assert 'data-kind="dashboard"' not in render_run_report(RESULTS, [{"event": "rollback", "round": 1}])


def test_report_command_rebuilds_the_dashboard_from_the_log(tmp_path):
    from typer.testing import CliRunner

    from lifelong.cli import app

    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in LOG))
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert 'data-kind="dashboard"' in (tmp_path / "report.html").read_text()


@pytest.mark.browser
def test_dashboard_draws_in_chromium(tmp_path):
    require_chromium()
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in LOG))
    found = render_in_chromium(write_run_report(tmp_path))
    assert found["js_errors"] == []
    dashboard = [p for p in found["plots"] if p["kind"] == "dashboard"]
    assert len(dashboard) == 1 and dashboard[0]["drawn"] and dashboard[0]["traces"] >= 6, dashboard
