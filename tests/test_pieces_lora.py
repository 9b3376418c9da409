"""LoRA's PEFT-named variants: rsLoRA's scaling and LoRA+'s learning rate for the B matrices."""

import math

import pytest
from test_pieces_layerwise import make_learner, optimizer_lrs

from lifelong.pieces.layerwise_lr import layer_index


def adapter_scalings(model) -> set[float]:
    return {module.scaling["default"] for module in model.modules() if hasattr(module, "lora_A")}


@pytest.mark.parametrize("rslora", [False, True])
def test_use_rslora_scales_by_alpha_over_the_root_of_the_rank(tiny, rslora):
    learner, _ = make_learner(tiny[1], ["lora"], lora={"r": 16, "lora_alpha": 32, "use_rslora": rslora})
    assert adapter_scalings(learner.model) == {32 / math.sqrt(16) if rslora else 32 / 16}


def test_loraplus_trains_the_b_matrices_at_the_ratio(tiny, monkeypatch):
    learner, config = make_learner(tiny[1], ["lora"], lora={"loraplus_lr_ratio": 16})
    lrs = optimizer_lrs(monkeypatch, learner)
    assert {".lora_A." in n or ".lora_B." in n for n in lrs} == {True}
    for name, got in lrs.items():
        assert got == pytest.approx(config.training.lr * (16 if ".lora_B." in name else 1)), name


def test_loraplus_composes_with_layerwise_decay(tiny, monkeypatch):
    xi, ratio = 0.5, 4
    learner, config = make_learner(tiny[1], ["lora", "layerwise_lr"], layerwise_lr={"xi": xi},
                                   lora={"loraplus_lr_ratio": ratio})
    lrs = optimizer_lrs(monkeypatch, learner)
    for name, got in lrs.items():
        expected = config.training.lr * xi ** (3 - (layer_index(name) + 1)) * (ratio if ".lora_B." in name else 1)
        assert got == pytest.approx(expected, rel=1e-12), name


def test_without_loraplus_a_and_b_share_the_rate(tiny, monkeypatch):
    learner, config = make_learner(tiny[1], ["lora"])
    assert set(optimizer_lrs(monkeypatch, learner).values()) == {config.training.lr}
