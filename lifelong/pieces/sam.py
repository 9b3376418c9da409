"""Sharpness-aware minimisation: step with the gradient taken at the worst nearby weights.

Each optimizer step becomes two passes. With the step's gradient g ready, the weights move to
w + e, e = rho * g / ||g|| (the steepest ascent within radius rho); the loss and gradient are
computed again there; the weights return to w; the base optimizer (AdamW) then steps with that
second gradient. Flat minima found this way are less disturbed by later training (Mehta et al.
2023, "An Empirical Investigation of the Role of Pre-training in Lifelong Learning", found SAM
reduces forgetting).

It works through the loop's generic `adjust_gradients(model, closure)` hook; `closure()` is the
step's forward and backward again (penalties included). SAM needs one micro-batch per step
(`training.grad_accum: 1`): the second pass sees only the last micro-batch. Training costs about
twice as much per step. A non-finite loss at the perturbed weights leaves that step without
gradients (no update).

Source: Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving
Generalization" (ICLR 2021); rho = 0.05, the paper's default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lifelong.config import SamConfig
from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece


class Sam(Piece):
    """Perturbs the weights by rho * g / ||g||, recomputes the gradient there, and restores them."""

    name = "sam"
    options: SamConfig

    def __init__(self, options: SamConfig | None = None):
        super().__init__(options or SamConfig())

    def attach(self, context) -> None:
        super().attach(context)
        if context.config.training.grad_accum != 1:
            raise ConfigError(f"key 'training.grad_accum': sam needs 1 micro-batch per step "
                              f"(got {context.config.training.grad_accum})")

    def adjust_gradients(self, model: torch.nn.Module, closure: Callable[[], torch.Tensor]) -> None:
        params = [p for p in model.parameters() if p.grad is not None]
        if not params:
            return
        grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.detach().float().norm() for p in params]))
        scale = self.options.rho / (grad_norm + 1e-12)
        saved = []
        with torch.no_grad():
            for p in params:
                saved.append(p.detach().clone())
                p.add_((p.grad.float() * scale).to(p.dtype))
                p.grad = None
        try:
            loss = closure()
        finally:
            with torch.no_grad():
                for p, original in zip(params, saved, strict=True):
                    p.copy_(original)
        if not torch.isfinite(loss):
            for p in params:
                p.grad = None
