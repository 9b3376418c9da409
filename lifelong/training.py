"""One training loop for every condition, built on Accelerate (DESIGN §4).

It tokenises a round's examples once, builds the optimizer from the parameter groups the
pieces produced, adds the pieces' penalty terms to the loss, and calls their `before_step`
hook. It knows no technique by name. Numerical faults (lifelong/faults.py) return it to the last
good step; mid-domain checkpoints save its state (`LoopState`) so a killed round continues
exactly where it stopped.
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
from lifelong.faults import LastGood, lower_lr, norm_fault
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
    stopped_early: bool = False  # a piece's after_step ended the round
    losses: list[float] = field(default_factory=list)


class TrainingFault(LifelongError):
    """The round could not continue (a second numerical fault, or no examples)."""


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


def rng_state() -> dict:
    """The global random states a training step may draw from (dropout, sampling)."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class LoopState:
    """Where a round stopped, enough to continue it exactly: saved with every mid-domain checkpoint.

    The batches are planned from the seed, so continuing at `step` skips the first
    step * grad_accum batches; the weights are saved with the checkpoint, the rest is here.
    """

    step: int
    optimizer: dict
    scheduler: dict
    rng: dict
    faults: int = 0
    tokens: int = 0


@dataclass
class Checkpointing:
    """Mid-domain checkpoints: `save(state)` every `every` optimizer steps; `resume` continues a round."""

    every: int = 0
    save: Callable[[LoopState], None] | None = None
    resume: LoopState | None = None

    def due(self, step: int, total: int) -> bool:
        return bool(self.save and self.every and step % self.every == 0 and step < total)


@dataclass
class _Round:
    """What one round's steps share: prepared objects, the raw optimizer and schedule, the counters."""

    domain: str
    total: int
    pieces: Sequence[Piece]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    scheduler: object
    raw_optimizer: torch.optim.Optimizer
    raw_scheduler: object
    guard: LastGood
    stats: RoundStats


@dataclass
class _Points:
    """When the loop logs a training point and scores the domain (the curve), and the last step it did."""

    log_every: int
    curve_every: int
    on_curve: Callable[[int], None] | None
    started: float
    logged: int = -1
    curved: int = -1


