"""Training and scoring throughput and peak memory on one GPU: the embedded model and a 1B-class config.

The prepared device check of docs/performance.md (issue 9, item 5), one short script. For each model:

- training: lifelong's `TrainingLoop` for one round on the example stream's first domain (its
  documents and practice questions, repeated to `--examples`), batch `--batch-size`, with LoRA
  (the `lora` piece's default config) and with full fine-tuning; tokens per second over the round
  (after an untimed warm-up round) and the peak memory the GPU allocator reached;
- scoring: `Evaluator.score_items` on all the example stream's eval items (qa and mc); items
  per second and peak memory.

Models: `smollm2-135m` (the embedded model, its real weights) and `llama-1b`, a random-initialised
Llama of the 1B class (hidden 2048, 16 layers, 32 heads, 8 key-value heads, MLP 8192, the embedded
tokenizer's 49,152-token vocabulary: 1.07B parameters) in bfloat16: no weights are downloaded, and
speed and memory do not depend on the weights' values. Writes the figures to
$OUT/gpu_throughput.json (or ./gpu_throughput.json) and prints one line per measurement.

    python bench/gpu_throughput.py                          # on the GPU machine, about 3 minutes
    python bench/gpu_throughput.py --device cpu --quick     # a smoke run of the script itself
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from peft import get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from lifelong.config import EvaluationConfig, LoraPieceConfig, TrainingConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.learner import plain_examples
from lifelong.models import load_model, load_tokenizer
from lifelong.pieces.lora import Lora
from lifelong.training import TrainingLoop

LLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": 8192}
QUICK = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 128}


def build(name: str, device: str, dtype: torch.dtype, quick: bool):
    if name == "smollm2-135m":
        model, tokenizer = load_model("tiny" if quick else name, device=device,
                                      dtype={torch.bfloat16: "bfloat16", torch.float32: "float32"}[dtype])
        return model, tokenizer
    tokenizer = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **(QUICK if quick else LLAMA_1B))
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype)
    return model.eval(), tokenizer


def peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return None


def train(model, tokenizer, examples, lora: bool, args) -> dict:
    pieces = []
    if lora:
        piece = Lora(LoraPieceConfig())
        model = get_peft_model(model, piece.peft_config())
        pieces = [piece]
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    cfg = TrainingConfig(epochs=1, batch_size=args.batch_size, lr=1e-4, max_length=args.max_length, log_every=50)
    loop = TrainingLoop(cfg, Accelerator(cpu=args.device == "cpu"), log=lambda event: None, progress=False)
    loop.run(model, tokenizer, examples[: args.batch_size * 2], [{"params": params}], pieces, seed=0,
             domain="warm-up")
    peak_reset(args.device)
    stats = loop.run(model, tokenizer, examples, [{"params": params}], pieces, seed=0, domain="bench")
    result = {"setup": "lora" if lora else "full", "trainable_M": round(sum(p.numel() for p in params) / 1e6, 2),
              "steps": stats.steps, "tokens": stats.tokens, "seconds": round(stats.seconds, 2),
              "tokens_per_s": round(stats.tokens / stats.seconds, 1), "peak_gib": peak_gib(args.device)}
    if lora:
        model.unload()  # the base model back, without adapters, for the next setup
    return result


def score(model, tokenizer, items, args) -> dict:
    evaluator = Evaluator(EvaluationConfig(progress=False, batch_size=args.eval_batch_size), tokenizer)
    evaluator.score_items(model, items[:8])  # warm-up
    peak_reset(args.device)
    started = time.perf_counter()
    scored = evaluator.score_items(model, items)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"setup": "scoring", "items": len(items), "seconds": round(seconds, 2),
            "items_per_s": round(len(items) / seconds, 1), "accuracy": round(scored.score, 3),
            "peak_gib": peak_gib(args.device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="smollm2-135m,llama-1b")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--examples", type=int, default=192, help="training examples per round")
    parser.add_argument("--quick", action="store_true", help="tiny shapes: check the script, not the machine")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.batch_size = 16, 4
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    stream = load_stream("example")
    items = [item for domain in [*stream.domains, stream.canary] if domain for item in domain.eval_items]
    base = plain_examples(stream.domains[0], EvaluationConfig().prompt, with_questions=True)
    examples = (base * (args.examples // len(base) + 1))[: args.examples]
    machine = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
               "torch": torch.__version__, "dtype": str(dtype), "threads": torch.get_num_threads()}
    print(json.dumps(machine), flush=True)
    figures = []
    for name in args.models.split(","):
        started = time.perf_counter()
        model, tokenizer = build(name, args.device, dtype, args.quick)
        size = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
        print(f"{name}: {size}M parameters, built in {time.perf_counter() - started:.1f} s", flush=True)
        measured = [score(model, tokenizer, items, args), train(model, tokenizer, examples, True, args),
                    train(model, tokenizer, examples, False, args)]
        for figure in measured:
            row = {"model": name, "parameters_M": size, **figure}
            figures.append(row)
            print(json.dumps(row), flush=True)
        model = None
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    out = Path(os.environ.get("OUT", ".")) / "gpu_throughput.json"
    out.write_text(json.dumps({"machine": machine, "args": vars(args), "figures": figures}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
