"""Where a parameter sits in a transformer: its block, its depth, the number of blocks.

Read from parameter names alone, so it works on plain and PEFT-wrapped models; used by the layer-wise
LR, freezing, unfreezing and consolidation pieces and by the diagnostics' layer groups and drift.
"""

from __future__ import annotations

import re

import torch

# `model.layers.3.` (Llama, Mistral, Qwen; PEFT: `base_model.model.model.layers.3.`), `h.3.` (GPT-2),
# `layer.3.` (BERT), `blocks.3.`
_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\.")
_EMBEDDING = re.compile(r"(?:^|\.)(?:\w*embed\w*|wte|wpe)\.")


def layer_index(name: str) -> int | None:
    """The 0-based transformer block a parameter belongs to, or None (embeddings, final norm, head)."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def count_layers(model: torch.nn.Module) -> int:
    """L: the number of transformer blocks (from every parameter's name, frozen ones included)."""
    indices = [i for name, _ in model.named_parameters() if (i := layer_index(name)) is not None]
    if indices:
        return max(indices) + 1
    return int(getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0)


def depth(name: str, n_layers: int) -> int:
    """Where a parameter sits: 0 embeddings, l = 1..L for block l-1, L for the final norm and head."""
    index = layer_index(name)
    if index is not None:
        return index + 1
    if _EMBEDDING.search(name):
        return 0
    return n_layers
