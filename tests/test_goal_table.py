"""bench/goal_table.py: issue 21's goal lines, checked on results.json files."""

import importlib.util
import json
from pathlib import Path

spec = importlib.util.spec_from_file_location("goal_table", Path(__file__).parents[1] / "bench" / "goal_table.py")
goal_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(goal_table)


def results(condition, learning, forgetting, average, canary=(1.0, 1.0), train_s=(100.0,), seed=0):
    return {"condition": condition, "stream": "/x/docs", "complete": True, "config": {"seed": seed},
            "metrics": {"learning_accuracy": learning, "forgetting": forgetting, "average_accuracy": average},
            "canary": list(canary), "timing": {"train_s": list(train_s), "eval_s": [0.0]}}


def test_each_line_passes_and_fails_on_its_own_threshold():
    others = {"a": results("a", 0.5, 0.2, 0.3), "b": results("b", 0.1, 0, 0.2), "c": results("c", 0.1, 0, 0.25),
              "d": results("d", 0.1, 0, 0.2, train_s=(100.0,)), "f": results("f", 0.1, 0, 0.1)}
    good = goal_table.check(results("e", 0.45, 0.05, 0.3, canary=(1.0, 0.9, 0.95), train_s=(200.0,)), others)
    assert all(passed is True for passed, _ in good.values()), good
    bad = goal_table.check(results("e", 0.44, 0.06, 0.24, canary=(1.0, 0.89, 0.96), train_s=(201.0,)), others)
    assert all(passed is False for passed, _ in bad.values()), bad


def test_a_missing_rival_is_not_a_pass():
    checks = goal_table.check(results("e", 0.5, 0.0, 0.3), {"b": results("b", 0.1, 0, 0.2)})
    assert checks["learning"][0] is None and checks["cost"][0] is None
    assert checks["average"] == (None, "0.300 vs b 0.200; no c, d, f")


def test_runs_group_by_stream_and_seed_and_the_table_marks_the_held_out_stream(tmp_path):
    for name, r in {"a0": results("a", 0.5, 0.2, 0.3), "e0": results("e", 0.5, 0.0, 0.3),
                    "e1": results("e", 0.5, 0.0, 0.3, seed=1)}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(r))
    groups = goal_table.group_runs(sorted(tmp_path.iterdir()))
    assert sorted(groups) == [("docs", 0), ("docs", 1)]
    text = goal_table.table(groups, {"docs"})
    assert "| docs (held out, not tuned on) | 0 | e0 | yes (0.500 vs a 0.500)" in text
    assert "| docs (held out, not tuned on) | 1 | e1 | not run (no a)" in text
