"""What a training round is planned and remembered by: its stats, its batches, its random state, its
mid-domain checkpoint state. The loop that runs a round is lifelong/training.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from lifelong.errors import LifelongError
from lifelong.examples import Example


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


LENGTH_WINDOW = 16  # batches per window whose examples are sorted by length (as transformers' LengthGroupedSampler)


def epoch_order(examples: Sequence[Example], batch_size: int, rng: random.Random,
                group_by_length: bool = False) -> list[Example]:
    """One epoch's examples in a seeded random order, to be cut into batches of `batch_size`.

    With `group_by_length`, each window of LENGTH_WINDOW batches is sorted by length before it is
    cut, and the batches are shuffled again, so a batch pads to a length close to its members'.
    """
    order = list(examples)
    rng.shuffle(order)
    if not group_by_length:
        return order
    window = batch_size * LENGTH_WINDOW
    batches = []
    for start in range(0, len(order), window):
        ranked = sorted(order[start:start + window], key=lambda e: e.length, reverse=True)
        batches += [ranked[i:i + batch_size] for i in range(0, len(ranked), batch_size)]
    rng.shuffle(batches)
    return [example for batch in batches for example in batch]


def default_batches(examples: Sequence[Example], batch_size: int, rng: random.Random,
                    group_by_length: bool = False) -> list[list[Example]]:
    """One epoch: the examples in a seeded random order, cut into batches."""
    order = epoch_order(examples, batch_size, rng, group_by_length)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


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
