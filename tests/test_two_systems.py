"""The two learning systems: episode adapters (fast) and sleep consolidation (slow)."""

import json
import math

import pytest
import torch

from lifelong.config import RunConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.evaluation.evaluator import Evaluator
from lifelong.experiment import Experiment
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces
from lifelong.pieces.fast_adapters import BASE, TfidfRouter

from conftest import interrupt_before_domain

PLINTH = Domain("plinth", [Document("The zorb of Plinth is blue and hums at night."),
                           Document("Plinth zorbs are fed on quellroot by the herders of Plinth.")],
                [QAItem("What color is the zorb of Plinth?", "blue", split="train")])
QUARN = Domain("quarn", [Document("Quarn ships sail at dawn from the harbour of Quarn."),
                         Document("The sails of Quarn ships are woven from vessim grass.")])


def build(**sections) -> Learner:
    config = RunConfig(model="tiny", pieces=["fast_adapters", "consolidation"],
                       training={"epochs": 20, "batch_size": 2, "lr": 3e-2, "log_every": 100},
                       evaluation={"progress": False},
                       fast_adapters={"lr": 3e-2, "r": 8}, consolidation={"every": 0, **sections})
    model, tokenizer = load_model("tiny", seed=0)
    learner = Learner(model, tokenizer, build_pieces(config.pieces, config), config)
    learner.evaluator = Evaluator(config.evaluation, tokenizer)
    return learner


def base_weights(learner: Learner) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in learner.model.named_parameters() if "lora_" not in n}


def log_ppl(learner: Learner, domain: Domain, adapters: bool = True) -> float:
    texts = [d.text for d in domain.documents]
    if adapters:
        return math.log(learner.evaluator.perplexity(learner.model, texts))
    with learner.model.disable_adapter():
        return math.log(learner.evaluator.perplexity(learner.model, texts))


def test_router_picks_the_episode_a_text_resembles():
    router = TfidfRouter()
    router.add("episode-1", [d.text for d in PLINTH.documents])
    router.add("episode-2", [d.text for d in QUARN.documents])
    assert router.route("What do the herders of Plinth feed zorbs?", 0.1) == "episode-1"
    assert router.route("When do Quarn ships sail?", 0.1) == "episode-2"
    assert router.route("What is the capital of France?", 0.1) == BASE


def test_episode_adapter_learns_without_touching_the_base():
    learner = build()
    before_base, before_ppl = base_weights(learner), log_ppl(learner, PLINTH)
    learner.learn(PLINTH, seed=1)
    after = base_weights(learner)
    assert all(torch.equal(before_base[n], after[n]) for n in before_base)
    assert log_ppl(learner, PLINTH) < before_ppl - 0.15  # the adapter learned (LoRA moves a tiny random model a little)
    assert abs(log_ppl(learner, PLINTH, adapters=False) - before_ppl) < 1e-4


def test_routing_sends_each_row_to_its_episode_stack_activates_all_and_state_round_trips():
    learner = build()
    learner.learn(PLINTH, seed=1)
    learner.learn(QUARN, seed=2)
    fast = learner.pieces[0]
    assert fast.adapters == ["episode-1", "episode-2"]
    ids = learner.tokenizer(["Question: What color is the zorb of Plinth?", "Question: When do Quarn ships sail?",
                             "Question: What is the capital of France?"], return_tensors="pt", padding=True)
    assert fast.route_names(ids["input_ids"]) == ["episode-1", "episode-2", BASE]
    learner.model.eval()
    routed = learner.model(**ids).logits
    with learner.model.disable_adapter():
        base = learner.model(**ids).logits
    assert torch.allclose(routed[2], base[2], atol=1e-5)  # the general question runs on the base
    assert not torch.allclose(routed[0], base[0], atol=1e-3)
    fast.options.inference = "stack"
    stacked = learner.model(**ids).logits
    assert not torch.allclose(stacked[2], base[2], atol=1e-5)
    assert set(learner.model.base_model.active_adapters) == {"episode-1", "episode-2"}

    fast.options.inference = "route"
    weights = {n: p.detach().clone() for n, p in learner.model.state_dict().items()}  # a state round trip
    state = learner.pieces_state()
    fresh = build()
    fresh.load_pieces_state(state)
    fresh.model.load_state_dict(weights)
    assert fresh.pieces[0].adapters == ["episode-1", "episode-2"]
    assert abs(log_ppl(fresh, PLINTH) - log_ppl(learner, PLINTH)) < 1e-4


