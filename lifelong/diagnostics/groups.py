"""Layer groups (embeddings, lower, middle, upper blocks) and weight snapshots keyed by parameter name.

A parameter's group comes from its depth (lifelong.pieces.layerwise_lr.depth): depth 0 is the
embeddings (with tied embeddings, also the head), blocks 0..L-1 are split into `n_groups` nearly
equal, consecutive spans (lower / middle / upper for 3), and the final norm and an untied head belong
to the top span. PEFT names (`base_model.model.` prefixes, `.base_layer.`) map to the plain name, so a
LoRA model and its merged copy share names.
"""

from __future__ import annotations

import re

import torch

from lifelong.model_layers import count_layers, depth

EMBEDDINGS = "embeddings"
_PEFT_PREFIX = re.compile(r"^(?:base_model\.model\.)+")


def canonical_name(name: str) -> str:
    """A parameter name without PEFT's wrapping (`base_model.model.` prefix, `.base_layer`)."""
    return _PEFT_PREFIX.sub("", name).replace(".base_layer.", ".")


def span_names(n_layers: int, n_groups: int) -> list[tuple[str, range]]:
    """Consecutive spans of block indices, named lower/middle/upper (3), lower/upper (2) or by range."""
    n_groups = max(1, min(n_groups, n_layers)) if n_layers else 0
    spans, start = [], 0
    for g in range(n_groups):
        size = n_layers // n_groups + (1 if g < n_layers % n_groups else 0)
        spans.append(range(start, start + size))
        start += size
    named = {3: ["lower", "middle", "upper"], 2: ["lower", "upper"], 1: ["blocks"]}
    labels = named.get(n_groups) or [f"blocks {s.start}-{s.stop - 1}" for s in spans]
    return list(zip(labels, spans, strict=True))


class LayerGroups:
    """Which group every parameter (and every block index) of a model belongs to."""

    def __init__(self, n_layers: int, n_groups: int = 3):
        self.n_layers = n_layers
        self.spans = span_names(n_layers, n_groups)
        self.names = [EMBEDDINGS] + [label for label, _ in self.spans]

    @classmethod
    def of(cls, model: torch.nn.Module, n_groups: int = 3) -> LayerGroups:
        return cls(count_layers(model), n_groups)

    def of_block(self, index: int) -> str:
        for label, span in self.spans:
            if index in span:
                return label
        return self.spans[-1][0] if self.spans else EMBEDDINGS

    def of_param(self, name: str) -> str:
        level = depth(canonical_name(name), self.n_layers)
        if level == 0 and self.n_layers:
            return EMBEDDINGS
        return self.of_block(min(level, self.n_layers) - 1) if self.n_layers else EMBEDDINGS

    def lower_upper(self) -> tuple[str, str]:
        """The lowest and highest block groups (for 'lower versus upper layers')."""
        return self.spans[0][0], self.spans[-1][0]


def snapshot_weights(model: torch.nn.Module, trainable_only: bool = False) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's parameters by canonical name."""
    return {canonical_name(name): p.detach().to("cpu", copy=True)
            for name, p in model.named_parameters() if p.requires_grad or not trainable_only}


@torch.no_grad()
def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], names: set[str] | None = None) -> int:
    """Copy `weights` (by canonical name, matching shape) into the model; only `names` when given."""
    copied = 0
    for name, p in model.named_parameters():
        key = canonical_name(name)
        if key in weights and (names is None or key in names) and weights[key].shape == p.shape:
            p.copy_(weights[key].to(p.device, p.dtype))
            copied += 1
    return copied
