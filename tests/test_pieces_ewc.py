"""Online EWC: the penalty, the per-example Fisher over trainable parameters, and resume."""

import io

import pytest
import torch

from lifelong.config import EwcConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.errors import ConfigError
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.ewc import Ewc
from lifelong.training import Example, collate, tokenize_examples

FIRST = Domain("zorb", documents=[Document("The zorb of Plinth is blue."), Document("Marn quells are green.")],
               items=[QAItem("What color is the zorb of Plinth?", "blue", split="train")])
SECOND = Domain("ships", documents=[Document("Quarn ships sail at dawn."), Document("Tel lamps burn red oil.")],
                items=[QAItem("When do Quarn ships sail?", "dawn", split="train")])


def make_learner(tokenizer, pieces, training=None, **sections):
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                                    "training": {"epochs": 2, "batch_size": 2, "lr": 1e-3, **(training or {})},
                                    **sections})
    return Learner(tiny_model(tokenizer, seed=0), tokenizer, build_pieces(config.pieces, config), config)


def ewc_of(learner) -> Ewc:
    return next(p for p in learner.pieces if p.name == "ewc")


def shifted(model, names, amount):
    """The model's parameters `names` moved by `amount` (in place); returns the originals to restore."""
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in names}
    with torch.no_grad():
        for n in names:
            params[n].add_(amount)
    return saved


def restore(model, saved):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, value in saved.items():
            params[n].copy_(value)


@pytest.fixture(scope="module")
def lora_ewc(tiny):
    learner = make_learner(tiny[1], ["lora", "ewc"])
    learner.learn(FIRST, seed=0)
    return learner


def test_penalty_is_zero_at_the_anchor_and_quadratic_in_the_distance(lora_ewc):
    model, ewc = lora_ewc.model, ewc_of(lora_ewc)
    at_anchor = ewc.penalty(model)
    assert at_anchor is not None and at_anchor.item() == 0.0
    names = list(ewc.fisher)
    saved = shifted(model, names, 1e-2)
    one = ewc.penalty(model).item()
    restore(model, saved)
    saved = shifted(model, names, 2e-2)
    two = ewc.penalty(model).item()
    restore(model, saved)
    assert one > 0
    assert two == pytest.approx(4 * one, rel=1e-4)  # twice the distance, four times the penalty
    expected = 0.5 * ewc.options.ewc_lambda * sum(f.sum().item() for f in ewc.fisher.values()) * 1e-4
    assert one == pytest.approx(expected, rel=1e-3)


def test_penalty_has_a_gradient_that_pulls_back(lora_ewc):
    model, ewc = lora_ewc.model, ewc_of(lora_ewc)
    names = list(ewc.fisher)
    saved = shifted(model, names, 1e-2)
    penalty = ewc.penalty(model)
    penalty.backward()
    params = dict(model.named_parameters())
    grads = [params[n].grad for n in names]
    assert all(g is not None and (g >= 0).all() for g in grads)  # positive shift, gradient pushes back down
    assert any(g.abs().sum() > 0 for g in grads)
    for n in names:
        params[n].grad = None
    restore(model, saved)


def test_fisher_and_anchor_cover_exactly_the_trainable_parameters(lora_ewc):
    model, ewc = lora_ewc.model, ewc_of(lora_ewc)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(ewc.fisher) == set(trainable) == set(ewc.anchor)
    assert all("lora_" in n for n in ewc.fisher)
    assert sum(f.numel() for f in ewc.fisher.values()) == sum(p.numel() for p in trainable.values())
    assert sum(p.numel() for p in trainable.values()) < sum(p.numel() for p in model.parameters()) / 10
    # the anchor is the fresh adapter after LoRA's merge (ewc comes after lora)
    assert all(torch.equal(ewc.anchor[n], p) for n, p in trainable.items())


