"""What one optimizer step does to the distillation penalty at its minimum (docs/documents_only.md).

    OMP_NUM_THREADS=1 python bench/distill_first_step.py [--lr 3e-4] [--steps 4] [--lora]

The embedded model, its distillation targets on 32 general-core examples, then a few AdamW steps on
the penalty alone (alpha 10, batch 4), starting where it is zero. Full fine-tuning at lr 3e-4 took it
from 0 to about 14 in one step: Adam's first step moves every weight by about lr, whatever the size
of its gradient, so the noise of a penalty at its minimum becomes a step of the full rate.
"""

from __future__ import annotations

import argparse

import torch

from lifelong.config import load_config
from lifelong.data import general
from lifelong.data.records import Document, Domain
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--lora", action="store_true", help="LoRA r16 instead of full fine-tuning")
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
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    for step in range(args.steps + 1):
        loss = distill.penalty(model)
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        print(f"step {step}: penalty {loss.item():.4f}  gradient norm {norm.item():.3f}")
        optimizer.step()


if __name__ == "__main__":
    main()
