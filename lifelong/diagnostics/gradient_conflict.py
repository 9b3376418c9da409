"""Gradient conflict: the cosine between the gradient of the new domain and those of earlier domains.

At the weights a round starts from, the loss gradient of the new domain's training examples is
compared with the gradient of each earlier domain's examples (what replay would hold) and of the
canary's questions, per layer group and over all trainable weights. A step along the new gradient
changes an old loss by about -lr * g_new . g_old, so a negative cosine means that learning the new
domain raises the old loss: forgetting grows as the similarity turns negative (Lopez-Paz & Ranzato
2017, GEM; Riemer et al. 2019, MER; Farajtabar et al. 2020, OGD).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from lifelong.training import IGNORE_INDEX, Example, collate, tokenize_examples


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors (flattened); 0.0 when either is zero."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    denominator = a.norm() * b.norm()
    return float(a @ b / denominator) if denominator > 0 else 0.0


def grouped_cosines(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor],
                    group_of: Callable[[str], str]) -> dict[str, float | None]:
    """Cosine per group of parameters, plus `all` over every parameter the two share by name.

    A group where either gradient is zero (e.g. frozen, or untouched by the loss) is None.
    """
    dots: dict[str, float] = {}
    norms_a: dict[str, float] = {}
    norms_b: dict[str, float] = {}
    for name, a in first.items():
        b = second.get(name)
        if b is None or b.shape != a.shape:
            continue
        a32, b32 = a.detach().float().flatten(), b.detach().float().flatten()
        ab, aa, bb = float(a32 @ b32), float(a32 @ a32), float(b32 @ b32)  # summed across tensors in float64
        for group in (group_of(name), "all"):
            dots[group] = dots.get(group, 0.0) + ab
            norms_a[group] = norms_a.get(group, 0.0) + aa
            norms_b[group] = norms_b.get(group, 0.0) + bb
    return {group: (dots[group] / math.sqrt(norms_a[group] * norms_b[group])
                    if norms_a[group] > 0 and norms_b[group] > 0 else None)
            for group in dots}


def batch_loss(model, features: list[dict], device) -> tuple[torch.Tensor, int]:
    """Sum of token losses of one micro-batch and its number of predicted tokens."""
    pad = 0
    batch = {k: v.to(device) for k, v in collate(features, pad).items()}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels.flatten(),
                                               ignore_index=IGNORE_INDEX, reduction="sum")
    return losses, int((labels != IGNORE_INDEX).sum())


def mean_loss(model, tokenizer, examples: Sequence[Example], max_length: int = 256, batch_size: int = 8,
              backward: bool = False) -> float:
    """The mean token loss of the examples (micro-batched); with `backward`, its gradient accumulates in .grad."""
    features = tokenize_examples(tokenizer, examples, max_length)
    if not features:
        return float("nan")
    device = next(model.parameters()).device
    total_tokens = sum(sum(1 for label in f["labels"][1:] if label != IGNORE_INDEX) for f in features)
    total = 0.0
    with torch.set_grad_enabled(backward):
        for start in range(0, len(features), batch_size):
            loss, _ = batch_loss(model, features[start:start + batch_size], device)
            if backward:
                (loss / max(total_tokens, 1)).backward()
            total += float(loss.detach())
    return total / max(total_tokens, 1)


def gradient(model, tokenizer, examples: Sequence[Example], max_length: int = 256,
             batch_size: int = 8) -> dict[str, torch.Tensor]:
    """The gradient of the examples' mean token loss w.r.t. the trainable parameters, by name.

    Runs in eval mode (no dropout); the model's .grad fields are left as they were found (None).
    """
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    was_training = model.training
    model.eval()
    saved = [p.grad for _, p in params]
    for _, p in params:
        p.grad = None
    try:
        mean_loss(model, tokenizer, examples, max_length, batch_size, backward=True)
        return {name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
                for name, p in params}
    finally:
        for (_, p), grad in zip(params, saved, strict=True):
            p.grad = grad
        model.train(was_training)


def conflicts(model, tokenizer, new: Sequence[Example], others: dict[str, Sequence[Example]],
              group_of: Callable[[str], str], max_length: int = 256, batch_size: int = 8) -> dict[str, dict]:
    """Grouped cosines between the gradient of `new` and the gradient of each of `others` (by source name).

    Only one other gradient is held at a time besides the new one.
    """
    g_new = gradient(model, tokenizer, new, max_length, batch_size)
    out = {}
    for source, examples in others.items():
        if examples:
            out[source] = grouped_cosines(g_new, gradient(model, tokenizer, examples, max_length, batch_size),
                                          group_of)
    return out
