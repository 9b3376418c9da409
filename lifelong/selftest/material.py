"""What the self-test piece (lifelong/pieces/self_test.py) keeps and logs: a capability's stored training
material, a CPU snapshot of the weights, the scores and reasons as they go to log.jsonl."""

from __future__ import annotations

import torch

from lifelong.data.records import Domain
from lifelong.examples import Example, question_example

CANARY = "canary"


def stored_examples(domain: Domain, prompt) -> list:
    """A domain's training material as examples: documents, and split=train questions (mc: the right choice)."""
    examples = [Example(text=doc.text, source="document") for doc in domain.documents]
    return examples + [example for item in domain.train_items
                       if (example := question_example(item, prompt)) is not None]


def _why(regressed: dict) -> dict:
    """Per capability: its score before and after, and the reasons (drop and/or trend), for the log."""
    return {name: {"before": detail.get("before"), "after": detail.get("after"),
                   "reason": "; ".join(part["reason"] for key in ("drop", "trend") if (part := detail.get(key)))}
            for name, detail in regressed.items()}


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state dict; tensors that share storage (tied embeddings) are copied once."""
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if key not in copies:
            copies[key] = tensor.detach().to("cpu", copy=True)
        out[name] = copies[key]
    return out


def _rounded(scores: dict[str, dict]) -> dict[str, dict]:
    return {name: {"score": round(s["score"], 4), "items": s["items"]} for name, s in scores.items()}
