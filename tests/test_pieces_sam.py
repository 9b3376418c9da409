"""SAM: the second pass at the perturbed weights, and its effect on a training step."""

import pytest
import torch

from lifelong.config import SamConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.errors import ConfigError
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.sam import Sam

DOMAIN = Domain("zorb", documents=[Document("The zorb of Plinth is blue."), Document("Quarn ships sail at dawn.")],
                items=[QAItem("What color is the zorb of Plinth?", "blue", split="train")])


def trained(tokenizer, pieces, **sections):
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                                    "training": {"epochs": 2, "batch_size": 2, "lr": 1e-3}, **sections})
    learner = Learner(tiny_model(tokenizer, seed=0), tokenizer, build_pieces(config.pieces, config), config)
    stats = learner.learn(DOMAIN, seed=0)
    assert stats.steps == 4
    return {n: p.detach().clone() for n, p in learner.model.named_parameters()}


def test_sam_takes_the_gradient_at_the_perturbed_weights_and_restores_them():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)

    def loss_fn():
        return ((model(x) - y) ** 4).mean()  # not quadratic: the gradient changes with the weights

    loss_fn().backward()
    weights = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.detach().clone() for p in model.parameters()]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    rho = 0.1

    def closure():
        loss = loss_fn()
        loss.backward()
        return loss.detach()

    Sam(SamConfig(rho=rho)).adjust_gradients(model, closure)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))  # restored exactly
    reference = torch.nn.Linear(3, 1)
    with torch.no_grad():
        for r, w, g in zip(reference.parameters(), weights, grads, strict=True):
            r.copy_(w + rho * g / norm)
    ((reference(x) - y) ** 4).mean().backward()
    for p, r, g in zip(model.parameters(), reference.parameters(), grads, strict=True):
        assert torch.allclose(p.grad, r.grad, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(p.grad, g)  # not the gradient at the unperturbed weights


def test_sam_with_rho_zero_is_a_plain_step_and_with_rho_positive_is_not(tiny):
    plain = trained(tiny[1], ["full_finetune"])
    flat = trained(tiny[1], ["full_finetune", "sam"], sam={"rho": 0.0})
    sharp = trained(tiny[1], ["full_finetune", "sam"], sam={"rho": 0.05})
    assert all(torch.equal(plain[n], flat[n]) for n in plain)
    differing = [n for n in plain if not torch.equal(plain[n], sharp[n])]
    assert len(differing) > len(plain) // 2


def test_sam_under_lora(tiny):
    plain = trained(tiny[1], ["lora"], lora={"after_domain": "continue"})
    sharp = trained(tiny[1], ["lora", "sam"], lora={"after_domain": "continue"}, sam={"rho": 0.5})
    assert any(not torch.equal(plain[n], sharp[n]) for n in plain if "lora_" in n)
    assert all(torch.equal(plain[n], sharp[n]) for n in plain if "lora_" not in n)


def test_sam_needs_one_micro_batch_per_step(tiny):
    config = load_config(overrides={"model": "tiny", "pieces": ["full_finetune", "sam"],
                                    "training": {"grad_accum": 2}})
    with pytest.raises(ConfigError, match="training.grad_accum"):
        Learner(tiny_model(tiny[1], seed=0), tiny[1], build_pieces(config.pieces, config), config)
