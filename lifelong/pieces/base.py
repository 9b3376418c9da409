"""The piece interface (DESIGN §4): one technique, a few optional hooks.

The training loop calls these hooks and knows no technique by name. Every hook has a
do-nothing default, so a piece implements only what it needs.

A piece sees the learner it belongs to through a `PieceContext` (given at `attach`): the model, the
tokenizer, the config, the log, the run's stream, core set, evaluator and output folder, the other
pieces, and the learner's `examples`/`run_round` for the pieces that retrain (the self-test's repair).
The Learner (lifelong/learner.py) owns the context; nothing else sets state on the Learner.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

    from lifelong.config import RunConfig
    from lifelong.data.records import Domain
    from lifelong.data.stream_spec import Stream
    from lifelong.evaluation.evaluator import Evaluator
    from lifelong.examples import Example
    from lifelong.rounds import RoundStats


@dataclass(eq=False)
class PieceContext:
    """What a piece may read, and change, of the learner it is attached to.

    `model` is the one mutable handle on the weights: a piece that wraps the model (LoRA, the fast
    adapters) assigns it here, and the Learner reads it back from here. `core`, `stream`, `evaluator`
    and `out_dir` are the run's (None outside a run); `reference` is True during a documents-only
    reference round (self_teaching_quality); `cache` keeps what the pieces share for the run (the
    generators of lifelong/generation.py)."""

    model: torch.nn.Module
    tokenizer: Any
    config: RunConfig
    accelerator: Accelerator
    log: Callable[[dict], None]
    pieces: list[Piece]
    examples: Callable[[Domain], list[Example]]  # the learner's chain: plain examples through every piece
    run_round: Callable[..., RoundStats]  # Learner.run_round: a round without the review (a repair)
    train_on: Callable[..., RoundStats]  # Learner.train_on: steps on given examples alone (a recovery)
    core: Domain | None = None
    stream: Stream | None = None
    evaluator: Evaluator | None = None
    out_dir: Path | None = None
    reference: bool = False
    cache: dict[str, Any] = field(default_factory=dict)


class Piece:
    """Base class of every technique. `name` is the key it is selected by in config."""

    name: str = ""

    def __init__(self, options: Any = None):
        self.options = options
        self.context: PieceContext | None = None

    def attach(self, context: PieceContext) -> None:
        """Called once when the learner is built; may wrap or replace `context.model`."""
        self.context = context

    @property
    def learner(self) -> PieceContext | None:
        """The older name of `context` (pieces written before it still read `self.learner.model`)."""
        return self.context

    @learner.setter
    def learner(self, context: PieceContext | None) -> None:
        self.context = context

    def examples(self, domain: Domain, examples: list[Example]) -> list[Example]:
        """Turn a domain into training examples; pieces are chained in order."""
        return examples

    def batches(self, examples: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]] | None:
        """Compose one epoch's batches (replay mixes old examples in); None leaves it to the loop."""
        return None

    def param_groups(self, model: torch.nn.Module, groups: list[dict]) -> list[dict]:
        """Adjust optimizer parameter groups (learning rates, frozen layers)."""
        return groups

    def before_round(self, domain: Domain) -> None:
        """Called before the round's training loop starts."""

    def before_training(self, total_steps: int, steps_per_epoch: int) -> None:
        """Called once the round's batches are planned, before the first step (epoch-based schedules)."""

    def before_step(self, step: int) -> None:
        """Called before each optimizer step (schedules such as gradual unfreezing)."""

    def after_step(self, step: int) -> bool:
        """Called after each good optimizer step; return True to end the round early (a canary alarm)."""
        return False

    def adjust_gradients(self, model: torch.nn.Module, closure: Callable[[], torch.Tensor]) -> None:
        """Called when an optimizer step's gradients are ready, before clipping and the update.

        `closure()` runs the step's forward and backward again at the current weights (accumulating
        into `.grad`) and returns the loss; SAM uses it for its second pass.
        """

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        """An extra loss term added to the training loss (e.g. EWC)."""
        return None

    def after_round(self, domain: Domain) -> None:
        """Called after the round (update Fisher information, replay buffer, merge adapters)."""

    def review(self, domain: Domain) -> RoundStats | None:
        """Called once the round is over and every piece's after_round has run (the self-test checks the
        model here and may repair the round, through `Learner.run_round`, or roll it back). Returns the
        stats of a repair round whose weights were kept, else None."""
        return None

    def state_dict(self) -> dict:
        """Everything the piece needs to resume; tensors are allowed."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of state_dict."""


def trainable_parameters(model: torch.nn.Module) -> Iterable[tuple[str, torch.nn.Parameter]]:
    return ((name, p) for name, p in model.named_parameters() if p.requires_grad)
