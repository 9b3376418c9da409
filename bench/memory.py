"""Memory of EWC's state against the size of the trainable parameters, full fine-tuning and LoRA.

For each setup, one process: load the model, attach the pieces (`full_finetune` + `ewc`, or
`lora` + `ewc`), give EWC a round's examples (the example stream's first domain) and run its
`after_round` (the Fisher estimate and the anchor), then one step's penalty forward and backward.
Reports, against the trainable parameters' bytes:

- the EWC state kept between rounds (running Fisher + anchor, counted tensor by tensor);
- the peak rise of the process's resident memory (RSS, sampled every millisecond) during the
  Fisher estimate and during the penalty's forward + backward: the transient cost.

The state is expected at 2x the trainable parameters (one Fisher and one anchor value per trainable
weight, fp32 on CPU), whatever the frozen parameters weigh. Prints the ratio of the state to the
trainable parameters last (the largest over the setups).

    OMP_NUM_THREADS=1 python bench/memory.py                 # smollm2-135m
    OMP_NUM_THREADS=1 python bench/memory.py --model tiny
"""

from __future__ import annotations

import argparse
import gc
import threading
import time

import psutil
import torch

from lifelong.config import load_config
from lifelong.data.stream import load_stream
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces

MB = 1024 * 1024


class PeakRss:
    """The peak rise of this process's RSS over the `with` block, sampled every millisecond."""

    def __enter__(self):
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.rise = self.peak - self.base


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure(model_spec: str, pieces: list[str], fisher_samples: int) -> dict:
    config = load_config(overrides={"model": model_spec, "condition": "a", "pieces": pieces,
                                    "ewc": {"fisher_samples": fisher_samples}, "evaluation": {"progress": False},
                                    "lora": {"after_domain": "continue"}})
    model, tokenizer = load_model(model_spec, seed=0)
    learner = Learner(model, tokenizer, build_pieces(pieces, config), config)
    ewc = learner.pieces[-1]
    domain = load_stream("example").domains[0]
    learner.examples(domain)  # EWC keeps the round's examples for its Fisher estimate
    trainable = [p for p in learner.model.parameters() if p.requires_grad]
    frozen = [p for p in learner.model.parameters() if not p.requires_grad]
    gc.collect()
    with PeakRss() as fisher_peak:
        ewc.after_round(domain)
    state = tensor_bytes([*ewc.fisher.values(), *ewc.anchor.values()])
    gc.collect()
    with PeakRss() as penalty_peak:
        penalty = ewc.penalty(learner.model)
        penalty.backward()
    for p in trainable:
        p.grad = None
    return {"setup": "+".join(pieces), "trainable": tensor_bytes(trainable), "frozen": tensor_bytes(frozen),
            "state": state, "fisher_peak": fisher_peak.rise, "penalty_peak": penalty_peak.rise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--fisher-samples", type=int, default=8, help="examples in the Fisher estimate")
    args = parser.parse_args()
    rows = []
    for pieces in (["lora", "ewc"], ["full_finetune", "ewc"]):
        row = measure(args.model, pieces, args.fisher_samples)
        rows.append(row)
        t = row["trainable"]
        print(f"{row['setup']:>18}: trainable {t / MB:8.1f} MB (frozen {row['frozen'] / MB:.1f} MB); "
              f"EWC state (Fisher + anchor) {row['state'] / MB:8.1f} MB = {row['state'] / t:.2f}x trainable; "
              f"peak RSS rise: Fisher estimate {row['fisher_peak'] / MB:.1f} MB = {row['fisher_peak'] / t:.2f}x, "
              f"penalty forward+backward {row['penalty_peak'] / MB:.1f} MB = {row['penalty_peak'] / t:.2f}x",
              flush=True)
    print(f"model {args.model}, {torch.get_num_threads()} threads; Fisher from {args.fisher_samples} examples")
    print(f"ratio EWC state / trainable parameters: {max(r['state'] / r['trainable'] for r in rows):.2f}")


if __name__ == "__main__":
    main()
