"""The self-test piece on a real regression: a tiny model taught a canary, then broken by full fine-tuning at a
high learning rate on a narrow domain. The guard must catch it and the canary must come back within noise,
by repair (when there is material to repair with) or by rollback."""

from __future__ import annotations

import copy
import json
import math

import pytest

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem, write_domain
from lifelong.experiment import Experiment
from lifelong.selftest.regression import check_drop

from conftest import interrupt_before_domain

NAMES = ["Plink", "Zorb", "Quell", "Marn", "Tosk", "Vell", "Drun", "Kesh"]
CANARY = [QAItem(f"What is the capital of land {i}?", name) for i, name in enumerate(NAMES)]
NO_SHOTS = {"progress": False, "prompt": {"examples": []}, "perplexity_docs": 0}


@pytest.fixture(scope="session")
def taught():
    """A tiny model that answers the 8-item canary (taught by full fine-tuning): (model, tokenizer)."""
    from lifelong.learner import Learner
    from lifelong.models import load_model
    from lifelong.pieces import build_pieces

    config = load_config(overrides={"model": "tiny", "condition": "a", "evaluation": NO_SHOTS,
                                    "training": {"epochs": 40, "batch_size": 4, "lr": 3e-3}})
    model, tokenizer = load_model("tiny", seed=0)
    teach = Domain("teach", items=[QAItem(q.question, q.answer, split="train") for q in CANARY])
    Learner(model, tokenizer, build_pieces(["full_finetune"], config), config).learn(teach, seed=1)
    return model, tokenizer


def narrow_stream(folder, core: bool):
    """One narrow domain of repetitive text; the canary; optionally a core set holding what must be kept."""
    write_domain(folder / "canary.jsonl", CANARY)
    write_domain(folder / "narrow.jsonl", [Document(f"glorp {i} zazz frob {i * 7} blit zazz glorp frob")
                                           for i in range(16)] + [QAItem("What follows glorp?", "zazz")])
    lines = ["domains: [narrow.jsonl]", "canary: canary.jsonl"]
    if core:  # the practitioner's stored material for what the model must keep (split=train, never scored)
        write_domain(folder / "core.jsonl", [QAItem(q.question, q.answer, split="train") for q in CANARY])
        lines.append("core: core.jsonl")
    (folder / "stream.yaml").write_text("\n".join(lines) + "\n")
    return folder / "stream.yaml"


def run(taught, monkeypatch, tmp_path, core: bool, self_test: dict | None = None, pieces=None, name="out"):
    model, tokenizer = taught
    monkeypatch.setattr("lifelong.experiment.load_model", lambda *a, **k: (copy.deepcopy(model), tokenizer))
    stream = narrow_stream(tmp_path / f"stream-{name}", core)
    config = load_config(overrides={
        "model": "tiny", "condition": "a", "stream": str(stream), "out": str(tmp_path / name), "evaluation": NO_SHOTS,
        "pieces": pieces or ["full_finetune", "self_test"], "training": {"epochs": 3, "batch_size": 4, "lr": 1e-2},
        "self_test": {"canary_every": 2, **(self_test or {})},
        "general": {"core": core}})  # without a core of its own the stream would replay the general one
    results = Experiment(config).run()
    log = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
    return results, log


def events(log, kind):
    return [r for r in log if r["event"] == kind]


def assert_canary_within_noise(results):
    before, after = results["canary"][0], results["canary"][-1]
    assert before == 1.0
    assert not check_drop(before, after, len(CANARY)).regressed, results["canary"]


def test_without_the_guard_the_narrow_domain_breaks_the_canary(taught, monkeypatch, tmp_path):
    results, _ = run(taught, monkeypatch, tmp_path, core=False, pieces=["full_finetune"])
    assert results["canary"][0] == 1.0 and results["canary"][1] <= 0.25  # the regression is real


def test_guard_catches_the_regression_and_rolls_back_when_nothing_can_repair_it(taught, monkeypatch, tmp_path):
    results, log = run(taught, monkeypatch, tmp_path, core=False)
    alarm = [r for r in events(log, "regression") if r["phase"] == "in_round"]
    assert alarm and alarm[0]["capability"] == "canary" and alarm[0]["action"] == "restore"
    assert alarm[0]["restored_step"] == 0 and events(log, "early_stop")  # broken at the first check: back to the start
    repair = events(log, "repair")
    assert len(repair) == 1 and repair[0]["result"] == "skipped: no stored examples"  # no core set: nothing to replay
    rollback = events(log, "rollback")
    assert len(rollback) == 1 and rollback[0]["capabilities"] == ["canary"] and rollback[0]["step"] == 0
    assert "beyond noise" in rollback[0]["why"]["canary"]["reason"]  # why is recorded
    assert results["canary"] == [1.0, 1.0]  # the round's start, exactly
    assert_canary_within_noise(results)
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'data-kind="dashboard"' in page and "rollback" in page


