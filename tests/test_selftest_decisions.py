"""The self-test's decisions, driven by a scripted evaluator: the score of each capability is looked up by
which weights the model holds (a fingerprint recorded after every step), so a rollback to an earlier state
scores what that state scored."""

from __future__ import annotations

import pytest
import torch

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.data.stream import Stream
from lifelong.evaluation.evaluator import Scored
from lifelong.learner import Learner
from lifelong.models import load_tokenizer, tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.base import Piece


def fingerprint(model) -> float:
    with torch.no_grad():
        return round(sum(float(p.double().sum()) for p in model.parameters()), 6)


class Recorder(Piece):
    """Remembers which (round, step) each set of weights came from."""

    name = "recorder"

    def __init__(self):
        super().__init__()
        self.seen: dict[float, tuple[str, int]] = {}
        self.domain = "start"

    def before_round(self, domain):
        # a second before_round for the same domain is the self-test's repair round
        self.domain = f"{domain.name}-repair" if self.domain in (domain.name, f"{domain.name}-repair") else domain.name
        self.seen.setdefault(fingerprint(self.learner.model), ("start", 0))

    def after_step(self, step):
        self.seen[fingerprint(self.learner.model)] = (self.domain, step)
        return False


class Scripted:
    """score(capability) = script[capability][(domain, step) of the weights], else script[capability]["other"]."""

    def __init__(self, recorder: Recorder, script: dict[str, dict], items: int = 40):
        self.recorder, self.script, self.items = recorder, script, items
        self.calls: list[tuple[str, tuple[str, int] | None]] = []

    def score_domain(self, model, domain, desc=None) -> Scored:
        state = self.recorder.seen.get(fingerprint(model))
        self.calls.append((domain.name, state))
        table = self.script[domain.name]
        score = table.get(state, table.get(state[0] if state else None, table["other"]))
        right = round(score * self.items)
        return Scored(tuple([True] * right + [False] * (self.items - right)))


def domain(name, docs=4):
    return Domain(name, documents=[Document(f"{name} fact {i} is {i * 3}.") for i in range(docs)],
                  items=[QAItem(f"{name} question?", "yes")] + [QAItem(f"{name} practice {i}?", "no", split="train")
                                                               for i in range(2)])


def make(script, self_test=None, domains=("d1", "d2"), core=True, epochs=1):
    config = load_config(overrides={"model": "tiny", "condition": "a", "evaluation": {"progress": False},
                                    "pieces": ["full_finetune", "self_test"],
                                    "training": {"epochs": epochs, "batch_size": 2, "lr": 1e-3},
                                    "self_test": {"canary_every": 2, **(self_test or {})}})
    pieces = build_pieces(config.pieces, config)
    recorder = Recorder()
    pieces.insert(1, recorder)
    log: list[dict] = []
    learner = Learner(tiny_model(seed=0), load_tokenizer("tiny"), pieces, config, log=log.append)
    learner.stream = Stream("s", [domain(d) for d in domains], core=domain("core") if core else None,
                            canary=Domain("canary", items=[QAItem("Capital of France?", "Paris")]))
    learner.core = learner.stream.core
    learner.evaluator = Scripted(recorder, script)
    return learner, recorder, log


def decisions(log):
    return [(r["event"], r.get("to") or r.get("phase") or r.get("result")) for r in log
            if r["event"] in ("regression", "repair", "rollback", "selftest_kept")]


def test_an_alarm_ends_the_round_at_its_last_good_check_and_a_repair_must_beat_it():
    # canary fine at step 2 of d1, broken at step 4 (the alarm); the repair's own check breaks too
    script = {"canary": {("start", 0): 1.0, ("d1", 2): 1.0, "other": 0.5}, "d1": {("d1", 2): 0.4, "other": 0.3}}
    learner, recorder, log = make(script, domains=("d1",), epochs=4)
    stats = learner.learn(learner.stream.domains[0], seed=1)
    assert stats.stopped_early and stats.steps == 4
    alarm = [r for r in log if r["event"] == "regression"][0]
    assert alarm["phase"] == "in_round" and alarm["action"] == "restore" and alarm["restored_step"] == 2
    # the repair (retrained from the round's start) is cut back to its start by its own alarm: it passes the
    # checks but learned d1 less (0.3) than the round had at step 2 (0.4), so the round's step 2 is kept
    assert decisions(log)[1:] == [("regression", "in_round"), ("repair", "repaired"),
                                  ("rollback", "step 2 of the round (where the alarm ended it)")]
    assert recorder.seen[fingerprint(learner.model)] == ("d1", 2)
    piece = learner.pieces[-1]
    assert piece.reference["canary"]["score"] == 1.0 and piece.history["canary"][-1]["round"] == 1
    assert piece.learned == ["d1"] and piece.rounds == 1


