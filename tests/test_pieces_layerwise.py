"""Layer-wise LR decay: the optimizer's learning rate of every parameter equals lr * xi^(L - l)."""

import pytest
import torch

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.layerwise_lr import count_layers, depth, layer_index

DOMAIN = Domain("zorb", documents=[Document("The zorb of Plinth is blue.")],
                items=[QAItem("What color is the zorb of Plinth?", "blue", split="train")])


def make_learner(tokenizer, pieces, layers=3, **sections):
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                                    "training": {"epochs": 1, "batch_size": 2, "lr": 1e-3}, **sections})
    model = tiny_model(tokenizer, layers=layers, seed=0)
    return Learner(model, tokenizer, build_pieces(config.pieces, config), config), config


class SpyAdamW(torch.optim.AdamW):
    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        SpyAdamW.made.append(self)


def optimizer_lrs(monkeypatch, learner) -> dict[str, float]:
    """Learn one round and return the learning rate the optimizer used for each parameter, by name."""
    names = {id(p): n for n, p in learner.model.named_parameters()}
    SpyAdamW.made = []
    monkeypatch.setattr(torch.optim, "AdamW", SpyAdamW)
    learner.learn(DOMAIN, seed=0)
    [optimizer] = SpyAdamW.made
    lrs = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            assert names[id(p)] not in lrs, "a parameter is in two groups"
            lrs[names[id(p)]] = group["lr"]
    return lrs


def test_layer_index_and_depth_of_names():
    assert layer_index("model.layers.11.mlp.up_proj.weight") == 11
    assert layer_index("base_model.model.model.layers.2.self_attn.q_proj.lora_A.default.weight") == 2
    assert layer_index("transformer.h.5.attn.c_attn.weight") == 5
    assert layer_index("model.norm.weight") is None
    assert depth("model.embed_tokens.weight", 4) == 0
    assert depth("model.layers.0.mlp.up_proj.weight", 4) == 1
    assert depth("model.layers.3.mlp.up_proj.weight", 4) == 4
    assert depth("model.norm.weight", 4) == 4
    assert depth("lm_head.weight", 4) == 4


@pytest.mark.parametrize("xi", [0.5, 0.9])
def test_full_finetuning_lr_of_every_parameter_follows_the_formula(tiny, monkeypatch, xi):
    learner, config = make_learner(tiny[1], ["full_finetune", "layerwise_lr"], layerwise_lr={"xi": xi})
    lr, n_layers = config.training.lr, 3
    assert count_layers(learner.model) == n_layers
    lrs = optimizer_lrs(monkeypatch, learner)
    assert set(lrs) == {n for n, _ in learner.model.named_parameters()}  # every parameter, once
    for name, got in lrs.items():
        if "embed_tokens" in name:
            expected = lr * xi ** n_layers  # embeddings: layer 0, below layer 1
        elif (index := layer_index(name)) is not None:
            expected = lr * xi ** (n_layers - (index + 1))  # layer l = index + 1
        else:
            expected = lr  # final norm (and head) at the top
        assert got == pytest.approx(expected, rel=1e-12), name
    assert lrs["model.layers.2.mlp.up_proj.weight"] == pytest.approx(lr)
    assert lrs["model.layers.0.mlp.up_proj.weight"] == pytest.approx(lr * xi ** 2)


def test_lora_adapters_get_their_layers_rate(tiny, monkeypatch):
    xi = 0.5
    learner, config = make_learner(tiny[1], ["lora", "layerwise_lr"], layerwise_lr={"xi": xi})
    lrs = optimizer_lrs(monkeypatch, learner)
    assert lrs and all("lora_" in name for name in lrs)
    n_adapted = len([n for n, p in learner.model.named_parameters() if p.requires_grad])
    assert len(lrs) == n_adapted
    for name, got in lrs.items():
        index = layer_index(name)
        assert got == pytest.approx(config.training.lr * xi ** (3 - (index + 1)), rel=1e-12), name
    assert {round(v / config.training.lr, 6) for v in lrs.values()} == {1.0, 0.5, 0.25}


def test_groups_keep_other_settings_and_split_by_layer(tiny):
    learner, _ = make_learner(tiny[1], ["full_finetune", "layerwise_lr"])
    params = list(learner.model.parameters())
    groups = learner.pieces[1].param_groups(learner.model, [{"params": params, "lr": 1.0, "weight_decay": 0.1}])
    assert len(groups) == 4  # embeddings, layers 1 and 2, layer 3 with the final norm (same rate)
    assert all(g["weight_decay"] == 0.1 for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(params)
