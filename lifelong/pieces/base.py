"""The piece interface (DESIGN §4): one technique, a few optional hooks.

The training loop calls these hooks and knows no technique by name. Every hook has a
do-nothing default, so a piece implements only what it needs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from lifelong.data.records import Domain
    from lifelong.learner import Learner
    from lifelong.training import Example, RoundStats


class Piece:
    """Base class of every technique. `name` is the key it is selected by in config."""

    name: str = ""

    def __init__(self, options: Any = None):
        self.options = options
        self.learner: Learner | None = None  # its `evaluator` and `stream` are set by the Experiment

    def attach(self, learner: Learner) -> None:
        """Called once when the learner is built; may wrap or replace `learner.model`."""
        self.learner = learner

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
