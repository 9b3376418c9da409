"""How much faster is a training step with the bottom half of the layers frozen?

One process, one model, one fixed batch. Two settings are timed in alternation (A, B, A, B, ...)
so that drift in the machine's load hits both alike: `full` (every parameter trainable) and
`frozen` (the bottom half of the transformer layers frozen by the `freezing` piece; with
--freeze-embeddings the embeddings too, which with tied embeddings also freezes the head). Each
repeat builds a fresh AdamW, takes one untimed warm-up step, then times --steps steps
(forward, backward, optimizer step). Prints the median seconds per step of each setting and,
last, their ratio.

    OMP_NUM_THREADS=2 python bench/freeze_speed.py                        # tiny random model
    OMP_NUM_THREADS=2 python bench/freeze_speed.py --model smollm2-135m --steps 3 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.config import FreezingConfig
from lifelong.models import load_model
from lifelong.pieces.freezing import Freezing
from lifelong.pieces.layerwise_lr import count_layers


def make_batch(vocab: int, batch_size: int, seq_len: int, device) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch_size, seq_len), generator=generator)
    return {"input_ids": ids.to(device), "labels": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}


def set_trainable(model, freezing: Freezing | None) -> list[torch.nn.Parameter]:
    for p in model.parameters():
        p.requires_grad_(True)
    params = list(model.parameters())
    if freezing is not None:
        [group] = freezing.param_groups(model, [{"params": params}])
        params = group["params"]
    return params


def time_steps(model, params, batch, steps: int) -> float:
    """Seconds per step, after one untimed warm-up step (which also allocates AdamW's state)."""
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step():
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    sync = torch.cuda.synchronize if batch["input_ids"].is_cuda else (lambda: None)
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model spec (default: tiny; e.g. smollm2-135m)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each setting, alternating")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--frozen-layers", type=int, default=None, help="layers frozen (default: half)")
    parser.add_argument("--freeze-embeddings", action="store_true", help="also freeze the embeddings")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    model, _ = load_model(args.model, dtype=args.dtype, device=args.device)
    model.train()
    n_layers = count_layers(model)
    frozen_layers = n_layers // 2 if args.frozen_layers is None else args.frozen_layers
    freezing = Freezing(FreezingConfig(bottom_n=frozen_layers, embeddings=args.freeze_embeddings))
    batch = make_batch(model.config.vocab_size, args.batch_size, args.seq_len, model.device)
    print(f"model {args.model}: {n_layers} layers, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"parameters; batch {args.batch_size}x{args.seq_len} tokens on {model.device}, "
          f"{torch.get_num_threads()} threads")

    times: dict[str, list[float]] = {"full": [], "frozen": []}
    for repeat in range(args.repeats):
        order = ("full", "frozen") if repeat % 2 == 0 else ("frozen", "full")
        for setting in order:
            params = set_trainable(model, freezing if setting == "frozen" else None)
            seconds = time_steps(model, params, batch, args.steps)
            times[setting].append(seconds)
            trainable = sum(p.numel() for p in params) / 1e6
            print(f"repeat {repeat + 1} {setting:>6}: {seconds:.4f} s/step ({trainable:.1f}M trainable)", flush=True)

    full, frozen = statistics.median(times["full"]), statistics.median(times["frozen"])
    print(f"median full:   {full:.4f} s/step (all {n_layers} layers trainable)")
    print(f"median frozen: {frozen:.4f} s/step (bottom {frozen_layers} layers frozen"
          f"{', embeddings too' if args.freeze_embeddings else ''})")
    print(f"ratio frozen/full: {frozen / full:.2f}")


if __name__ == "__main__":
    main()