def test_sleep_moves_the_episode_into_the_base_and_drops_the_adapter():
    # the tiny model rarely learns the answer itself, so only the perplexity transfer is asked of it here
    learner = build(epochs=25, lr=1e-2, batch_size=2, min_transfer=0.5, min_answer_transfer=0.0)
    base_ppl = log_ppl(learner, PLINTH, adapters=False)
    learner.learn(PLINTH, seed=1)
    taught_ppl = log_ppl(learner, PLINTH)
    record = learner.pieces[1].sleep()
    assert record["passed"], record
    assert learner.pieces[0].adapters == []
    assert set(learner.model.peft_config) == {"placeholder"}
    consolidated = log_ppl(learner, PLINTH, adapters=False)
    assert record["transfer"] >= 0.5 and taught_ppl < base_ppl - 0.15
    assert base_ppl - consolidated >= 0.5 * (base_ppl - taught_ppl)


def test_a_failing_sleep_rolls_back_and_keeps_the_adapters():
    learner = build(epochs=1, lr=1e-4, min_transfer=0.99)
    learner.learn(PLINTH, seed=1)
    before, taught = base_weights(learner), log_ppl(learner, PLINTH)
    record = learner.pieces[1].sleep()
    assert not record["passed"] and record["transfer"] < 0.99
    after = base_weights(learner)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert learner.pieces[0].adapters == ["episode-1"]
    assert abs(log_ppl(learner, PLINTH) - taught) < 1e-4
    assert learner.pieces[1].pending  # consolidated at the next sleep