def test_guard_repairs_the_regression_with_targeted_replay(taught, monkeypatch, tmp_path):
    # the round is let run to its regressed end (on_alarm: stop), and the repair continues from there
    results, log = run(taught, monkeypatch, tmp_path, core=True,
                       self_test={"on_alarm": "stop", "repair": {"start": "current", "epochs": 4}})
    assert [r["capability"] for r in events(log, "regression") if r["phase"] == "after_round"] == ["canary"]
    after_round = [r for r in events(log, "selftest") if r["phase"] == "after_round"][0]
    assert after_round["scores"]["canary"]["score"] <= 0.25  # what the round did to the canary
    repair = events(log, "repair")
    assert len(repair) == 1 and repair[0]["result"] == "repaired" and repair[0]["replay_examples"] > 0
    assert not events(log, "rollback")
    assert_canary_within_noise(results)
    accepted = [r for r in events(log, "selftest") if r["phase"] == "accepted"]
    assert accepted[-1]["scores"]["canary"]["score"] == results["canary"][-1]


def test_recovery_trains_on_the_stored_material_alone_until_the_canary_passes(taught, monkeypatch, tmp_path):
    # the round runs to its regressed end (checks only after it); the recovery starts from there
    results, log = run(taught, monkeypatch, tmp_path, core=True,
                       self_test={"canary_every": 0, "repair": {"mode": "recover", "recover_steps": 60,
                                                                "check_every": 2, "lr_factor": 1.0}})
    after_round = [r for r in events(log, "selftest") if r["phase"] == "after_round"][0]
    assert after_round["scores"]["canary"]["score"] <= 0.25  # what the round did to the canary
    repair = events(log, "repair")
    assert len(repair) == 1 and repair[0]["mode"] == "recover" and repair[0]["result"] == "repaired"
    checks = repair[0]["checks"]
    assert checks and checks[-1]["passed"] and not any(c["passed"] for c in checks[:-1])  # it stopped when it passed
    assert repair[0]["steps"] == checks[-1]["step"] < 60
    train = [r for r in log if r["event"] == "train" and "(recover canary)" in r.get("domain", "")]
    assert train  # the recovery's training is logged under its own name
    assert not events(log, "rollback")
    assert_canary_within_noise(results)


def test_rollback_off_keeps_the_regression_and_says_so(taught, monkeypatch, tmp_path):
    results, log = run(taught, monkeypatch, tmp_path, core=False, self_test={"rollback": False, "canary_every": 0})
    kept = events(log, "selftest_kept")
    assert len(kept) == 1 and kept[0]["capabilities"] == ["canary"] and "rollback is false" in kept[0]["note"]
    assert results["canary"][-1] < 0.5  # kept, and nothing pretends otherwise


def test_repair_material_never_holds_eval_items(taught):
    from lifelong.config import PromptConfig
    from lifelong.pieces.self_test import stored_examples

    domain = Domain("d", documents=[Document("A document.")],
                    items=[QAItem("Practice?", "yes", split="train"), QAItem("Exam?", "no")])
    texts = [e.prompt + e.text for e in stored_examples(domain, PromptConfig())]
    assert any("Practice?" in t for t in texts) and not any("Exam?" in t for t in texts)
    assert any("A document." in t for t in texts)


def test_history_survives_a_resume(taught, monkeypatch, tmp_path, user_stream):
    from lifelong.pieces.self_test import SelfTest

    overrides = {"model": "tiny", "condition": "a", "stream": str(user_stream), "out": str(tmp_path / "r"),
                 "evaluation": {"progress": False}, "pieces": ["full_finetune", "self_test"],
                 "training": {"epochs": 1, "batch_size": 2}}
    straight = Experiment(load_config(overrides={**overrides, "out": str(tmp_path / "s")})).run()
    resume = interrupt_before_domain(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        Experiment(load_config(overrides=overrides)).run()
    resume()
    captured = {}
    original = SelfTest.load_state_dict

    def spy(self, state):
        captured.update(state)
        original(self, state)

    monkeypatch.setattr(SelfTest, "load_state_dict", spy)
    resumed = Experiment(load_config(overrides=overrides)).run()
    assert captured["rounds"] == 1 and captured["learned"] == ["a_colors"]
    assert set(captured["history"]) == {"canary", "a_colors"}
    assert resumed["accuracy_matrix"] == straight["accuracy_matrix"]


def test_knows_keeps_the_right_answers_given_at_least_the_margin(taught):
    from lifelong.config import EvaluationConfig
    from lifelong.evaluation.evaluator import Evaluator

    model, tokenizer = taught
    evaluator = Evaluator(EvaluationConfig(**NO_SHOTS), tokenizer)
    right = list(evaluator.score_items(model, CANARY).correct)
    probs = [math.exp(mean) for _, mean in evaluator.answer_likelihoods(model, CANARY)]
    assert evaluator.knows(model, CANARY, 0.0) == right
    assert len(set(probs)) > 1
    middle = sorted(probs)[len(probs) // 2]
    assert evaluator.knows(model, CANARY, middle) == [ok and p >= middle for ok, p in zip(right, probs, strict=True)]
    assert sum(evaluator.knows(model, CANARY, middle)) < sum(right)  # the narrower answers are left out
