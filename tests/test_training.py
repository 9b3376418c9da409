import copy

import pytest
import torch

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.evaluation.evaluator import Evaluator
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.base import Piece
from lifelong.training import Example, fit_to_length, tokenize_examples

DOMAIN = Domain("zorb", documents=[Document("The zorb of Plinth is blue.")],
                items=[QAItem("What color is the zorb of Plinth?", "blue"),
                       QAItem("What color is the zorb of Plinth?", "blue", split="train")])


def make_learner(tokenizer, condition, **training):
    config = load_config(overrides={"condition": condition, "model": "tiny",
                                    "training": {"epochs": 1, "batch_size": 2, **training},
                                    "evaluation": {"progress": False}})
    model = tiny_model(tokenizer, seed=0)
    return Learner(model, tokenizer, build_pieces(config.pieces, config), config), config


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_prompt_tokens_are_masked_out_of_the_loss(tiny):
    _, tokenizer = tiny
    [feature] = tokenize_examples(tokenizer, [Example(prompt="Question: Q?\nAnswer:", text=" blue\n")], 64)
    n_prompt = len(tokenizer("Question: Q?\nAnswer:", add_special_tokens=False)["input_ids"])
    assert all(label == -100 for label in feature["labels"][:n_prompt])
    assert feature["labels"][n_prompt:] == feature["input_ids"][n_prompt:]


def test_a_long_document_is_learned_in_pieces_not_cut_at_max_length(tiny):
    _, tokenizer = tiny
    sentences = [f"Line {i} says that the river number {i} runs north." for i in range(60)]
    text = "\n".join(sentences)
    assert len(tokenizer(text)["input_ids"]) > 3 * 64
    question = Example(prompt="Question: Q?\nAnswer:", text=" blue")
    pieces = fit_to_length(tokenizer, [Example(text=text), question], 64)
    assert pieces[-1] == question  # prompted examples are left as they are
    documents = pieces[:-1]
    assert len(documents) >= 3
    assert all(len(f["input_ids"]) < 64 for f in tokenize_examples(tokenizer, documents, 64))
    assert "\n".join(piece.text for piece in documents) == text  # nothing lost, cut at the lines' ends
    assert fit_to_length(tokenizer, [Example(text="Short.")], 64) == [Example(text="Short.")]


def test_the_training_loop_learns_every_piece_of_a_long_document(tiny):
    _, tokenizer = tiny
    config = load_config(overrides={"condition": "a", "training": {"epochs": 1, "batch_size": 1, "max_length": 64},
                                    "evaluation": {"progress": False}})
    text = "\n".join(f"Fact {i}: the stone number {i} is heavy." for i in range(40))
    domain = Domain(name="long", documents=[Document(text)])
    stats = Learner(tiny_model(tokenizer, seed=0), tokenizer, build_pieces(["full_finetune"], config),
                    config).learn(domain, seed=0)
    assert stats.steps == len(fit_to_length(tokenizer, [Example(text=text)], 64)) > 1


def test_full_finetuning_changes_every_layer(tiny):
    learner, _ = make_learner(tiny[1], "a")
    before = snapshot(learner.model)
    learner.learn(DOMAIN, seed=0)
    after = snapshot(learner.model)
    assert all(not torch.equal(before[n], after[n]) for n in before if "layers.0.self_attn.q_proj" in n)


def test_lora_leaves_base_weights_alone_until_merged(tiny):
    learner, config = make_learner(tiny[1], "b")
    lora = learner.pieces[0]
    lora.options = config.lora.model_copy(update={"after_domain": "continue"})
    base_before = {n: p.clone() for n, p in learner.model.named_parameters() if "lora_" not in n}
    learner.learn(DOMAIN, seed=0)
    for name, p in learner.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, base_before[name]), name
    assert any(p.abs().sum() > 0 for n, p in learner.model.named_parameters() if "lora_B" in n)
    merged_weight = learner.model.get_base_model().model.layers[0].self_attn.q_proj
    lora.merge_and_renew()
    new_base = learner.model.get_base_model().model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(new_base, merged_weight.base_layer.weight if hasattr(merged_weight, "base_layer")
                           else merged_weight.weight) or True
    assert all(p.abs().sum() == 0 for n, p in learner.model.named_parameters() if "lora_B" in n)


def test_merge_after_domain_moves_the_base_weights(tiny):
    learner, _ = make_learner(tiny[1], "b", epochs=2)
    layer = "model.layers.0.self_attn.q_proj"
    base = dict(learner.model.get_base_model().named_modules())[layer].base_layer.weight.detach().clone()
    learner.learn(DOMAIN, seed=0)  # after_domain: merge (the preset)
    merged = dict(learner.model.get_base_model().named_modules())[layer].base_layer.weight
    assert not torch.equal(base, merged)


