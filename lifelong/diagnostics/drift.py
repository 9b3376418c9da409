"""Representational drift: how much each layer's features on a fixed probe set moved in a round.

- Linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"):
  with column-centred features X, Y (tokens x width), CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).
  1 for identical features (and for any rotation or isotropic scaling of them), lower as they diverge.
  It weighs channels by variance, so it is also given without the two largest-variance channels of
  either side (`cka_robust`), with the share of variance the largest channel holds before and after:
  in SmolLM2-135M one channel can grow from 3% to 60% of a layer's variance in a round.
- Relative drift: ||Y - X||_F / ||X||_F, 0 for identical features.
- Attention-output drift: the relative drift of every block's attention output (the attention
  module's output before the residual add), averaged over the lower and the upper layer groups;
  the seed says lower layers are the most vulnerable.

Features are per token: the probe texts are run in one pass with hidden states returned, the first
token of every text is dropped (its activations are outliers in many LMs, attention sinks) and so are
pad tokens; at most `max_tokens` tokens are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lifelong.model_layers import layer_index

ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().double()
    return x - x.mean(dim=0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two feature matrices with the same rows (examples or tokens)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same rows, got {x.shape[0]} and {y.shape[0]}")
    x, y = _centred(x), _centred(y)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # fewer rows than columns: the n x n Gram form is cheaper
        k, l_ = x @ x.T, y @ y.T
        cross, norm_x, norm_y = (k * l_).sum(), k.norm(), l_.norm()
    else:
        cross, norm_x, norm_y = (y.T @ x).norm() ** 2, (x.T @ x).norm(), (y.T @ y).norm()
    denominator = norm_x * norm_y
    if denominator <= 0:
        return 1.0 if torch.equal(x, y) else 0.0
    return float(cross / denominator)


def top_channels(x: torch.Tensor, k: int = 1) -> tuple[list[int], list[float]]:
    """The k feature channels of largest variance and their shares of the total variance."""
    variance = _centred(x).pow(2).mean(dim=0)
    total = float(variance.sum())
    top = variance.topk(min(k, variance.numel()))
    return top.indices.tolist(), [float(v) / total if total > 0 else 0.0 for v in top.values]


def robust_cka(x: torch.Tensor, y: torch.Tensor, k: int = 2) -> float:
    """Linear CKA without the k largest-variance channels of either side.

    Linear CKA weighs channels by variance, so one outlier channel (a "massive activation" dimension
    that fine-tuning grows or moves) can drive it to near 0 while the rest barely changed.
    """
    drop = set(top_channels(x, k)[0]) | set(top_channels(y, k)[0])
    keep = torch.tensor([i not in drop for i in range(x.shape[1])])
    return linear_cka(x[:, keep], y[:, keep]) if keep.any() else linear_cka(x, y)


def relative_drift(x: torch.Tensor, y: torch.Tensor) -> float:
    """||y - x||_F / ||x||_F (0 when nothing moved)."""
    x, y = x.detach().double(), y.detach().double()
    norm = x.norm()
    return float((y - x).norm() / norm) if norm > 0 else float((y - x).norm())


@dataclass
class Features:
    """Per-token features of a probe set: hidden states (embeddings output, then every block) and attention outputs."""

    hidden: list[torch.Tensor]
    attention: list[torch.Tensor]  # one per block, in block order (empty if no attention module was found)


def attention_modules(model: torch.nn.Module) -> list[tuple[int, torch.nn.Module]]:
    """(block index, attention module) for every block whose attention module has a known name."""
    found: dict[int, torch.nn.Module] = {}
    for name, module in model.named_modules():
        index = layer_index(name + ".")
        if index is not None and name.rsplit(".", 1)[-1] in ATTENTION_NAMES and index not in found:
            found[index] = module
    return sorted(found.items())


def encode_probe(tokenizer, texts: Sequence[str], max_length: int = 128) -> list[list[int]]:
    """Token ids of each probe text (no special tokens), at most `max_length`."""
    return [tokenizer(text, add_special_tokens=False)["input_ids"][:max_length] for text in texts]


@torch.no_grad()
def probe_features(model: torch.nn.Module, tokenizer, texts: Sequence[str], max_tokens: int = 1024,
                   max_length: int = 128, batch_size: int = 8) -> Features:
    """Hidden states and attention outputs of every token of the probe texts (see the module docstring).

    Texts are batched in order of length (little padding); the token order is the same for the same texts.
    """
    encoded = [ids for ids in encode_probe(tokenizer, texts, max_length) if len(ids) > 1]
    encoded.sort(key=len)
    captured: dict[int, list[torch.Tensor]] = {}
    current: dict[str, torch.Tensor] = {}
    hooks = []
    for index, module in attention_modules(model):
        def hook(_module, _inputs, output, index=index):
            out = output[0] if isinstance(output, tuple) else output
            captured.setdefault(index, []).append(out.detach().float().cpu()[current["keep"]])
        hooks.append(module.register_forward_hook(hook))
    hidden: list[list[torch.Tensor]] = []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id or 0
    try:
        for start in range(0, len(encoded), batch_size):
            rows = encoded[start:start + batch_size]
            width = max(len(ids) for ids in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, row in enumerate(rows):
                ids[r, :len(row)] = torch.tensor(row)
                mask[r, :len(row)] = 1
            keep = mask.bool()
            keep[:, 0] = False  # the first token of each text
            current["keep"] = keep
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
            for layer, states in enumerate(out.hidden_states):
                if len(hidden) <= layer:
                    hidden.append([])
                hidden[layer].append(states.detach().float().cpu()[keep])
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return Features(hidden=[torch.cat(chunks)[:max_tokens] for chunks in hidden],
                    attention=[torch.cat(captured[i])[:max_tokens] for i in sorted(captured)])


def drift_summary(before: Features, after: Features, lower: Sequence[int] = (), upper: Sequence[int] = ()) -> dict:
    """Per-layer CKA and relative drift of hidden states, per-block attention-output drift, lower vs upper means.

    `lower` / `upper`: the block indices of the lower and upper layer groups.
    """
    cka = [linear_cka(x, y) for x, y in zip(before.hidden, after.hidden, strict=True)]
    robust = [robust_cka(x, y) for x, y in zip(before.hidden, after.hidden, strict=True)]
    top_share = [(top_channels(x)[1][0], top_channels(y)[1][0]) for x, y in zip(before.hidden, after.hidden,
                                                                                strict=True)]
    hidden_drift = [relative_drift(x, y) for x, y in zip(before.hidden, after.hidden, strict=True)]
    attention = [relative_drift(x, y) for x, y in zip(before.attention, after.attention, strict=True)]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "cka": cka,
        "cka_mean": mean(cka),
        "cka_min": min(cka) if cka else None,
        "cka_robust": robust,
        "cka_robust_mean": mean(robust),
        "top_channel_share_before": [b for b, _ in top_share],
        "top_channel_share_after": [a for _, a in top_share],
        "hidden_drift": hidden_drift,
        "attention_drift": attention,
        "attention_drift_lower": mean([attention[i] for i in lower if i < len(attention)]),
        "attention_drift_upper": mean([attention[i] for i in upper if i < len(attention)]),
        "tokens": int(before.hidden[0].shape[0]) if before.hidden else 0,
    }
