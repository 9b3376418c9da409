"""The HTML reports: content, self-containment, escaping, atomic writes, and drawing in headless Chromium."""

from __future__ import annotations

import copy
import json
import re

import pytest

from lifelong.errors import InputError
from lifelong.report import (
    METRICS,
    _train_series,
    render_compare_report,
    render_run_report,
    write_compare_report,
    write_run_report,
)

from browser import render_in_chromium, require_chromium

DOMAINS = ["medical", "legal", "code"]
RESULTS = {
    "model": "SmolLM2-135M",
    "condition": "b",
    "domains": DOMAINS,
    "accuracy_matrix": [[0.1, 0.2, 0.05], [0.6, 0.25, 0.07], [0.45, 0.7, 0.1], [0.4, 0.6, 0.8]],
    "canary": [0.77, 0.47, 0.6, 0.73],
    "metrics": {
        "average_accuracy": 0.6, "learning_accuracy": 0.7, "forgetting": 0.15, "bwt": -0.15, "fwt": 0.04,
        "general_retention": 0.948, "worst_general_retention": 0.61, "learning_efficiency": [120, 80, None],
        "self_teaching_quality": None,
    },
    "steps": [], "timing": {"total_s": 123.4}, "config": {"seed": 7},
    "prompts": {"qa": "Question: {question}\nAnswer:"},
}
LOG = [
    *({"event": "train", "domain": d, "step": s, "loss": 3.0 - s / 50, "lr": 1e-4, "time": 1.0}
      for d in DOMAINS for s in range(0, 50, 10)),
    {"event": "eval", "row": 1, "after": "medical", "domain": "legal", "score": 0.25, "step": 50},
    {"event": "eval", "row": 1, "domain": "canary", "score": 0.47},
    {"event": "rollback", "row": 1, "to": "checkpoint-1", "extra": {"nested": [1, 2]}},
]
EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def results(**changes) -> dict:
    res = copy.deepcopy(RESULTS)
    res.update(changes)
    return res


def assert_self_contained(page: str) -> None:
    assert not EXTERNAL.search(page), EXTERNAL.search(page).group(0)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)  # no fonts/styles fetched from CSS
    assert page.count("* plotly.js v") == 1  # the library is embedded inline, once per page


def test_run_report_is_self_contained_and_complete():
    page = render_run_report(results(), LOG)
    assert_self_contained(page)
    for name in [*DOMAINS, "SmolLM2-135M", "after legal", "before"]:
        assert name in page
    for key, label in METRICS:
        assert key in page and label in page
    assert "0.948" in page and "medical: 120, legal: 80, code: n/a" in page
    kinds = re.findall(r'class="lifelong-plot" data-kind="(\w+)"', page)
    assert kinds == ["heatmap", "curves", "canary", "loss"]
    assert "rollback" in page and "checkpoint-1" in page  # other events are listed
    assert "Question: {question}" in page  # scoring prompts


def test_no_canary_is_said_not_drawn():
    for canary in (None, [None, None, None, None]):
        page = render_run_report(results(canary=canary), [])
        assert "This stream has no canary." in page
        assert 'data-kind="canary"' not in page
        assert "No training points" in page


def test_partial_run_renders():
    partial = results(
        accuracy_matrix=[[0.1, 0.2, 0.05], [0.6, None, None], None, [None, None, None]],
        canary=[0.77, 0.5, None, None],
        metrics={"average_accuracy": None, "learning_efficiency": None},
    )
    page = render_run_report(partial, LOG[:3])
    assert_self_contained(page)
    assert "after medical" in page and "n/a" in page
    assert render_run_report({"domains": [], "accuracy_matrix": []}, [])  # nothing at all still renders


def test_user_strings_are_escaped():
    evil = "<script>alert(1)</script>"
    page = render_run_report(results(model=evil, domains=[evil, "legal", "code"]), [{"event": evil}])
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_train_steps_that_restart_per_domain_are_offset():
    series = _train_series([
        {"event": "train", "domain": "a", "step": 5, "loss": 1.0},
        {"event": "train", "domain": "a", "step": 10, "loss": 0.9},
        {"event": "train", "domain": "b", "step": 5, "loss": 2.0},
        {"event": "train", "domain": "b", "loss": "bad"},
    ])
    assert series == {"a": ([5, 10], [1.0, 0.9]), "b": ([15], [2.0])}