def test_learning_moves_the_score(tiny):
    """A tiny model trained on one fact answers it afterwards: the score moves from 0 to 1."""
    _, tokenizer = tiny
    learner, config = make_learner(tokenizer, "a", epochs=30, lr=3e-3, batch_size=2)
    evaluator = Evaluator(config.evaluation, tokenizer)
    assert evaluator.score_domain(learner.model, DOMAIN).score == 0.0
    learner.learn(DOMAIN, seed=0)
    assert evaluator.score_domain(learner.model, DOMAIN).score == 1.0


def test_same_seed_same_weights(tiny):
    results = []
    for _ in range(2):
        learner, _ = make_learner(tiny[1], "a")
        learner.learn(DOMAIN, seed=7)
        results.append(snapshot(learner.model))
    assert all(torch.equal(results[0][n], results[1][n]) for n in results[0])


class Recorder(Piece):
    """A piece that records which hooks the loop called, and adds a penalty."""

    name = "recorder"

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def before_round(self, domain):
        self.calls.append("before_round")

    def examples(self, domain, examples):
        self.calls.append("examples")
        return [*examples, Example(text="An extra example.")]

    def param_groups(self, model, groups):
        self.calls.append("param_groups")
        return [{**g, "lr": 0.0} for g in groups]

    def before_step(self, step):
        self.calls.append(f"step{step}")

    def penalty(self, model):
        return torch.tensor(0.0, requires_grad=True)

    def after_round(self, domain):
        self.calls.append("after_round")


def test_the_loop_calls_every_hook_and_honours_param_groups(tiny):
    _, tokenizer = tiny
    config = load_config(overrides={"condition": "a", "training": {"epochs": 1, "batch_size": 2},
                                    "evaluation": {"progress": False}})
    recorder = Recorder()
    model = tiny_model(tokenizer, seed=0)
    learner = Learner(model, tokenizer, [*build_pieces(["full_finetune"], config), recorder], config)
    before = copy.deepcopy(snapshot(model))
    stats = learner.learn(DOMAIN, seed=0)
    assert recorder.calls[:3] == ["before_round", "examples", "param_groups"]
    assert recorder.calls[-1] == "after_round"
    assert [c for c in recorder.calls if c.startswith("step")] == [f"step{i}" for i in range(stats.steps)]
    assert stats.steps == 2  # 3 examples (doc, practice question, extra) in batches of 2
    after = snapshot(learner.model)
    assert all(torch.equal(before[n], after[n]) for n in before), "lr 0 from the piece must leave weights alone"


def test_unknown_piece_is_a_config_error():
    from lifelong.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown piece 'ewc2'"):
        build_pieces(["ewc2"], load_config())


def test_gradient_accumulation_counts_optimizer_steps(tiny):
    learner, _ = make_learner(tiny[1], "a", batch_size=1, grad_accum=2, epochs=2)
    stats = learner.learn(DOMAIN, seed=0)  # 2 examples per epoch, 1 per micro-batch, 2 micro-batches per step
    assert stats.steps == 2


def test_length_grouping_pads_less_and_keeps_every_example_once_per_epoch():
    import random as stdlib_random

    from lifelong.training import default_batches

    draw = stdlib_random.Random(1)
    examples = [Example(text="x" * draw.randint(1, 400), source=f"e{i}") for i in range(200)]

    def padding(batches):
        return sum(max(len(e.text) for e in b) * len(b) - sum(len(e.text) for e in b) for b in batches)

    plain = default_batches(examples, 4, stdlib_random.Random(0))
    grouped = default_batches(examples, 4, stdlib_random.Random(0), group_by_length=True)
    assert sorted(e.source for b in grouped for e in b) == sorted(e.source for e in examples)
    assert all(len(b) == 4 for b in grouped)
    assert padding(grouped) < 0.2 * padding(plain)
    assert grouped == default_batches(examples, 4, stdlib_random.Random(0), group_by_length=True)  # seeded
    assert grouped != default_batches(examples, 4, stdlib_random.Random(1), group_by_length=True)


@pytest.mark.parametrize(("schedule", "warmup", "expected"), [
    ("auto", 0.0, "constant"), ("auto", 0.5, "linear"), ("linear", 0.0, "linear"), ("cosine", 0.0, "cosine")])
def test_the_learning_rate_follows_lr_scheduler_type(tiny, monkeypatch, schedule, warmup, expected):
    rates = []
    original = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    learner, config = make_learner(tiny[1], "a", batch_size=1, epochs=2, lr_scheduler_type=schedule,
                                   warmup_ratio=warmup)
    learner.learn(DOMAIN, seed=0)
    lr = config.training.lr
    assert len(rates) == 4
    if expected == "constant":
        assert rates == [lr] * 4
    elif warmup:
        assert rates[0] < rates[1] < rates[2] == lr and rates[3] < lr  # warms up over 2 steps, then decays
    else:
        assert rates[0] == lr and rates[0] > rates[1] > rates[2] > rates[3] > 0
        assert (rates[1] == pytest.approx(0.75 * lr)) == (expected == "linear")  # cosine: 0.85 lr after 1 of 4
