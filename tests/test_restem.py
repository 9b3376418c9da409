"""ReSTEM (SEAL's outer loop): in-process candidate evaluation, the rounds, the piece."""

import json
import math
import os

import pytest
import torch

from lifelong.config import EvaluationConfig, RestemConfig, RunConfig
from lifelong.data.records import Document, Domain, QAItem
from lifelong.evaluation.evaluator import Evaluator
from lifelong.learner import Learner
from lifelong.pieces.restem import Restem, plain_copy
from lifelong.restem.candidates import CandidateEvaluator, Reward, note_lines
from lifelong.restem.outer import score_round
from lifelong.restem.quiz import questions_by_document
from lifelong.restem.stats import DocumentOutcome, keep, ranking, spread, summarize

FAST = {"k": 2, "rounds": 1, "candidate_steps": 2, "candidate_lr": 5e-3, "max_new_tokens": 12, "repeats": 1,
        "writer_epochs": 1, "documents_per_round": 2}
QUIZ = [QAItem("What color is the zorb of Plinth?", "blue")]


@pytest.fixture(scope="module")
def quiz_evaluator(tiny):
    return Evaluator(EvaluationConfig(progress=False), tiny[1])


def candidate_evaluator(tiny, quiz_evaluator, **options):
    return CandidateEvaluator(plain_copy(tiny[0]), tiny[1], quiz_evaluator, RestemConfig(**{**FAST, **options}))


def base_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}


def test_note_lines_drop_markers_and_blanks():
    assert note_lines("1. The zorb is blue.\n\n- Plinth is far.\n* x\n") == ["The zorb is blue.", "Plinth is far.", "x"]
    assert note_lines("2.5 litres a day.") == ["2.5 litres a day."]


def test_questions_follow_the_document_that_holds_the_answer():
    docs = [Document("The zorb of Plinth is blue."), Document("Quarn ships sail at dawn.")]
    items = [QAItem("When do Quarn ships sail?", "dawn"), QAItem("What color is the zorb of Plinth?", "blue"),
             QAItem("Unanswerable?", "nowhere")]
    assert questions_by_document(docs, items) == [[items[1]], [items[0]]]


def test_reset_adapter_gives_the_same_reward_for_the_same_candidate_and_seed(tiny, quiz_evaluator):
    scorer = candidate_evaluator(tiny, quiz_evaluator)
    notes = ["The zorb of Plinth is blue.", "Plinth zorbs are blue."]
    first = scorer.evaluate(notes, QUIZ, seed=3)
    scorer.evaluate(["Something else entirely."], QUIZ, seed=4)  # moves the adapter in between
    assert scorer.evaluate(notes, QUIZ, seed=3) == first
    assert scorer.evaluate(notes, QUIZ, seed=5) != first  # another seed: another adapter init