def test_condition_f_runs_a_stream_and_resumes_with_its_adapters(user_stream, tmp_path, monkeypatch):
    config = load_config(overrides={"model": "tiny", "stream": str(user_stream), "condition": "f",
                                    "out": str(tmp_path / "f"), "training": {"epochs": 1, "batch_size": 2},
                                    "evaluation": {"progress": False},
                                    "consolidation": {"every": 2, "epochs": 1, "min_transfer": 0.0}})
    assert config.pieces == ["fast_adapters", "replay", "practice", "distill", "consolidation"]
    undo = interrupt_before_domain(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        Experiment(config).run()
    undo()
    results = Experiment(config).run()  # resumes: episode-1's adapter is re-created, then its weights load
    assert results["complete"] and len(results["accuracy_matrix"]) == 3
    events = [json.loads(line)["event"] for line in (tmp_path / "f" / "log.jsonl").read_text().splitlines()]
    assert "resume" in events and ("sleep" in events or "rollback" in events)


def test_kept_share_is_the_share_of_the_teachers_gain_that_remains():
    from lifelong.pieces.consolidation import kept_share

    assert kept_share(0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert kept_share(3.0, 2.0, 2.25, lower_is_better=True) == pytest.approx(0.75)
    assert kept_share(0.5, 0.5, 0.0) == 1.0  # no gain to keep
    assert kept_share(None, 0.8, 0.5) == 1.0  # nothing measured (no practice questions)


def test_a_sleep_that_keeps_the_perplexity_but_loses_the_answers_fails():
    learner = build()
    learner.learn(PLINTH, seed=1)
    sleep = learner.pieces[1]
    assert [q.question for q in sleep.pending["episode-1"]["questions"]] == ["What color is the zorb of Plinth?"]
    before = {"canary": None, "base_nll": 2.0, "teacher_nll": 1.0, "base_answers": 0.0, "teacher_answers": 1.0}
    kept_ppl_lost_answers = {"canary": None, "base_nll": 1.2, "base_answers": 0.0}
    record = sleep._verdict(["episode-1"], before, kept_ppl_lost_answers, steps=1)
    assert record["transfer"] == pytest.approx(0.8) and record["answer_transfer"] == 0.0
    assert not record["passed"]
    assert sleep._verdict(["episode-1"], before, {**kept_ppl_lost_answers, "base_answers": 1.0}, 1)["passed"]
    restored = build()
    restored.pieces[1].load_state_dict(sleep.state_dict())  # the practice questions survive a checkpoint
    assert restored.pieces[1].pending["episode-1"]["questions"] == sleep.pending["episode-1"]["questions"]


def test_an_episode_adapter_starts_from_the_run_seed_whatever_drew_from_torch_before():
    def first_adapter(seed: int, disturb: bool) -> dict[str, torch.Tensor]:
        learner = build()
        learner.config.seed = seed
        if disturb:
            torch.rand(1000)  # another piece drawing from the global generator first
        piece = next(p for p in learner.pieces if p.name == "fast_adapters")
        piece.before_round(PLINTH)
        return {n: p.detach().clone() for n, p in learner.model.named_parameters() if "episode-1" in n}

    torch.manual_seed(0)
    clean = first_adapter(0, disturb=False)
    assert clean and all(torch.equal(v, first_adapter(0, disturb=True)[n]) for n, v in clean.items())
    assert not all(torch.equal(v, first_adapter(1, disturb=False)[n]) for n, v in clean.items())


@pytest.mark.parametrize("weight, method_name", [(1.0, "merge (cat, 0 repair epochs)"),
                                          (0.3, "merge (cat x 0.3, 0 repair epochs)"),
                                          ("mean", "merge (cat mean, 0 repair epochs)")])
def test_a_merge_sleep_puts_exactly_the_weighted_sum_of_the_episode_updates_into_the_base(weight, method_name):
    from peft.tuners.lora import LoraLayer

    learner = build(method="merge", merge_type="cat", merge_weight=weight, repair_epochs=0, min_transfer=0.0,
                    min_answer_transfer=0.0)
    learner.learn(PLINTH, seed=1)
    learner.learn(QUARN, seed=2)
    scale = 0.5 if weight == "mean" else weight  # two episodes
    expected = {name: (m.get_base_layer().weight + scale * (m.get_delta_weight("episode-1")
                                                             + m.get_delta_weight("episode-2")))
                .detach().clone() for name, m in learner.model.named_modules() if isinstance(m, LoraLayer)}
    record = learner.pieces[1].sleep()
    assert record["passed"] and record["method"] == method_name and record["steps"] == 0
    assert learner.pieces[0].adapters == []  # a kept sleep leaves no episode adapter live
    for name, module in learner.model.named_modules():
        if name in expected:
            assert torch.allclose(module.get_base_layer().weight, expected[name], atol=1e-5), name


def test_a_merge_that_would_lose_the_gain_is_rolled_back_and_says_why():
    learner = build(method="merge", repair_epochs=0, min_transfer=0.99, min_answer_transfer=0.0)
    learner.learn(PLINTH, seed=1)
    learner.learn(QUARN, seed=2)  # two adapters summed: each episode's text also sees the other's update
    before = base_weights(learner)
    record = learner.pieces[1].sleep()
    assert not record["passed"] and record["transfer"] < 0.99
    assert "of the perplexity gain < 0.99" in record["why"]
    assert all(torch.equal(before[n], base_weights(learner)[n]) for n in before)
    assert learner.pieces[0].adapters == ["episode-1", "episode-2"]


def test_choose_threshold_routes_the_most_practice_questions_right():
    from lifelong.pieces.fast_adapters import choose_threshold

    grid = (0.1, 0.2, 0.3, 0.4, 0.5)
    # own questions match their episode at 0.45 and 0.6; general ones reach 0.15 and 0.25 at most
    threshold, share = choose_threshold([0.45, 0.6], [0.15, 0.25], grid)
    assert threshold in (0.3, 0.4) and share == 1.0
    # one own question matched another episode best (-1): no threshold routes it right; of the four that
    # tie at two right, the middle one
    threshold, share = choose_threshold([0.45, -1.0, 0.35], [0.3], grid)
    assert threshold == 0.3 and share == 0.5


def test_thresholds_come_from_practice_questions_and_the_same_seed_routes_the_same():
    questions = ["Question: What color is the zorb of Plinth?", "Question: What do Quarn sails look like?",
                 "Question: What is the capital of France?", "Question: Who feeds the herders?"]

    def routes():
        learner = build(min_transfer=0.0)
        learner.pieces[0].options.route_thresholds_from = "practice"
        logged = []
        learner.log = logged.append
        learner.learn(PLINTH, seed=1)
        learner.learn(QUARN, seed=2)
        ids = learner.tokenizer(questions, return_tensors="pt", padding=True)["input_ids"]
        return learner.pieces[0], learner.pieces[0].route_names(ids), logged

    fast, first, logged = routes()
    assert set(fast.thresholds) == {"distinctive"}  # PLINTH's practice question has distinctive words only
    calibrations = [r for r in logged if isinstance(r, dict) and r.get("event") == "routing_calibration"]
    assert calibrations and calibrations[-1]["distinctive"]["practice"] == 1
    assert first[0] == "episode-1" and first[2] == BASE
    assert routes()[1] == first


def test_rehearsal_loss_learns_the_days_rows_and_keeps_the_others_on_the_teacher():
    from lifelong.pieces.consolidation import rehearsal_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(2, 4, 7), torch.randn(2, 4, 7)
    labels = torch.tensor([[-100, 3, 5, 1], [-100, 2, 2, -100]])
    learned = rehearsal_loss(student, teacher, labels, torch.tensor([True, False]), temperature=1.0)
    ce = torch.nn.functional.cross_entropy(student[0, :-1], labels[0, 1:], reduction="sum")
    kl = torch.nn.functional.kl_div(student[1, :2].log_softmax(-1), teacher[1, :2].log_softmax(-1),
                                    log_target=True, reduction="sum")
    assert learned.item() == pytest.approx(((ce + kl) / 5).item(), rel=1e-5)
    # a kept row whose student already matches its teacher costs nothing
    unchanged = rehearsal_loss(teacher, teacher, labels, torch.tensor([False, False]), 1.0)
    assert unchanged.item() == pytest.approx(0.0, abs=1e-6)


def test_a_rehearse_sleep_trains_on_the_days_labels_under_ewc_and_drops_the_adapter():
    learner = build(method="rehearse", epochs=25, lr=1e-2, batch_size=2, min_transfer=0.5, min_answer_transfer=0.0)
    base_ppl = log_ppl(learner, PLINTH, adapters=False)
    learner.learn(PLINTH, seed=1)
    record = learner.pieces[1].sleep()
    assert record["passed"] and record["method"] == "rehearse" and record["steps"] > 0, record
    assert learner.pieces[0].adapters == []
    assert log_ppl(learner, PLINTH, adapters=False) < base_ppl - 0.15  # the base learned the day's documents
    assert learner.pieces[1].fisher  # the online EWC Fisher carries to the next sleep


@pytest.mark.parametrize("replies", [True, False])
def test_the_sleep_keeps_the_canary_on_the_bases_own_replies_never_its_answers(replies):
    learner = build(canary_replies=replies)
    learner.learn(PLINTH, seed=1)
    question = "What color is the zorb of Plinth?"
    learner.context.stream = type("Stream", (), {"canary": Domain("canary", [], [QAItem(question, "purple")])})()
    material = [e.text for e, teacher in learner.pieces[1]._material(["episode-1"]) if e.source == "canary"]
    context = learner.evaluator.context_text(question)
    with learner.model.disable_adapter():
        reply = learner.evaluator.generate(learner.model, [context])[0].split("\n")[0].strip()
    assert material == ([f"{context} {reply}\n"] if replies else [context])
    assert "purple" not in material[0]
