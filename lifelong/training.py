"""One training loop for every condition, built on Accelerate (DESIGN §4).

It tokenises a round's examples once, builds the optimizer from the parameter groups the
pieces produced, adds the pieces' penalty terms to the loss, and calls their `before_step`
hook. It knows no technique by name. Numerical faults (lifelong/faults.py) return it to the last
good step; mid-domain checkpoints save its state (`LoopState`) so a killed round continues
exactly where it stopped.

The examples and their batches are lifelong/examples.py; a round's stats, batch plans, random state
and checkpoint state are lifelong/rounds.py (both importable from here as before).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.data_loader import prepare_data_loader
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from lifelong.config import TrainingConfig
from lifelong.examples import (  # noqa: F401  (imported from here too)
    IGNORE_INDEX,
    LOSS_SCALE,
    Example,
    collate,
    collate_shard,
    fit_to_length,
    shard_batch,
    tokenize_examples,
)
from lifelong.faults import LastGood, lower_lr, norm_fault
from lifelong.pieces.base import Piece
from lifelong.rounds import (  # noqa: F401  (imported from here too)
    LENGTH_WINDOW,
    Checkpointing,
    LoopState,
    RoundStats,
    TrainingFault,
    default_batches,
    epoch_order,
    rng_state,
    seed_everything,
    set_rng_state,
)


def plan_epochs(examples: Sequence[Example], pieces: Sequence[Piece], batch_size: int, epochs: int,
                seed: int, group_by_length: bool = False) -> list[list[list[Example]]]:
    """Every epoch's batches, decided up front: the first piece that composes batches (replay) wins."""
    rng = random.Random(seed)
    plans = []
    for _ in range(epochs):
        plan = next((b for p in pieces if (b := p.batches(list(examples), batch_size, rng)) is not None), None)
        plans.append(plan if plan is not None else default_batches(examples, batch_size, rng, group_by_length))
    return plans


def _release(accelerator: Accelerator) -> None:
    """Drop the accelerator's references to the round's prepared objects.

    `Accelerator.free_memory` does this and then runs `gc.collect()`, which took about a second per
    round in a process holding a model (bench/train_overhead.py); nothing here needs the collection.
    """
    if getattr(accelerator, "deepspeed_engine_wrapped", None) is not None:
        accelerator.free_memory()
        return
    accelerator._schedulers, accelerator._optimizers, accelerator._models, accelerator._dataloaders = [], [], [], []
    accelerator.step = 0


@dataclass
class _Round:
    """What one round's steps share: prepared objects, the raw optimizer and schedule, the counters."""

    domain: str
    total: int
    pieces: Sequence[Piece]
    model: torch.nn.Module  # as prepared by Accelerate (wrapped for DDP/FSDP): the forward pass runs through it
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    scheduler: object
    raw_optimizer: torch.optim.Optimizer
    raw_scheduler: object
    guard: LastGood
    stats: RoundStats
    unwrapped: torch.nn.Module | None = None  # the model itself, for the pieces' hooks (unwrapped once per round)


@dataclass
class _Points:
    """When the loop logs a training point and scores the domain (the curve), and the last step it did."""

    log_every: int
    curve_every: int
    on_curve: Callable[[int], None] | None
    started: float
    final_curve: bool = True
    logged: int = -1
    curved: int = -1


FAULTS = {
    "non_finite_loss": "the loss was {value}",
    "grad_norm": "the gradient norm was {value} (limit: training.max_grad_norm_fault)",
    "non_finite_weights": "an update left weights that are not finite",
}


