"""Gradual unfreezing: train the top layer first and unfreeze one more layer at a time.

At the start of each round only the top transformer layer (with the final norm and head, or
with LoRA the top layer's adapters) trains; every epoch (`every: epoch`, as in ULMFiT) or every
`every_steps` optimizer steps (`every: steps`) the next layer down joins, the embeddings last.
The new domain first shapes the task-specific top before it can disturb the general layers
below. After the round every parameter it froze is trainable again. With tied embeddings (the
small Llamas here) the output head is the embedding matrix, so it unfreezes with the embeddings.

The optimizer is built before any of this from all trainable parameters, so layers that
unfreeze later are already in its groups; a frozen parameter gets no gradient, and AdamW skips
parameters whose gradient is None (no update, no weight decay). With DistributedDataParallel,
changing requires_grad during a round needs `find_unused_parameters`.

Source: Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text Classification"
(ULMFiT, gradual unfreezing).
"""

from __future__ import annotations

from lifelong.config import UnfreezingConfig
from lifelong.model_layers import count_layers, depth
from lifelong.pieces.base import Piece


class Unfreezing(Piece):
    """Toggles requires_grad before each step so that only the top `stage + 1` layers train."""

    name = "unfreezing"
    options: UnfreezingConfig

    def __init__(self, options: UnfreezingConfig | None = None):
        super().__init__(options or UnfreezingConfig())
        self._candidates: list[tuple[int, object]] | None = None  # (depth, parameter), this round
        self._levels: list[int] = []  # distinct depths, top first
        self._steps_per_epoch = 1

    def before_round(self, domain) -> None:
        self.after_round(domain)  # a round that ended in a fault never reached after_round

    def before_training(self, total_steps: int, steps_per_epoch: int) -> None:
        self._steps_per_epoch = max(steps_per_epoch, 1)

    def interval(self) -> int:
        return self._steps_per_epoch if self.options.every == "epoch" else self.options.every_steps

    def before_step(self, step: int) -> None:
        if self._candidates is None:
            # What is trainable now, after every piece's param_groups (freezing has had its say).
            model = self.context.model
            n_layers = count_layers(model)
            self._candidates = [(depth(name, n_layers), p) for name, p in model.named_parameters() if p.requires_grad]
            self._levels = sorted({level for level, _ in self._candidates}, reverse=True)
        if not self._levels:
            return
        stage = min(step // self.interval(), len(self._levels) - 1)
        lowest = self._levels[stage]
        for level, p in self._candidates:
            p.requires_grad_(level >= lowest)

    def after_round(self, domain) -> None:
        for _, p in self._candidates or []:
            p.requires_grad_(True)
        self._candidates = None
