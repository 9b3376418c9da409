"""Distillation on the core set: zero before anything changed, and it holds the stored predictions."""

from __future__ import annotations

import copy

import torch

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.learner import Learner
from lifelong.pieces import build_pieces
from lifelong.pieces.distill import top_k_kl

CORE = Domain("core", documents=[Document(f"General fact number {i}: water is wet and the sky is blue.")
                                 for i in range(6)],
              items=[QAItem(f"What colour is sky {i}?", "blue", split="train") for i in range(6)])
NEW = Domain("new", documents=[Document(f"Zorb {i} of Plinth glows a deep violet at every dawn.") for i in range(8)])


def learner_with(tiny, pieces, alpha=1.0):
    model, tokenizer = tiny
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                                    "training": {"epochs": 4, "batch_size": 4, "lr": 3e-2},
                                    "distill": {"alpha": alpha, "examples": 12, "top_k": 8}})
    learner = Learner(copy.deepcopy(model), tokenizer, build_pieces(config.pieces, config), config)
    learner.core = CORE
    return learner


def test_top_k_kl_is_zero_only_when_nothing_changed():
    logits = torch.randn(5, 50)
    probs = torch.softmax(logits, -1)
    top = probs.topk(8, -1)
    assert torch.allclose(top_k_kl(top.values, torch.log_softmax(logits, -1), top.indices), torch.zeros(5), atol=1e-5)
    moved = torch.log_softmax(logits + torch.randn(5, 50), -1)
    assert (top_k_kl(top.values, moved, top.indices) > 1e-3).all()


def test_top_k_kl_gradient_is_exact_when_the_model_is_sure_of_its_top_tokens():
    torch.manual_seed(0)
    before = torch.softmax(3 * torch.randn(3, 50), -1).topk(8, -1)
    grads = []
    for dtype in (torch.float64, torch.float32):
        sure = torch.zeros(3, 50, dtype=dtype)
        sure.scatter_(-1, before.indices, 18.0)  # the top 8 hold all but ~1e-7 of the mass
        sure.requires_grad_(True)
        top_k_kl(before.values.to(dtype), torch.log_softmax(sure, -1), before.indices).sum().backward()
        grads.append(sure.grad.double())
    assert (grads[1] - grads[0]).abs().max() < 1e-5  # 1 - sum(top k) in float32 was off by 1e-2


def _penalty(learner, distill):
    distill._cycle = []
    with torch.no_grad():
        return float(distill.penalty(learner.model))


def test_distillation_holds_the_stored_predictions_while_a_new_domain_is_learned(tiny):
    measured = {}
    for alpha in (0.0, 300.0):
        learner = learner_with(tiny, ["full_finetune", "distill"], alpha=alpha)
        distill = learner.pieces[1]
        learner.learn(NEW, seed=1)
        assert len(distill.targets) == 12 and distill.targets[0]["ids"].shape[-1] == 8
        distill.options.alpha = 1.0
        measured[alpha] = _penalty(learner, distill)
    assert measured[0.0] > 1e-3  # learning the new domain moved the core predictions
    assert measured[300.0] < 0.5 * measured[0.0]  # distillation held them


def test_the_penalty_is_zero_before_training_and_the_state_round_trips(tiny):
    learner = learner_with(tiny, ["full_finetune", "distill"])
    distill = learner.pieces[1]
    distill.before_round(NEW)
    assert _penalty(learner, distill) < 1e-4
    again = learner_with(tiny, ["full_finetune", "distill"]).pieces[1]
    again.load_state_dict(copy.deepcopy(distill.state_dict()))
    assert all(torch.equal(a["ids"], b["ids"]) for a, b in zip(again.targets, distill.targets, strict=True))
    again.before_round(NEW)  # a resumed run keeps the stored predictions, it does not recompute them
    assert again.targets[0]["probs"] is not None and len(again.targets) == len(distill.targets)


def test_predictions_stored_in_batches_are_those_of_one_example_at_a_time(tiny):
    learner = learner_with(tiny, ["full_finetune", "distill"])
    distill = learner.pieces[1]
    distill.before_round(NEW)
    lengths = {len(t["input_ids"]) for t in distill.targets}
    assert len(lengths) > 1  # the batches held padding
    model = learner.model.eval()
    with torch.no_grad():
        for target in distill.targets:
            alone = torch.softmax(model(input_ids=target["input_ids"][None]).logits[0, target["positions"]], -1)
            assert torch.allclose(alone.gather(-1, target["ids"]), target["probs"].float(), atol=2e-3)
