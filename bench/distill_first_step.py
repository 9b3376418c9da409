"""What optimizer steps do to the distillation penalty near its minimum (docs/documents_only.md).

    OMP_NUM_THREADS=1 python bench/distill_first_step.py [--lr 3e-4] [--steps 4] [--lora]

The embedded model, its distillation targets on 32 general-core examples (alpha 10, batch 4), then,
each from the same starting weights, a few AdamW steps on:
- `penalty`: the penalty alone, starting where it is zero;
- `data`: the language-model loss of general documents (the penalty only watched);
- `data+penalty`: both in one loss, as `distill` does;
- `decoupled`: the documents' loss for Adam, then the penalty as its own plain gradient step of
  `--decoupled-lr` (tried as a fix, like AdamW's decoupled weight decay: at 1e-3 it did no better
  than `data+penalty`, at 4e-3 and above it diverged; so it is not a config option).
Full fine-tuning at lr 3e-4 took the penalty alone from 0 to about 14 in one step: Adam's first step
moves every weight by about lr, whatever the size of its gradient, so the noise of a penalty at its
minimum becomes a step of the full rate.
"""

from __future__ import annotations

import argparse
import copy

import torch

from lifelong.config import load_config
from lifelong.data import general
from lifelong.data.records import Document, Domain
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces

MODES = ("penalty", "data", "data+penalty", "decoupled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--lora", action="store_true", help="LoRA r16 instead of full fine-tuning")
    parser.add_argument("--decoupled-lr", type=float, default=1e-3)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    model, tokenizer = load_model()
    pieces = ["lora" if args.lora else "full_finetune", "distill"]
    config = load_config(overrides={"pieces": pieces, "evaluation": {"progress": False},
                                    "distill": {"alpha": 10, "examples": 32, "batch_size": 4}})
    learner = Learner(model, tokenizer, build_pieces(config.pieces, config), config)
    learner.core = general.load_general(progress=False).core
    domain = Domain("probe", documents=[Document("A probe document.")])
    for piece in learner.pieces:
        piece.before_round(domain)
    distill = learner.pieces[1]
    model = learner.model.train()
    start = copy.deepcopy(model.state_dict())
    texts = [doc.text for doc in learner.core.documents[:4 * (args.steps + 1)]]
    for mode in args.modes.split(","):
        model.load_state_dict(start)
        distill.rng.seed("bench")
        distill._cycle = []
        print(f"{mode}: penalty after each step", " ".join(f"{v:.3f}" for v in _run(mode, model, distill, tokenizer,
                                                                                      texts, args)))


def _run(mode: str, model, distill, tokenizer, texts: list[str], args) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    seen = []
    for step in range(args.steps + 1):
        with torch.no_grad():
            seen.append(distill.penalty(model).item())
        if step == args.steps:
            break
        data = _data_loss(model, tokenizer, texts[4 * step:4 * step + 4])
        loss = {"penalty": distill.penalty(model), "data": data, "data+penalty": data + distill.penalty(model),
                "decoupled": data}[mode]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if mode == "decoupled":
            _plain_step(model, distill.penalty(model), args.decoupled_lr)
    return seen


def _plain_step(model, penalty: torch.Tensor, lr: float) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(penalty, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.add_(g, alpha=-lr)


def _data_loss(model, tokenizer, texts: list[str]) -> torch.Tensor:
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=256)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return model(**batch, labels=labels).loss


if __name__ == "__main__":
    main()