def test_with_on_alarm_stop_a_failed_repair_rolls_back_to_the_last_good_check():
    script = {"canary": {("start", 0): 1.0, ("d1", 2): 1.0, "other": 0.5}, "d1": {"other": 0.3}}
    learner, recorder, log = make(script, domains=("d1",), epochs=4,
                                  self_test={"on_alarm": "stop", "repair": {"start": "current"}})
    stats = learner.learn(learner.stream.domains[0], seed=1)
    assert stats.stopped_early and stats.steps == 4
    assert decisions(log) == [("regression", "in_round"), ("regression", "after_round"), ("repair", "still regressed"),
                              ("rollback", "step 2 of the round (the last canary check that passed)")]
    assert recorder.seen[fingerprint(learner.model)] == ("d1", 2)  # the weights are step 2's


def test_a_domain_regression_is_repaired_by_targeted_replay():
    # d1 learned to 0.8; learning d2 drops it to 0.3; the repaired weights (unseen fingerprint) score 0.8 again
    script = {"canary": {"other": 1.0}, "d1": {("start", 0): 0.1, "d1": 0.8, "d2": 0.3, "other": 0.8},
              "d2": {"other": 0.6}}
    learner, recorder, log = make(script)
    learner.learn(learner.stream.domains[0], seed=1)
    assert decisions(log) == []
    learner.learn(learner.stream.domains[1], seed=2)
    assert decisions(log) == [("regression", "after_round"), ("repair", "repaired")]
    repair = [r for r in log if r["event"] == "repair"][0]
    assert repair["capabilities"] == ["d1"] and repair["replay_examples"] > 0 and repair["stored_examples"] == 6
    assert recorder.seen[fingerprint(learner.model)][0] == "d2-repair"  # the repaired weights are kept


def test_diagnostic_suite_every_m_rounds_and_on_a_canary_alarm():
    script = {"canary": {"other": 1.0}, "d1": {"other": 0.5}, "d2": {"other": 0.5}, "d3": {"other": 0.5}}
    learner, _, log = make(script, self_test={"diagnostic_every": 2, "canary_every": 0}, domains=("d1", "d2", "d3"))
    for i, d in enumerate(learner.stream.domains):
        learner.learn(d, seed=i)
    checked = [sorted(r["scores"]) for r in log if r["event"] == "selftest" and r["phase"] == "after_round"]
    assert checked == [["canary"], ["canary", "d1", "d2"], ["canary"]]


def test_small_losses_that_add_up_are_caught():
    # every round loses 2 of 40 canary items: each step is within noise, the sum is not
    per_round = {"start": 1.0, "d1": 0.95, "d2": 0.9, "d3": 0.85, "d4": 0.8}
    script = {"canary": {**per_round, "other": 1.0}, **{d: {"other": 0.5} for d in ("d1", "d2", "d3", "d4")}}
    learner, _, log = make(script, self_test={"canary_every": 0, "trend": False, "repair": {"attempts": 0}},
                            domains=("d1", "d2", "d3", "d4"))
    for i, d in enumerate(learner.stream.domains[:2]):
        learner.learn(d, seed=i)
    regressions = [r for r in log if r["event"] == "regression"]
    assert len(regressions) == 1 and "since its first score" in regressions[0]["drop"]["reason"]
    assert regressions[0]["round"] == 2


def test_the_trend_test_catches_drift_on_its_own():
    per_round = {"start": 1.0, "d1": 0.975, "d2": 0.95, "d3": 0.925, "d4": 0.9, "d5": 0.875}
    names = tuple(per_round)[1:]
    script = {"canary": {**per_round, "other": 1.0}, **{d: {"other": 0.5} for d in names}}
    learner, _, log = make(script, self_test={"canary_every": 0, "cumulative": False, "repair": {"attempts": 0}},
                            domains=names)
    for i, d in enumerate(learner.stream.domains):
        learner.learn(d, seed=i)
    regressions = [r for r in log if r["event"] == "regression"]
    first = regressions[0]
    assert first["round"] == 3 and first["trend"]["drifting"] and "drop" not in first  # no single drop counted