def test_candidates_train_but_leave_the_base_weights_bit_identical(tiny, quiz_evaluator):
    scorer = candidate_evaluator(tiny, quiz_evaluator, candidate_steps=4)
    before = base_weights(scorer.model)
    baseline, trained = scorer.evaluate_many([((), QUIZ, 1), (["The zorb of Plinth is blue."] * 3, QUIZ, 1),
                                              (["Ships sail."], QUIZ, 2)])[:2]
    assert trained.likelihood > baseline.likelihood + 0.1  # the notes were learned
    after = base_weights(scorer.model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert scorer.timing.candidates == 3 and scorer.timing.train_s > 0


def test_ranking_keep_and_spread():
    rewards = [Reward(0.5, -2.0), Reward(1.0, -3.0), Reward(0.5, -1.0), Reward(0.0, -0.5)]
    assert ranking(rewards) == [1, 2, 0, 3]
    assert keep(rewards, 2) == [1, 2]
    assert keep(rewards, 2, baseline=Reward(0.5, -1.5)) == [1, 2]
    assert keep(rewards, 3, baseline=Reward(0.5, -1.0)) == [1]
    assert spread([1.0]) == 0.0 and math.isclose(spread([0.0, 1.0]), 0.5)


def test_summary_sets_candidate_spread_against_repeat_spread():
    outcome = DocumentOutcome(rewards=(Reward(0.0, -2.0), Reward(1.0, -1.0)), kept=(1,), baseline=Reward(0.0, -3.0),
                              repeats=(Reward(1.0, -1.0), Reward(1.0, -1.2)))
    summary = summarize([outcome])
    assert summary["mean_score"] == 0.5 and summary["best_score"] == 1.0 and summary["baseline_score"] == 0.0
    assert summary["candidate_spread"] == 0.5 and summary["repeat_spread"] == 0.0
    assert math.isclose(summary["repeat_spread_likelihood"], 0.1) and summary["kept"] == 1


class FakeWriter:
    def __call__(self, document, k, seed):
        return [f"note {i} about {document}" for i in range(k)]


class FakeScorer:
    """Rewards candidate i with accuracy i/10 except note 1, which is best."""

    def evaluate_many(self, jobs):
        def reward(notes):
            if not notes:
                return Reward(0.0, -9.0)
            i = int(notes[0].split()[1])
            return Reward(1.0 if i == 1 else i / 10, -1.0)
        return [reward(notes) for notes, _, _ in jobs]


def test_the_best_candidate_is_kept():
    options = RestemConfig(k=4, top_n=1, repeats=2)
    result = score_round(FakeWriter(), FakeScorer(), ["doc A", "doc B"], [QUIZ, QUIZ], options, seed=0)
    assert [o.kept for o in result.outcomes] == [(1,), (1,)]
    assert result.kept_notes() == [(0, ["note 1 about doc A"]), (1, ["note 1 about doc B"])]
    assert result.summary["best_score"] == 1.0 and len(result.outcomes[0].repeats) == 3


def restem_domain() -> Domain:
    return Domain("colors", documents=[Document("The zorb of Plinth is blue."), Document("Quarn ships sail at dawn.")],
                  items=[QAItem("What color is the zorb of Plinth?", "blue", split="train"),
                         QAItem("When do Quarn ships sail?", "dawn", split="train")])


def test_a_round_trains_the_writer_logs_the_event_and_adds_the_kept_notes(tiny, tmp_path):
    events = []
    piece = Restem(RestemConfig(**FAST))
    config = RunConfig(model="tiny", pieces=["restem"], restem=RestemConfig(**FAST))
    learner = Learner(plain_copy(tiny[0]), tiny[1], [piece], config, log=events.append)
    learner.out_dir = tmp_path
    writer_before = piece.writer.state_dict()
    piece.before_round(restem_domain())
    writer_after = piece.writer.state_dict()
    assert any(not torch.equal(writer_before[n], writer_after[n]) for n in writer_before)
    [event] = [e for e in events if e["event"] == "restem"]
    assert event["round"] == 1 and event["documents"] == 2 and event["k"] == 2
    for key in ("mean_score", "best_score", "candidate_spread", "repeat_spread", "baseline_score"):
        assert key in event
    notes = piece.examples(restem_domain(), [])
    assert notes and all(example.source == "notes" for example in notes)
    assert piece.state_dict()["history"] == [event]
    record = json.loads((tmp_path / "generated" / "colors.restem.json").read_text())
    assert "ReSTEM" in record["writer"] and len(record["rounds"][0]) == 2
    assert sum(c["kept"] for c in record["rounds"][0][0]["candidates"]) == 1


def test_the_report_plots_the_restem_rounds():
    from lifelong.report import render_run_report

    events = [{"event": "restem", "domain": "law", "round": r, "mean_score": 0.2 * r, "best_score": 0.5,
               "baseline_score": 0.1, "candidate_spread": 0.2, "repeat_spread": 0.05} for r in (1, 2)]
    page = render_run_report({"domains": ["law"], "accuracy_matrix": [[0.1]]}, events)
    assert 'id="plot-restem-scores"' in page and 'id="plot-restem-spread"' in page and "law r2" in page
    assert 'id="plot-restem-likelihood"' in page
    assert render_run_report({"domains": ["law"], "accuracy_matrix": [[0.1]]}, []).count("plot-restem") == 0


def test_study_notes_write_with_the_restem_writer(tiny):
    from lifelong.pieces.study_notes import StudyNotes

    restem, notes = Restem(RestemConfig(**FAST)), StudyNotes()
    config = RunConfig(model="tiny", pieces=["restem", "study_notes"], restem=RestemConfig(**FAST))
    Learner(plain_copy(tiny[0]), tiny[1], [restem, notes], config)
    assert notes.teacher() is restem.generator
    assert "ReSTEM" in notes.teacher_name()


@pytest.mark.skipif(os.environ.get("LIFELONG_TEST_RAY", "1") == "0", reason="LIFELONG_TEST_RAY=0: skips the Ray "
                    "fan-out tests (a local Ray instance and two worker processes)")
def test_ray_workers_give_the_serial_rewards(tiny, quiz_evaluator):
    from lifelong.restem.fanout import make_scorer

    jobs = [(["The zorb of Plinth is blue."], QUIZ, 1), ((), QUIZ, 1), (["Ships sail.", "Zorbs are blue."], QUIZ, 2)]
    serial = candidate_evaluator(tiny, quiz_evaluator).evaluate_many(jobs)
    fanned = make_scorer(plain_copy(tiny[0]), tiny[1], quiz_evaluator, RestemConfig(**{**FAST, "workers": 2}))
    assert fanned.evaluate_many(jobs) == serial
