"""How much faster are a training step and a scoring pass under bfloat16 autocast (mixed_precision bf16)?

One process, two copies of the same model: `no` (float32) and `bf16` (the forward under bfloat16
autocast, lifelong/precision.py). They are timed in alternation (no, bf16, no, bf16, ...) so that
drift in the machine's load hits both alike. A training step is forward, backward and an AdamW step
on a batch of --batch x --length tokens; a scoring pass is a no-grad forward of 32 rows of 40 tokens
(the shape of the qa scorer's batches). Prints the median seconds of each and the ratios.

    OMP_NUM_THREADS=2 python bench/mixed_precision.py                          # embedded model
    OMP_NUM_THREADS=2 python bench/mixed_precision.py --model tiny --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.models import load_model
from lifelong.precision import active_precision


def timed(fn, steps: int) -> float:
    fn()  # warm-up (allocates the optimizer state, picks kernels)
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    models = {name: load_model(args.model, seed=0, mixed_precision=name)[0] for name in ("no", "bf16")}
    assert active_precision(models["bf16"]) == "bf16", "bf16 autocast was not applied"
    generator = torch.Generator().manual_seed(0)
    vocab = models["no"].config.vocab_size
    train_ids = torch.randint(0, vocab, (args.batch, args.length), generator=generator)
    score_ids = torch.randint(0, vocab, (32, 40), generator=generator)
    times: dict[str, dict[str, list[float]]] = {name: {"train": [], "score": []} for name in models}

    for _ in range(args.repeats):
        for name, model in models.items():
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)

            def train_step(model=model, optimizer=optimizer):
                model(input_ids=train_ids, labels=train_ids).loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            def score_pass(model=model):
                with torch.no_grad():
                    model(input_ids=score_ids)

            times[name]["train"].append(timed(train_step, args.steps))
            model.eval()
            times[name]["score"].append(timed(score_pass, args.steps))

    print(f"model {args.model}, threads {torch.get_num_threads()}, train batch {args.batch}x{args.length}, "
          f"score batch 32x40, {args.repeats} repeats x {args.steps} steps (medians)")
    for kind in ("train", "score"):
        no, bf16 = (statistics.median(times[name][kind]) for name in ("no", "bf16"))
        print(f"{kind:5s}  float32 {no:.3f} s   bf16 autocast {bf16:.3f} s   speed-up {no / bf16:.2f}x")


if __name__ == "__main__":
    main()