def test_fisher_is_the_mean_of_per_example_squared_gradients(tiny):
    _, tokenizer = tiny
    learner = make_learner(tokenizer, ["full_finetune", "ewc"])
    model = learner.model
    examples = [Example("The zorb of Plinth is blue."), Example("Quarn ships sail at dawn and return at dusk.")]
    fisher = ewc_of(learner).estimate_fisher(model, examples)
    assert set(fisher) == {n for n, _ in model.named_parameters()}
    grads = []
    for feature in tokenize_examples(tokenizer, examples, 64):
        model.zero_grad(set_to_none=True)
        model(**collate([feature], tokenizer.pad_token_id)).loss.backward()
        grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})
    model.zero_grad(set_to_none=True)
    name = "model.layers.0.mlp.up_proj.weight"
    per_example = (grads[0][name] ** 2 + grads[1][name] ** 2) / 2
    squared_mean = ((grads[0][name] + grads[1][name]) / 2) ** 2
    assert torch.allclose(fisher[name], per_example, rtol=1e-4, atol=1e-12)
    assert not torch.allclose(fisher[name], squared_mean, rtol=1e-2, atol=1e-12)
    assert fisher[name].sum() > squared_mean.sum()  # E[g^2] - E[g]^2 = the gradients' variance > 0


def test_running_fisher_decays_with_gamma(tiny):
    learner = make_learner(tiny[1], ["lora", "ewc"], ewc={"gamma": 0.5, "fisher_samples": 4})
    ewc = ewc_of(learner)
    learner.learn(FIRST, seed=0)
    first = {n: f.clone() for n, f in ewc.fisher.items()}
    new = {}
    original = ewc.estimate_fisher

    def spy(model, examples):
        new.update(original(model, examples))
        return new

    ewc.estimate_fisher = spy
    learner.learn(SECOND, seed=1)
    for n, f in ewc.fisher.items():
        assert torch.allclose(f, 0.5 * first[n] + new[n])


def test_state_round_trips_through_a_checkpoint(lora_ewc, tiny):
    model, ewc = lora_ewc.model, ewc_of(lora_ewc)
    buffer = io.BytesIO()
    torch.save(ewc.state_dict(), buffer)
    buffer.seek(0)
    fresh = Ewc(EwcConfig())
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    assert fresh.rounds == ewc.rounds == 1
    assert set(fresh.fisher) == set(ewc.fisher)
    assert all(torch.equal(fresh.fisher[n], ewc.fisher[n].cpu()) for n in ewc.fisher)
    assert all(torch.equal(fresh.anchor[n], ewc.anchor[n].cpu()) for n in ewc.anchor)
    saved = shifted(model, list(ewc.fisher), 3e-2)
    expected = ewc.penalty(model).item()
    assert expected > 0 and fresh.penalty(model).item() == pytest.approx(expected, rel=1e-6)
    restore(model, saved)


def test_ewc_holds_the_weights_nearer_the_anchor(tiny):
    """The distance EWC protects, sum_i F_i (theta_i - anchor_i)^2 after the second domain, shrinks as lambda grows.

    (The plain Euclidean distance is no test: it is dominated by weights the first domain's Fisher leaves
    free, and with Adam a huge lambda makes the protected weights jitter by about lr a step.)"""
    distances = {}
    for strength in (0.0, 1e2, 1e4):
        learner = make_learner(tiny[1], ["full_finetune", "ewc"], ewc={"ewc_lambda": strength})
        learner.learn(FIRST, seed=0)
        ewc = ewc_of(learner)
        anchor = {n: a.clone() for n, a in ewc.anchor.items()}
        fisher = {n: f.clone() for n, f in ewc.fisher.items()}
        learner.learn(SECOND, seed=1)
        params = dict(learner.model.named_parameters())
        distances[strength] = sum((fisher[n] * (params[n] - a) ** 2).sum().item() for n, a in anchor.items())
    assert distances[1e4] < distances[1e2] < distances[0.0]
    assert distances[1e4] < 0.5 * distances[0.0]


def test_ewc_must_come_after_a_merging_lora(tiny):
    with pytest.raises(ConfigError, match="'ewc' must come after 'lora'"):
        make_learner(tiny[1], ["ewc", "lora"])
    make_learner(tiny[1], ["ewc", "lora"], lora={"after_domain": "continue"})  # nothing is merged: fine