def test_compare_report_shows_both_conditions():
    partial = results(condition="a", canary=None, accuracy_matrix=[[0.1, 0.2, 0.05], [0.7, 0.1, 0.0]])
    page = render_compare_report({"a-replay": partial, "b-lora": results()})
    assert_self_contained(page)
    assert "a-replay" in page and "b-lora" in page
    for _, label in METRICS:
        assert label in page
    kinds = re.findall(r'class="lifelong-plot" data-kind="(\w+)"', page)
    assert kinds.count("heatmap") == 2 and kinds.count("bars") == 2
    assert "a-replay (after medical)" in page  # a partial run's final scores say which state they are


def test_write_run_report_reads_folder(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(results()))
    lines = [json.dumps(r) for r in LOG] + ["", "[1, 2]", '{"event": "train", "trunc']  # a run still writing
    (tmp_path / "log.jsonl").write_text("\n".join(lines))
    path = write_run_report(tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert "checkpoint-1" in page and 'data-kind="loss"' in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "report.html", "results.json"]
    # explicit results, no log: still written
    other = tmp_path / "other"
    assert write_run_report(other, results(model="given")).read_text().count("given") >= 1


def test_write_run_report_without_results_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="results.json"):
        write_run_report(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        write_run_report(tmp_path)


@pytest.mark.browser
def test_run_report_draws_in_chromium(tmp_path):
    require_chromium()
    (tmp_path / "results.json").write_text(json.dumps(results()))
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in LOG))
    found = render_in_chromium(write_run_report(tmp_path))
    assert found["js_errors"] == []
    assert found["n_drawn"] >= 4, found["plots"]
    assert found["n_heatmaps_drawn"] >= 1, found["plots"]


@pytest.mark.browser
def test_compare_report_draws_in_chromium(tmp_path):
    require_chromium()
    partial = results(condition="a", canary=None, accuracy_matrix=[[0.1, 0.2, 0.05], [0.7, None, None]])
    found = render_in_chromium(write_compare_report(tmp_path, {"a": partial, "b": results()}))
    assert found["js_errors"] == []
    assert found["n_plots"] == 4 and found["n_drawn"] == 4, found["plots"]
    assert found["n_heatmaps_drawn"] == 2, found["plots"]


def test_compare_report_links_each_run_and_shows_restem_rounds_where_a_run_has_them():
    restem = {"event": "restem", "domain": "medical", "round": 1, "mean_score": 0.2, "best_score": 0.5,
              "baseline_score": 0.1}
    page = render_compare_report({"d": results(), "e": results()}, logs={"d": LOG, "e": LOG + [restem]})
    assert_self_contained(page)
    assert 'href="d/report.html"' in page and 'href="e/report.html"' in page
    assert "ReSTEM rounds (study notes): condition e" in page and "condition d" not in page
    assert 'id="plot-restem-scores-e"' in page


def test_run_report_has_a_row_per_sleep_with_its_outcome_and_why():
    kept = {"event": "sleep", "method": "merge (cat, 1 repair epochs)", "episodes": ["episode-1", "episode-2"],
            "passed": True, "why": "every check passed", "answers": {"base_before": 0.1, "with_adapters": 0.6,
                                                                    "base_after": 0.55},
            "answer_transfer": 0.9, "transfer": 0.95, "canary_before": 0.9, "canary_after": 0.875, "seconds": 12.5}
    lost = {**kept, "event": "rollback", "method": "distill", "episodes": ["episode-3"], "passed": False,
            "why": "kept 0.06 of the answer gain < 0.5"}
    page = render_run_report(results(), LOG + [kept, lost])
    section = page[page.index("Sleeps (consolidation)"):]
    assert "merge (cat, 1 repair epochs)" in section and "0.100 -&gt; 0.600 -&gt; 0.550" in section
    assert "0.900 -&gt; 0.875" in section and "rolled back: kept 0.06 of the answer gain &lt; 0.5" in section
    assert "Sleeps (consolidation)" not in render_run_report(results(), LOG)  # no sleep, no section
