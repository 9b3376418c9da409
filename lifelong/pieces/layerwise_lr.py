"""Layer-wise learning-rate decay (discriminative fine-tuning).

Transformer layer l = 1..L trains at lr * xi^(L - l): the top layer at the full rate, each
layer below at xi times the rate of the one above, and the embeddings (layer 0) at lr * xi^L.
The final norm and an untied output head sit at the top (lr). Lower layers hold the more
general features, so they move least. Works the same for full fine-tuning and for LoRA (the
adapters of layer l get layer l's rate).

Source: Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text Classification"
(ULMFiT, discriminative fine-tuning); the per-layer form lr * xi^(L-l) as in Clark et al. 2020
(ELECTRA) and Sun et al. 2019 ("How to Fine-Tune BERT for Text Classification", xi ~ 0.9-0.95).

The helpers it uses (layer of a parameter, depth, layer count) live in lifelong/model_layers.py,
shared with the freezing and unfreezing pieces and the diagnostics.
"""

from __future__ import annotations

import torch

from lifelong.config import LayerwiseLrConfig
from lifelong.model_layers import count_layers, depth, layer_index  # noqa: F401  (layer_index: its old home)
from lifelong.pieces.base import Piece


class LayerwiseLr(Piece):
    """Splits every optimizer group by layer and scales its learning rate by xi^(L - l)."""

    name = "layerwise_lr"
    options: LayerwiseLrConfig

    def __init__(self, options: LayerwiseLrConfig | None = None):
        super().__init__(options or LayerwiseLrConfig())

    def factor(self, name: str, n_layers: int) -> float:
        return self.options.xi ** (n_layers - depth(name, n_layers))

    def param_groups(self, model: torch.nn.Module, groups: list[dict]) -> list[dict]:
        names = {id(p): name for name, p in model.named_parameters()}
        n_layers = count_layers(model)
        default_lr = self.context.config.training.lr if self.context is not None else None
        split: list[dict] = []
        for group in groups:
            by_depth: dict[int, list[torch.nn.Parameter]] = {}
            for p in group["params"]:
                by_depth.setdefault(depth(names.get(id(p), ""), n_layers), []).append(p)
            lr = group.get("lr", default_lr)
            for level, params in sorted(by_depth.items()):
                split.append({**group, "params": params, "lr": lr * self.options.xi ** (n_layers - level)})
        return split