FAULTS = {
    "non_finite_loss": "the loss was {value}",
    "grad_norm": "the gradient norm was {value} (limit: training.max_grad_norm_fault)",
    "non_finite_weights": "an update left weights that are not finite",
}


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
            on_checkpoint: Callable[[int], None] | None = None,
            checkpoints: Checkpointing | None = None) -> RoundStats:
        """Train `model` in place; `on_checkpoint(step)` is called at each curve point.

        `checkpoints` saves the loop's state every few steps and, given a saved state, continues
        the round from it (the caller has loaded the weights saved with it).
        """
        cfg = self.config
        checkpoints = checkpoints or Checkpointing()
        seed_everything(seed)
        batches = self._tokenized(tokenizer, plan_epochs(examples, pieces, cfg.batch_size, cfg.epochs, seed))
        if not batches:
            raise TrainingFault(f"domain {domain!r}: no training examples")
        r = self._start(model, tokenizer, batches, param_groups, pieces, domain, checkpoints.resume)
        curve_every = cfg.curve_every or math.ceil(r.total / cfg.epochs)
        started = time.perf_counter()
        bar = tqdm(total=r.total, initial=r.stats.steps, desc=f"train {domain}", disable=not self.progress,
                   leave=False)
        points = _Points(log_every=cfg.log_every, curve_every=curve_every, on_curve=on_checkpoint, started=started)
        try:
            for batch in r.loader:
                if not self._micro_step(r, batch):
                    continue
                bar.update(1)
                stop = any([piece.after_step(r.stats.steps) for piece in r.pieces])  # every piece sees the step
                self._points(r, points, final=r.stats.steps == r.total or stop)
                if checkpoints.due(r.stats.steps, r.total):
                    checkpoints.save(self._loop_state(r))
                if stop:
                    r.stats.stopped_early = True
                    self.log({"event": "early_stop", "domain": domain, "step": r.stats.steps})
                    break
            self._points(r, points, final=True)  # a dropped (faulty) step ends the round one step short
        finally:
            bar.close()
            self.accelerator.free_memory()
        r.stats.seconds = time.perf_counter() - started
        r.stats.tokens = int(self._tokens)
        return r.stats

    def _start(self, model, tokenizer, batches: list[list[dict]], param_groups: list[dict],
               pieces: Sequence[Piece], domain: str, resume: LoopState | None) -> _Round:
        """Optimizer, schedule and loader for the round, continued from `resume` when given."""
        cfg = self.config
        optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = math.ceil(len(batches) / cfg.grad_accum)
        scheduler = get_scheduler("linear" if cfg.warmup_ratio else "constant_with_warmup", optimizer,
                                  num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
        start = resume.step if resume else 0
        if resume:
            optimizer.load_state_dict(resume.optimizer)
            scheduler.load_state_dict(resume.scheduler)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # Its own generator: a loader draws a seed when it starts, which must not move the global random
        # state that a continued round restores.
        loader = DataLoader(batches[start * cfg.grad_accum:], batch_size=None, shuffle=False,
                            collate_fn=lambda b: collate(b, pad_id), generator=torch.Generator())
        model.train()
        prepared = self.accelerator.prepare(model, optimizer, loader, scheduler)
        for piece in pieces:
            piece.before_training(total, math.ceil(total / cfg.epochs))
        self._micro_batches = 0
        self._tokens = torch.tensor(resume.tokens if resume else 0, dtype=torch.long)
        stats = RoundStats(steps=start, skipped_steps=resume.faults if resume else 0)
        if resume:
            set_rng_state(resume.rng)
        return _Round(domain, total, pieces, *prepared, raw_optimizer=optimizer, raw_scheduler=scheduler,
                      guard=LastGood(optimizer, enabled=cfg.fault_snapshot), stats=stats)

    def _points(self, r: _Round, points: _Points, final: bool) -> None:
        """The log point and the in-domain curve point of the step just taken, when due."""
        steps = r.stats.steps
        if points.logged != steps and r.stats.losses and (steps % points.log_every == 0 or final):
            self._log_point(r.domain, r.stats, r.optimizer, points.started)
            points.logged = steps
        if points.on_curve and points.curved != steps and steps and (steps % points.curve_every == 0 or final):
            points.on_curve(steps)
            r.model.train()
            points.curved = steps

    def _loop_state(self, r: _Round) -> LoopState:
        return LoopState(step=r.stats.steps, optimizer=r.raw_optimizer.state_dict(),
                         scheduler=r.raw_scheduler.state_dict(), rng=rng_state(), faults=r.stats.skipped_steps,
                         tokens=int(self._tokens))

    def _tokenized(self, tokenizer, plans: list[list[list[Example]]]) -> list[list[dict]]:
        """Token features per planned batch; each distinct example is tokenised once per round."""
        distinct = list(dict.fromkeys(e for plan in plans for batch in plan for e in batch))
        features = dict(zip(distinct, tokenize_examples(tokenizer, distinct, self.config.max_length,
                                                        keep_empty=True), strict=True))
        batches = [[features[e] for e in batch if features[e]] for plan in plans for batch in plan]
        return [batch for batch in batches if batch]

    def _micro_step(self, r: _Round, batch) -> bool:
        """One micro-batch; returns True when it completed a good optimizer step."""
        accelerator = self.accelerator
        if self._micro_batches % self.config.grad_accum == 0:
            for piece in r.pieces:
                piece.before_step(r.stats.steps)
        self._micro_batches += 1
        with accelerator.accumulate(r.model):
            loss = self._loss(r.model, batch, r.pieces)
            if not torch.isfinite(loss.detach()):
                return self._fault(r, "non_finite_loss", loss.item())
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                norm = self._gradients_ready(r, batch)
                if norm_fault(norm, self.config.max_grad_norm_fault):
                    return self._fault(r, "grad_norm", norm)
            self._tokens = self._tokens + batch["attention_mask"].sum()  # stays on device until logged
            r.optimizer.step()
            if accelerator.sync_gradients and r.guard.enabled and not r.guard.weights_finite():
                return self._fault(r, "non_finite_weights")
            r.scheduler.step()
            r.optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            return False
        r.stats.steps += 1
        r.stats.losses.append(loss.detach())
        r.guard.save()
        return True

    def _gradients_ready(self, r: _Round, batch) -> float | None:
        """The pieces adjust the step's gradients (SAM), then they are clipped; returns their norm."""
        accelerator = self.accelerator

        def closure() -> torch.Tensor:
            again = self._loss(r.model, batch, r.pieces)
            accelerator.backward(again)
            return again.detach()

        for piece in r.pieces:
            piece.adjust_gradients(accelerator.unwrap_model(r.model), closure)
        norm = accelerator.clip_grad_norm_(r.model.parameters(), self.config.max_grad_norm or math.inf)
        return None if norm is None else float(norm)

    def _loss(self, model, batch, pieces) -> torch.Tensor:
        """The language-model loss plus every piece's penalty term."""
        loss = model(**batch).loss
        for piece in pieces:
            extra = piece.penalty(self.accelerator.unwrap_model(model))
            if extra is not None:
                loss = loss + extra
        return loss

    def _fault(self, r: _Round, kind: str, value: float | None = None) -> bool:
        """Drop the step, return to the last good state and lower the LR; a second fault ends the round."""
        r.raw_optimizer.zero_grad(set_to_none=True)
        restored = r.guard.restore()
        r.stats.skipped_steps += 1
        event = {"event": "fault", "domain": r.domain, "kind": kind, "step": r.stats.steps, "restored": restored,
                 "value": value if value is None or math.isfinite(value) else str(value)}
        if r.stats.skipped_steps >= 2 or (kind == "non_finite_weights" and not restored):
            self.log({**event, "action": "stop"})
            what = FAULTS[kind].format(value=value)
            raise TrainingFault(f"domain {r.domain!r}: training stopped at step {r.stats.steps}: {what}, the round's "
                                f"second numerical fault; the last checkpoint is intact; lower training.lr (in a new "
                                f"--out folder) or check the data and the pieces' settings")
        lower_lr(r.raw_optimizer, r.raw_scheduler, self.config.fault_lr_factor)
        self.log({**event, "action": "restored last good step, lr lowered",
                  "lr": r.raw_optimizer.param_groups[0]["lr"]})
        return False

    def _log_point(self, domain: str, stats: RoundStats, optimizer, started: float) -> None:
        recent = stats.losses[-self.config.log_every:]
        loss = torch.stack(recent).float().mean().item()  # one host sync per log point, not per step
        elapsed = time.perf_counter() - started
        self.log({"event": "train", "domain": domain, "step": stats.steps, "loss": round(loss, 5),
                  "lr": optimizer.param_groups[0]["lr"], "tokens_per_s": round(int(self._tokens) / elapsed, 1)})