def test_self_test_state_round_trips():
    script = {"canary": {"other": 1.0}, "d1": {"other": 0.5}, "d2": {"other": 0.5}}
    learner, _, _ = make(script, self_test={"canary_every": 0})
    learner.learn(learner.stream.domains[0], seed=1)
    state = learner.pieces[-1].state_dict()
    fresh, _, _ = make(script)
    fresh.pieces[-1].load_state_dict(state)
    assert fresh.pieces[-1].state_dict() == state
    assert state["history"]["canary"][0] == {"round": 0, "score": 1.0, "items": 40}


def test_unknown_self_test_keys_and_missing_task_files_are_errors(tmp_path):
    from lifelong.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="self_test.repair.nope"):
        load_config(overrides={"self_test": {"repair": {"nope": 1}}})
    with pytest.raises(ConfigError, match="self_test.confidence"):
        load_config(overrides={"self_test": {"confidence": 1.5}})
    config = load_config(overrides={"model": "tiny", "pieces": ["full_finetune", "self_test"],
                                    "self_test": {"diagnostic_tasks": [str(tmp_path / "missing.yaml")]}})
    with pytest.raises(InputError, match="missing.yaml"):
        build_pieces(config.pieces, config)[1].attach(type("L", (), {"pieces": []})())


def test_lm_eval_tasks_are_watched_like_domains(tmp_path):
    from conftest import write_jsonl

    write_jsonl(tmp_path / "quiz.jsonl", [{"q": "Which is a fruit?", "options": ["apple", "stone"], "label": 0}])
    write_jsonl(tmp_path / "practice.jsonl", [{"q": "Which is a tree?", "options": ["oak", "car"], "label": 0}])
    task = tmp_path / "quiz.yaml"
    task.write_text("task: fruit_quiz\ndataset_path: json\ndataset_kwargs: {data_files: {test: quiz.jsonl, "
                    "train: practice.jsonl}}\ntraining_split: train\noutput_type: multiple_choice\n"
                    "doc_to_text: q\ndoc_to_target: label\ndoc_to_choice: '{{options}}'\n")
    script = {"canary": {"other": 1.0}, "d1": {"other": 0.5}, "fruit_quiz": {"start": 0.9, "other": 0.3}}
    learner, _, log = make(script, self_test={"canary_every": 0, "diagnostic_tasks": [str(task)]}, domains=("d1",))
    learner.learn(learner.stream.domains[0], seed=1)
    baseline = [r for r in log if r["event"] == "selftest" and r["phase"] == "baseline"][0]
    assert set(baseline["scores"]) == {"canary", "fruit_quiz"}
    regression = [r for r in log if r["event"] == "regression"][0]
    assert regression["capability"] == "fruit_quiz"
    repair = [r for r in log if r["event"] == "repair"][0]
    assert repair["stored_examples"] == 1  # the task's training split, as a question and its right choice


def test_self_test_is_selectable_with_its_own_section():
    from lifelong.pieces.self_test import SelfTest

    config = load_config(overrides={"model": "tiny", "pieces": ["full_finetune", "self_test"],
                                    "self_test": {"canary_every": 3, "repair": {"attempts": 2}}})
    piece = build_pieces(config.pieces, config)[1]
    assert isinstance(piece, SelfTest) and piece.options is config.self_test and piece.options.repair.attempts == 2


def test_a_kept_repair_reports_its_own_steps():
    script = {"canary": {"other": 1.0}, "d1": {("start", 0): 0.1, "d1": 0.8, "d2": 0.3, "other": 0.8},
              "d2": {"other": 0.6}}
    learner, _, log = make(script, self_test={"canary_every": 0})
    learner.learn(learner.stream.domains[0], seed=1)
    stats = learner.learn(learner.stream.domains[1], seed=2)
    repair = [r for r in log if r["event"] == "repair"][0]
    assert repair["result"] == "repaired" and stats.steps == repair["steps"] != 2  # d2 alone: 2 steps a round