def schedule_name(cfg: TrainingConfig) -> str:
    """transformers' scheduler for `lr_scheduler_type` (auto: linear decay after a warmup, else constant)."""
    kind = cfg.lr_scheduler_type
    if kind == "auto":
        kind = "linear" if cfg.warmup_ratio else "constant"
    return "constant_with_warmup" if kind == "constant" else kind


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
            checkpoints: Checkpointing | None = None, steps: int | None = None,
            final_point: bool = True) -> RoundStats:
        """Train `model` in place; `on_checkpoint(step)` is called at each curve point, the round's
        last step included unless `final_point` is False (a caller that scores the finished round anyway).

        `checkpoints` saves the loop's state every few steps and, given a saved state, continues
        the round from it (the caller has loaded the weights saved with it). `steps` fixes the
        number of optimizer steps instead of `epochs` (more epochs are planned, the last one cut).
        """
        cfg = self.config
        checkpoints = checkpoints or Checkpointing()
        seed_everything(seed)
        examples = fit_to_length(tokenizer, examples, cfg.max_length)
        epochs = cfg.epochs
        if steps is not None:
            per_epoch = max(1, len(plan_epochs(examples, pieces, cfg.batch_size, 1, seed, cfg.group_by_length)[0]))
            epochs = max(1, math.ceil(steps * cfg.grad_accum / per_epoch))
        batches = self._tokenized(tokenizer, plan_epochs(examples, pieces, cfg.batch_size, epochs, seed,
                                                              cfg.group_by_length))
        if steps is not None:
            batches = batches[:steps * cfg.grad_accum]
        if not batches:
            raise TrainingFault(f"domain {domain!r}: no training examples")
        r = self._start(model, tokenizer, batches, param_groups, pieces, domain, checkpoints.resume)
        curve_every = cfg.curve_every or math.ceil(r.total / cfg.epochs)
        started = time.perf_counter()
        bar = tqdm(total=r.total, initial=r.stats.steps, desc=f"train {domain}", disable=not self.progress,
                   leave=False)
        points = _Points(log_every=cfg.log_every, curve_every=curve_every, on_curve=on_checkpoint, started=started,
                         final_curve=final_point)
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
            _release(self.accelerator)
        r.stats.seconds = time.perf_counter() - started
        r.stats.tokens = int(self._all_processes(self._tokens))
        return r.stats

    def _start(self, model, tokenizer, batches: list[list[dict]], param_groups: list[dict],
               pieces: Sequence[Piece], domain: str, resume: LoopState | None) -> _Round:
        """Optimizer, schedule and loader for the round, continued from `resume` when given."""
        cfg = self.config
        optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = math.ceil(len(batches) / cfg.grad_accum)
        scheduler = get_scheduler(schedule_name(cfg), optimizer, num_warmup_steps=int(cfg.warmup_ratio * total),
                                  num_training_steps=total)
        start = resume.step if resume else 0
        if resume:
            optimizer.load_state_dict(resume.optimizer)
            scheduler.load_state_dict(resume.scheduler)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        accelerator = self.accelerator
        shards = [shard_batch(batch, accelerator.process_index, accelerator.num_processes)
                  for batch in batches[start * cfg.grad_accum:]]
        # Its own generator: a loader draws a seed when it starts, which must not move the global random
        # state that a continued round restores. Each process already holds its own part of every batch,
        # so the loader is prepared as for one process (Accelerate would otherwise deal whole batches out).
        loader = DataLoader(shards, batch_size=None, shuffle=False,
                            collate_fn=lambda shard: collate_shard(shard, pad_id), generator=torch.Generator())
        loader = prepare_data_loader(loader, accelerator.device, num_processes=1, process_index=0,
                                     put_on_device=accelerator.device_placement, rng_types=[],
                                     non_blocking=accelerator.non_blocking)
        model.train()
        model, optimizer_wrapped = accelerator.prepare(model, optimizer)
        for piece in pieces:
            piece.before_training(total, math.ceil(total / cfg.epochs))
        self._micro_batches = 0
        # This process's tokens; the count in a saved state is every process's, kept by the main one.
        tokens = resume.tokens if resume and accelerator.is_main_process else 0
        self._tokens = torch.tensor(tokens, dtype=torch.long)
        self._loss_faults = self._step_loss = None  # the current step's non-finite losses, on device
        stats = RoundStats(steps=start, skipped_steps=resume.faults if resume else 0)
        if resume:
            set_rng_state(resume.rng)
        # The schedule steps once per optimizer step, whatever the number of processes: every process
        # takes every step (on its part of the batch), so Accelerate's scheduler wrapper is not used.
        return _Round(domain, total, pieces, model, optimizer_wrapped, loader, scheduler, raw_optimizer=optimizer,
                      raw_scheduler=scheduler, guard=LastGood(optimizer, enabled=cfg.fault_snapshot), stats=stats,
                      unwrapped=accelerator.unwrap_model(model))

    def _points(self, r: _Round, points: _Points, final: bool) -> None:
        """The log point and the in-domain curve point of the step just taken, when due."""
        steps = r.stats.steps
        if points.logged != steps and r.stats.losses and (steps % points.log_every == 0 or final):
            self._log_point(r.domain, r.stats, r.optimizer, points.started)
            points.logged = steps
        due = points.final_curve if final else steps % points.curve_every == 0
        if points.on_curve and points.curved != steps and steps and due:
            points.on_curve(steps)
            r.model.train()
            points.curved = steps

    def _loop_state(self, r: _Round) -> LoopState:
        return LoopState(step=r.stats.steps, optimizer=r.raw_optimizer.state_dict(),
                         scheduler=r.raw_scheduler.state_dict(), rng=rng_state(), faults=r.stats.skipped_steps,
                         tokens=int(self._all_processes(self._tokens)))

    def _tokenized(self, tokenizer, plans: list[list[list[Example]]]) -> list[list[dict]]:
        """Token features per planned batch; each distinct example is tokenised once per round."""
        distinct = list(dict.fromkeys(e for plan in plans for batch in plan for e in batch))
        features = dict(zip(distinct, tokenize_examples(tokenizer, distinct, self.config.max_length,
                                                        keep_empty=True), strict=True))
        batches = [[features[e] for e in batch if features[e]] for plan in plans for batch in plan]
        return [batch for batch in batches if batch]

    def _micro_step(self, r: _Round, batch) -> bool:
        """One micro-batch; returns True when it completed a good optimizer step.

        The hot path has one host sync per optimizer step (two with the last-good snapshot): the
        fault checks of the loss and the gradient norm are read together once the step's gradients
        are ready, because the step must be dropped before the update; the snapshot's check that the
        update left finite weights is the second. Nothing else waits for the device: losses and the
        token count stay on it until a log point.
        """
        accelerator = self.accelerator
        if self._micro_batches % self.config.grad_accum == 0:
            for piece in r.pieces:
                piece.before_step(r.stats.steps)
        self._micro_batches += 1
        with accelerator.accumulate(r.model):
            loss = self._loss(r, batch)
            self._note_loss(loss.detach())
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                loss_faults, loss_value, norm = self._gradients_ready(r, batch)
                self._loss_faults = self._step_loss = None
                if loss_faults:
                    return self._fault(r, "non_finite_loss", loss_value)
                if norm_fault(norm, self.config.max_grad_norm_fault):
                    return self._fault(r, "grad_norm", norm)
            self._tokens = self._tokens + batch["attention_mask"].sum()  # stays on device until logged
            r.optimizer.step()
            if accelerator.sync_gradients and r.guard.enabled and not self._weights_finite(r):
                return self._fault(r, "non_finite_weights")
            if accelerator.sync_gradients:
                r.scheduler.step()
            r.optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            return False
        r.stats.steps += 1
        r.stats.losses.append(loss.detach())
        r.guard.save()
        return True

    def _note_loss(self, loss: torch.Tensor) -> None:
        """Count a non-finite micro-batch loss and keep the first one's value, on device (no sync)."""
        bad = ~torch.isfinite(loss)
        if self._loss_faults is None:
            self._loss_faults, self._step_loss = bad.to(torch.int32), loss
        else:
            self._loss_faults = self._loss_faults + bad.to(torch.int32)
            self._step_loss = torch.where(torch.isfinite(self._step_loss), loss, self._step_loss)

    def _gradients_ready(self, r: _Round, batch) -> tuple[int, float, float | None]:
        """The pieces adjust the step's gradients (SAM), then they are clipped.

        Returns, read from the device in one sync: how many of the step's micro-batch losses were not
        finite, the first non-finite one (else the last), and the gradient norm (None when there is none).
        """
        accelerator = self.accelerator

        def closure() -> torch.Tensor:
            again = self._loss(r, batch)
            accelerator.backward(again)
            return again.detach()

        for piece in r.pieces:
            piece.adjust_gradients(r.unwrapped, closure)
        norm = accelerator.clip_grad_norm_(r.model.parameters(), self.config.max_grad_norm or math.inf)
        values = [self._loss_faults.float(), self._step_loss.float()]
        # Every process decides alike: a non-finite loss on one of them is a fault on all (the norm is
        # already the same everywhere: the gradients were averaged).
        values = self._all_processes(torch.stack(values))
        if norm is not None:
            values = torch.cat([values, torch.as_tensor(norm).to(values.device, torch.float32).reshape(1)])
        read = values.tolist()  # the step's one host sync
        return int(read[0]), read[1], (read[2] if norm is not None else None)

    def _weights_finite(self, r: _Round) -> bool:
        """The snapshot's check after the update, agreed by every process (each may hold a shard)."""
        if self.accelerator.num_processes == 1:
            return r.guard.weights_finite()
        bad = torch.tensor([0.0 if r.guard.weights_finite() else 1.0], device=self.accelerator.device)
        return not bool(self._all_processes(bad).item())

    def _all_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over processes (a collective every process reaches at the same point), or the tensor."""
        if self.accelerator.num_processes == 1:
            return tensor
        return self.accelerator.reduce(tensor.to(self.accelerator.device).clone(), reduction="sum")

    def _loss(self, r: _Round, batch) -> torch.Tensor:
        """The language-model loss plus every piece's penalty term.

        With several processes each computes its part of the batch, weighted (`loss_scale`) so that
        the gradients' average over processes is the whole batch's (see `shard_batch`).
        """
        scale = batch.get(LOSS_SCALE)
        inputs = batch if scale is None else {k: v for k, v in batch.items() if k != LOSS_SCALE}
        loss = r.model(**inputs).loss
        for piece in r.pieces:
            extra = piece.penalty(r.unwrapped)
            if extra is not None:
                loss = loss + extra
        return loss if scale is None else loss * scale

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
        recent = torch.stack(stats.losses[-self.config.log_every:]).float().mean()
        world = self.accelerator.num_processes
        # One host sync per log point, not per step; with several processes also one collective.
        loss, tokens = self._all_processes(torch.stack([recent / world, self._tokens.to(recent.device).float()]))
        loss, tokens = loss.item(), tokens.item()
        elapsed = time.perf_counter() - started
        self.log({"event": "train", "domain": domain, "step": stats.steps, "loss": round(loss, 5),
                  "lr": optimizer.param_groups[0]["lr"], "tokens_per_s": round(tokens / elapsed, 1)})
