"""What does the `distill` piece add to a training step? Ratios against a step without it, same process.

A LoRA step (r16 on every linear layer, AdamW) on a batch of 5 random sequences of 60 tokens, with:

- `none`: the language-model loss alone (the baseline);
- `separate-N`: plus a second forward and backward on N distilled sequences of 30 tokens (what the
  piece does: its own pass at every step);
- `joint-4`: the 4 distilled sequences put in the training batch's own forward, padded to its length.

Each repeat runs every variant for a few steps in turn, so drift in a shared machine's load hits all
alike; prints the median seconds per step and the ratio to `none`.

    OMP_NUM_THREADS=1 python bench/distill_cost.py --repeats 4
    OMP_NUM_THREADS=1 python bench/distill_cost.py --model tiny      # quick
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model

from lifelong.models import load_model
from lifelong.options.lora import LoraPieceConfig


def make_step(model, optimizer, vocab: int):
    def step(distilled: int, joint: bool) -> None:
        ids = torch.randint(100, vocab, (5, 60))
        if joint and distilled:
            extra = torch.nn.functional.pad(torch.randint(100, vocab, (distilled, 30)), (0, 30))
            logits = model(input_ids=torch.cat([ids, extra])).logits.float()
            loss = logits[:5].logsumexp(-1).mean() + logits[5:].logsumexp(-1).mean()
        else:
            loss = model(input_ids=ids, labels=ids).loss
            if distilled:
                extra = torch.randint(100, vocab, (distilled, 30))
                loss = loss + model(input_ids=extra).logits.float().logsumexp(-1).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="steps per variant per repeat")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_model(args.model)[0]
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LoraPieceConfig().target_modules))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    step = make_step(model, optimizer, min(1000, model.config.vocab_size))
    variants = {"none": (0, False), "separate-4": (4, False), "separate-2": (2, False), "joint-4": (4, True)}
    step(0, False)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (distilled, joint) in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step(distilled, joint)
            seconds[name].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(seconds["none"])
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:11s} {median:7.3f} s/step  ratio to none {median / base:.2f}")


if __name__ == "__main__":
    main()
