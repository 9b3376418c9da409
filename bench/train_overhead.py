"""What does lifelong's training loop cost over a plain PyTorch + PEFT loop doing the same work?

One process, one model, one LoRA adapter (PEFT, the `lora` piece's config), the same batches
(lifelong's seeded plan of the example stream's first domain: its documents and practice
questions), AdamW with the same learning rate, gradient clipping at 1.0 in both. Each repeat resets
the adapter to the same initial weights and runs one round each way, alternating which goes first,
so drift in the machine's load hits both alike:

- `plain`: tokenise the examples, then for each batch: collate, forward, backward,
  clip_grad_norm_, optimizer.step, zero_grad (no logging, no checks: the floor);
- `lifelong`: `TrainingLoop.run` with the `lora` piece, as `lifelong run` trains (Accelerate,
  fault guard with the last-good snapshot, loss logged every 5 steps, token count);
- `lifelong-nosnap` (with --no-snapshot too): the same with `training.fault_snapshot: false`.

Both sides' per-step losses are compared (they must agree: the same computation). Prints the
median seconds per step of each and, last, the ratio lifelong/plain (target: at most 1.05): the
median over repeats of the ratio of the two rounds run back to back in that repeat, which cancels
slow drift in a shared machine's load better than a ratio of medians (printed too).

    OMP_NUM_THREADS=1 python bench/train_overhead.py --model tiny --repeats 3    # quick
    OMP_NUM_THREADS=1 python bench/train_overhead.py --repeats 5                 # smollm2-135m
    OMP_NUM_THREADS=1 python bench/train_overhead.py --full --no-snapshot        # full fine-tuning
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from accelerate import Accelerator
from peft import get_peft_model

from lifelong.config import EvaluationConfig, LoraPieceConfig, TrainingConfig
from lifelong.data.stream import load_stream
from lifelong.learner import plain_examples
from lifelong.models import load_model
from lifelong.pieces.lora import Lora
from lifelong.training import TrainingLoop, collate, plan_epochs, tokenize_examples

SEED = 1


def plain_round(model, tokenizer, examples, params, cfg: TrainingConfig) -> tuple[float, list[float]]:
    """The floor: a plain loop over the same batches; returns (seconds, per-step losses)."""
    started = time.perf_counter()
    plans = plan_epochs(examples, [], cfg.batch_size, cfg.epochs, SEED)
    distinct = list(dict.fromkeys(e for plan in plans for batch in plan for e in batch))
    features = dict(zip(distinct, tokenize_examples(tokenizer, distinct, cfg.max_length, keep_empty=True),
                        strict=True))
    batches = [[features[e] for e in batch if features[e]] for plan in plans for batch in plan]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    optimizer = torch.optim.AdamW([{"params": params, "lr": cfg.lr}], lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses = []
    for batch in batches:
        loss = model(**collate(batch, pad_id)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    seconds = time.perf_counter() - started
    return seconds, [float(x) for x in losses]


def lifelong_round(model, tokenizer, examples, params, cfg: TrainingConfig, pieces, accelerator):
    loop = TrainingLoop(cfg, accelerator, log=lambda event: None, progress=False)
    started = time.perf_counter()
    stats = loop.run(model, tokenizer, examples, [{"params": params, "lr": cfg.lr}], pieces, seed=SEED,
                     domain="bench")
    seconds = time.perf_counter() - started
    return seconds, [float(x) for x in stats.losses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model spec (default: the embedded smollm2-135m)")
    parser.add_argument("--stream", default="example")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of each setting, alternating")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--examples", type=int, default=None, help="use the first N examples (shorter rounds, "
                        "finer interleaving)")
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--no-snapshot", action="store_true", help="also time lifelong with fault_snapshot off")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model, seed=0)
    pieces = []
    if not args.full:
        lora = Lora(LoraPieceConfig())
        model = get_peft_model(model, lora.peft_config())
        pieces = [lora]
    params = [p for p in model.parameters() if p.requires_grad]
    initial = [p.detach().clone() for p in params]
    stream = load_stream(args.stream)
    domain = stream.domains[0]
    examples = plain_examples(domain, EvaluationConfig().prompt, with_questions=True)[:args.examples]
    cfg = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, lr=3e-4)
    accelerator = Accelerator(cpu=model.device.type == "cpu")
    settings = {"plain": lambda: plain_round(model, tokenizer, examples, params, cfg),
                "lifelong": lambda: lifelong_round(model, tokenizer, examples, params, cfg, pieces, accelerator)}
    if args.no_snapshot:
        nosnap = cfg.model_copy(update={"fault_snapshot": False})
        settings["lifelong-nosnap"] = lambda: lifelong_round(model, tokenizer, examples, params, nosnap, pieces,
                                                             accelerator)
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in model.parameters())
    print(f"model {args.model} ({'full fine-tuning' if args.full else 'LoRA r=16'}): {trainable / 1e6:.2f}M of "
          f"{total / 1e6:.1f}M parameters trainable; {len(examples)} examples of {domain.name}, batch "
          f"{args.batch_size}, {args.epochs} epoch(s); {torch.get_num_threads()} threads on {model.device}", flush=True)

    def reset():
        with torch.no_grad():
            for p, p0 in zip(params, initial, strict=True):
                p.copy_(p0)

    reset()
    settings["plain"]()  # warm-up (allocator, first-call costs), untimed
    times: dict[str, list[float]] = {name: [] for name in settings}
    reference = None
    steps = 0
    for repeat in range(args.repeats):
        names = list(settings) if repeat % 2 == 0 else list(reversed(settings))
        for name in names:
            reset()
            seconds, losses = settings[name]()
            steps = len(losses)
            times[name].append(seconds / steps)
            if reference is None:
                reference = losses
            assert len(losses) == len(reference) and all(
                abs(a - b) <= 1e-3 * max(1.0, abs(b)) for a, b in zip(losses, reference, strict=True)), \
                f"{name}: losses {losses} differ from {reference}: not the same computation"
            print(f"repeat {repeat + 1} {name:>15}: {seconds / steps:.4f} s/step ({steps} steps)", flush=True)

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"median {name:>15}: {value:.4f} s/step (min {min(times[name]):.4f})")
    for name in [n for n in settings if n != "plain"]:
        paired = statistics.median(a / b for a, b in zip(times[name], times["plain"], strict=True))
        print(f"{name}/plain: ratio of medians {medians[name] / medians['plain']:.3f}, of minima "
              f"{min(times[name]) / min(times['plain']):.3f}, median paired ratio {paired:.3f}")
    paired = statistics.median(a / b for a, b in zip(times["lifelong"], times["plain"], strict=True))
    print(f"ratio lifelong/plain: {paired:.3f}")


if __name__ == "__main__":
    main()
