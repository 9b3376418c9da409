"""Full fine-tuning: every weight is trainable (condition a, the naive baseline)."""

from __future__ import annotations

from lifelong.pieces.base import Piece


class FullFinetune(Piece):
    name = "full_finetune"

    def attach(self, context) -> None:
        super().attach(context)
        for parameter in context.model.parameters():
            parameter.requires_grad_(True)
