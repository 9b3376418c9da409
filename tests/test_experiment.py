import json

import pytest

from lifelong.config import load_config
from lifelong.experiment import Experiment

from conftest import interrupt_before_domain

FAST = {"model": "tiny", "condition": "a", "training": {"epochs": 2, "batch_size": 2},
        "evaluation": {"progress": False}}


def run(stream, out, **extra):
    config = load_config(overrides={**FAST, "stream": str(stream), "out": str(out), **extra})
    return Experiment(config).run()


def test_results_follow_the_design_contract(user_stream, tmp_path):
    results = run(user_stream, tmp_path / "out")
    assert results["domains"] == ["a_colors", "b_ships"]
    matrix = results["accuracy_matrix"]
    assert len(matrix) == 3 and all(len(row) == 2 for row in matrix)
    assert len(results["canary"]) == 3
    assert set(results["metrics"]) >= {"average_accuracy", "learning_accuracy", "forgetting", "bwt", "fwt",
                                       "general_retention", "worst_general_retention", "learning_efficiency"}
    assert results["steps"] == [4, 2]  # a_colors: 3 examples = 2 batches, b_ships: 1 doc = 1 batch; 2 epochs
    assert "Question: {question}" in results["prompts"]["template"]
    out = tmp_path / "out"
    for name in ("results.json", "report.html", "log.jsonl", "config.yaml", "state.json"):
        assert (out / name).is_file(), name
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events.count("eval") == 3 * 3  # 3 rows x (2 domains + canary)
    assert "train" in events and "curve" in events
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    domain_evals = [r for r in records if r["event"] == "eval" and r["domain"] != "canary"]
    assert all(r["perplexity"] > 1.0 for r in domain_evals)  # documents' perplexity is logged per row


def test_the_curve_ends_on_the_row_score_without_scoring_the_round_end_twice(user_stream, tmp_path, monkeypatch):
    from lifelong.evaluation.evaluator import Evaluator

    scored = []
    score_domain = Evaluator.score_domain
    monkeypatch.setattr(Evaluator, "score_domain", lambda self, model, domain, *a, **k: (
        scored.append(domain.name), score_domain(self, model, domain, *a, **k))[1])
    results = run(user_stream, tmp_path / "out")
    records = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    curves = {name: [(r["step"], r["score"]) for r in records if r["event"] == "curve" and r["domain"] == name]
              for name in results["domains"]}
    matrix = results["accuracy_matrix"]
    assert [step for step, _ in curves["a_colors"]] == [2, 4]  # per epoch: 2 batches each
    assert curves["a_colors"][-1][1] == matrix[1][0] and curves["b_ships"][-1][1] == matrix[2][1]
    # 3 rows x (2 domains + canary), and one mid-round point per domain (after epoch 1): the last is the row's
    assert len(scored) == 3 * 3 + 2


def test_no_canary_file_means_null_canary(user_stream, tmp_path):
    (user_stream / "canary.jsonl").unlink()
    results = run(user_stream, tmp_path / "out")
    assert results["canary"] is None
    assert results["metrics"]["general_retention"] is None


def test_killed_run_resumes_at_the_next_domain_and_matches(user_stream, tmp_path, monkeypatch):
    reference = run(user_stream, tmp_path / "straight")

    resume = interrupt_before_domain(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run(user_stream, tmp_path / "killed")
    partial = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert len(partial["accuracy_matrix"]) == 2 and partial["metrics"] is None

    resume()
    resumed = run(user_stream, tmp_path / "killed")
    assert resumed["accuracy_matrix"][:2] == partial["accuracy_matrix"]
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert resumed["metrics"] == reference["metrics"]
    log = (tmp_path / "killed" / "log.jsonl").read_text()
    assert '"event": "resume"' in log


def test_a_different_config_in_the_same_folder_is_refused(user_stream, tmp_path):
    from lifelong.errors import ConfigError

    run(user_stream, tmp_path / "out")
    with pytest.raises(ConfigError, match="different config"):
        run(user_stream, tmp_path / "out", seed=4)


def test_a_run_made_before_an_upgrade_that_added_settings_still_resumes(user_stream, tmp_path):
    import yaml

    from lifelong.errors import ConfigError

    out = tmp_path / "out"
    first = run(user_stream, out)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["consolidation"]["min_answer_transfer"]  # as an older version wrote it
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    state = json.loads((out / "state.json").read_text())
    (out / "state.json").write_text(json.dumps({**state, "fingerprint": "written-by-an-older-version"}))
    assert run(user_stream, out)["accuracy_matrix"] == first["accuracy_matrix"]
    saved["training"]["lr"] = 1.0  # a setting that does differ still refuses the folder
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match="different config"):
        run(user_stream, out)


def test_only_the_newest_checkpoints_are_kept(user_stream, tmp_path):
    run(user_stream, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == ["row-2"]


def test_exam_files_give_a_second_score_beside_the_first(user_stream, tmp_path):
    from conftest import write_jsonl

    write_jsonl(user_stream / "exam" / "a_colors.jsonl", [
        {"kind": "mc", "question": "Which is a color?", "choices": ["blue", "seven"], "answer": 0},
        {"kind": "mc", "question": "Which is a number?", "choices": ["green", "seven"], "answer": 1},
    ])
    results = run(user_stream, tmp_path / "out")
    exams = results["exam_matrix"]
    assert len(exams) == 3 and all(row[1] is None for row in exams)  # b_ships has no exam
    assert all(row[0] in (0.0, 0.5, 1.0) for row in exams)
    log = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("exam")) == 3
    assert "plot-exam-heatmap" in (tmp_path / "out" / "report.html").read_text()
    assert results["accuracy_matrix"] == run(user_stream, tmp_path / "off",
                                             evaluation={"progress": False, "exams": False})["accuracy_matrix"]


def test_a_mixed_precision_run_trains_and_says_so(user_stream, tmp_path):
    results = run(user_stream, tmp_path / "out", mixed_precision="bf16", threads=1)
    start = json.loads((tmp_path / "out" / "log.jsonl").read_text().splitlines()[0])
    assert (start["event"], start["mixed_precision"], start["threads"]) == ("start", "bf16", 1)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "train"]
    assert losses and losses[-1] < losses[0]
    assert results["steps"] == [4, 2]


@pytest.mark.parametrize("rows, scored", [
    ("own", [[True, True], [True, False], [True, True]]),  # before, right after its own domain, at the end
    ("ends", [[True, True], [False, False], [True, True]]),  # before and at the end
])
def test_exam_rows_choose_which_rows_score_the_exams(user_stream, tmp_path, rows, scored):
    from conftest import write_jsonl

    for name in ("a_colors", "b_ships"):
        write_jsonl(user_stream / "exam" / f"{name}.jsonl", [
            {"kind": "mc", "question": f"Which is color {k}?", "choices": ["blue", "seven"], "answer": 0}
            for k in range(3)])
    results = run(user_stream, tmp_path / "out", evaluation={"progress": False, "exam_rows": rows,
                                                             "exam_max_items": 2})
    exams = results["exam_matrix"]
    assert [[cell is not None for cell in row] for row in exams] == scored
    log = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["items"] for r in log if r.get("exam")] == [2] * sum(map(sum, scored))
