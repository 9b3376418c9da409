"""One training loop for every condition, built on Accelerate (DESIGN §4).

It tokenises a round's examples once, builds the optimizer from the parameter groups the
pieces produced, adds the pieces' penalty terms to the loss, and calls their `before_step`
hook. It knows no technique by name.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from lifelong.config import TrainingConfig
from lifelong.errors import LifelongError
from lifelong.pieces.base import Piece

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """A training example: `prompt` is context the loss ignores, `text` is what is learned."""

    text: str
    prompt: str = ""
    source: str = "document"


@dataclass
class RoundStats:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    skipped_steps: int = 0
    losses: list[float] = field(default_factory=list)


class TrainingFault(LifelongError):
    """The round could not continue (repeated non-finite losses)."""


def tokenize_examples(tokenizer, examples: Sequence[Example], max_length: int,
                      keep_empty: bool = False) -> list[dict]:
    """Token ids and labels for each example; prompt tokens are masked out of the loss.

    An example with nothing left to learn after truncation is dropped, or kept as {} with keep_empty.
    """
    features = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for example in examples:
        prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"] if example.prompt else []
        text_ids = tokenizer(example.text, add_special_tokens=False)["input_ids"] + eos
        input_ids = (prompt_ids + text_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + text_ids)[:max_length]
        if any(label != IGNORE_INDEX for label in labels):
            features.append({"input_ids": input_ids, "labels": labels})
        elif keep_empty:
            features.append({})
    return features


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
    batch = {
        "input_ids": torch.full((len(features), width), pad_id, dtype=torch.long),
        "labels": torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long),
        "attention_mask": torch.zeros((len(features), width), dtype=torch.long),
    }
    for row, feature in enumerate(features):
        n = len(feature["input_ids"])
        batch["input_ids"][row, :n] = torch.tensor(feature["input_ids"])
        batch["labels"][row, :n] = torch.tensor(feature["labels"])
        batch["attention_mask"][row, :n] = 1
    return batch


def default_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    """One epoch: the examples in a seeded random order, cut into batches."""
    order = list(examples)
    rng.shuffle(order)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def plan_epochs(examples: Sequence[Example], pieces: Sequence[Piece], batch_size: int, epochs: int,
                seed: int) -> list[list[list[Example]]]:
    """Every epoch's batches, decided up front: the first piece that composes batches (replay) wins."""
    rng = random.Random(seed)
    plans = []
    for _ in range(epochs):
        plan = next((b for p in pieces if (b := p.batches(list(examples), batch_size, rng)) is not None), None)
        plans.append(plan if plan is not None else default_batches(examples, batch_size, rng))
    return plans


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class TrainingLoop:
    """Runs one round of training over a list of examples."""

    def __init__(self, config: TrainingConfig, accelerator: Accelerator, log: Callable[[dict], None],
                 progress: bool = True):
        self.config = config
        self.accelerator = accelerator
        self.log = log
        self.progress = progress

    def run(self, model, tokenizer, examples: Sequence[Example], param_groups: list[dict],
            pieces: Sequence[Piece], seed: int, domain: str,
            on_checkpoint: Callable[[int], None] | None = None) -> RoundStats:
        """Train `model` in place; `on_checkpoint(step)` is called at each curve point."""
        cfg = self.config
        seed_everything(seed)
        plans = plan_epochs(examples, pieces, cfg.batch_size, cfg.epochs, seed)
        batches = self._tokenized(tokenizer, plans)
        if not batches:
            raise TrainingFault(f"domain {domain!r}: no training examples")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        loader = DataLoader(batches, batch_size=None, shuffle=False, collate_fn=lambda b: collate(b, pad_id))
        optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = math.ceil(len(batches) / cfg.grad_accum)
        scheduler = get_scheduler("linear" if cfg.warmup_ratio else "constant_with_warmup", optimizer,
                                  num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
        model.train()
        prepared, optimizer, loader, scheduler = self.accelerator.prepare(model, optimizer, loader, scheduler)
        for piece in pieces:
            piece.before_training(total, math.ceil(total / cfg.epochs))
        stats = RoundStats()
        self._micro_batches = 0
        self._tokens = torch.zeros((), dtype=torch.long)
        started = time.perf_counter()
        curve_every = cfg.curve_every or math.ceil(total / cfg.epochs)
        bar = tqdm(total=total, desc=f"train {domain}", disable=not self.progress, leave=False)
        try:
            for batch in loader:
                if not self._micro_step(prepared, optimizer, scheduler, batch, pieces, stats):
                    continue
                bar.update(1)
                if stats.steps % cfg.log_every == 0 or stats.steps == total:
                    self._log_point(domain, stats, optimizer, started)
                if on_checkpoint and (stats.steps % curve_every == 0 or stats.steps == total):
                    on_checkpoint(stats.steps)
                    prepared.train()
        finally:
            bar.close()
            self.accelerator.free_memory()
        stats.seconds = time.perf_counter() - started
        stats.tokens = int(self._tokens)
        return stats

    def _tokenized(self, tokenizer, plans: list[list[list[Example]]]) -> list[list[dict]]:
        """Token features per planned batch; each distinct example is tokenised once per round."""
        distinct = list(dict.fromkeys(e for plan in plans for batch in plan for e in batch))
        features = dict(zip(distinct, tokenize_examples(tokenizer, distinct, self.config.max_length,
                                                        keep_empty=True), strict=True))
        batches = [[features[e] for e in batch if features[e]] for plan in plans for batch in plan]
        return [batch for batch in batches if batch]

    def _micro_step(self, model, optimizer, scheduler, batch, pieces, stats: RoundStats) -> bool:
        """One micro-batch; returns True when it completed an optimizer step."""
        accelerator = self.accelerator
        if self._micro_batches % self.config.grad_accum == 0:
            for piece in pieces:
                piece.before_step(stats.steps)
        self._micro_batches += 1
        with accelerator.accumulate(model):
            loss = self._loss(model, batch, pieces)
            if not torch.isfinite(loss.detach()):
                return self._skip_non_finite(optimizer, stats)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                def closure() -> torch.Tensor:
                    again = self._loss(model, batch, pieces)
                    accelerator.backward(again)
                    return again.detach()

                for piece in pieces:
                    piece.adjust_gradients(accelerator.unwrap_model(model), closure)
            if accelerator.sync_gradients and self.config.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
            self._tokens = self._tokens + batch["attention_mask"].sum()  # stays on device until logged
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if accelerator.sync_gradients:
            stats.steps += 1
            stats.losses.append(loss.detach())
            return True
        return False

    def _loss(self, model, batch, pieces) -> torch.Tensor:
        """The language-model loss plus every piece's penalty term."""
        loss = model(**batch).loss
        for piece in pieces:
            extra = piece.penalty(self.accelerator.unwrap_model(model))
            if extra is not None:
                loss = loss + extra
        return loss

    def _skip_non_finite(self, optimizer, stats: RoundStats) -> bool:
        optimizer.zero_grad(set_to_none=True)
        stats.skipped_steps += 1
        self.log({"event": "fault", "kind": "non_finite_loss", "step": stats.steps})
        if stats.skipped_steps >= 2:
            raise TrainingFault(f"training stopped: non-finite loss twice (at step {stats.steps})")
        return False

    def _log_point(self, domain: str, stats: RoundStats, optimizer, started: float) -> None:
        recent = stats.losses[-self.config.log_every:]
        loss = torch.stack(recent).float().mean().item()  # one host sync per log point, not per step
        elapsed = time.perf_counter() - started
        self.log({"event": "train", "domain": domain, "step": stats.steps, "loss": round(loss, 5),
                  "lr": optimizer.param_groups[0]["lr"], "tokens_per_s": round(int(self._tokens) / elapsed, 1)})
