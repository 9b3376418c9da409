"""Selective freezing: the bottom n transformer layers and/or named parameters do not train.

Lower layers carry the general features most tasks share, so keeping them fixed protects them
and saves their backward pass. A parameter is frozen if it sits in one of layers 0..n-1
(`bottom_n`), if a pattern in `names` is a substring of its name or a regular expression that
matches its whole name, or (`embeddings: true`) if it is an embedding. With LoRA, freezing a
layer freezes its adapter weights (the base weights are frozen anyway).

Freezing is applied at the start of every round (in `param_groups`), so it also covers the fresh
adapter LoRA attaches after a merge.

Source: Howard & Ruder 2018 (ULMFiT) and Lee et al. 2019, "What Would Elsa Do? Freezing Layers
During Transformer Fine-Tuning" (freezing the lower layers costs little quality).
"""

from __future__ import annotations

import re

import torch

from lifelong.config import FreezingConfig
from lifelong.model_layers import depth, layer_index
from lifelong.pieces.base import Piece


class Freezing(Piece):
    """Sets requires_grad False on the selected parameters and drops them from the optimizer."""

    name = "freezing"
    options: FreezingConfig

    def __init__(self, options: FreezingConfig | None = None):
        super().__init__(options or FreezingConfig())
        self._patterns = [re.compile(pattern) for pattern in self.options.names]

    def frozen(self, name: str) -> bool:
        index = layer_index(name)
        if index is not None and index < self.options.bottom_n:
            return True
        if self.options.embeddings and depth(name, n_layers=1 << 30) == 0:
            return True
        return any(p.pattern in name or p.fullmatch(name) for p in self._patterns)

    def param_groups(self, model: torch.nn.Module, groups: list[dict]) -> list[dict]:
        frozen = set()
        for name, p in model.named_parameters():
            if self.frozen(name):
                p.requires_grad_(False)
                frozen.add(id(p))
        return [{**group, "params": [p for p in group["params"] if id(p) not in frozen]} for group in groups]
