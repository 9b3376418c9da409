"""Numerical faults in training: the last good state to return to, and the checks that call for it.

A fault is a non-finite loss, a gradient norm that is not finite or above
`training.max_grad_norm_fault`, or weights that an update left non-finite. The training loop then
drops the step's gradients, returns the trainable weights and the optimizer state to the last good
step (`LastGood`), lowers the learning rate once, and logs the fault; a second fault in the same
round ends it (TrainingFault).

Memory: `LastGood` keeps one copy of every trainable parameter and of the optimizer's state for it
(AdamW: two tensors per parameter), about 3x the trainable parameters, on their device; frozen
weights are not copied. With LoRA that is the adapters only. `training.fault_snapshot: false`
drops the copy: faults still skip the step and lower the learning rate, but weights broken by an
update cannot be restored and end the round.
"""

from __future__ import annotations

import math

import torch


class LastGood:
    """The trainable weights and the optimizer state after the last good step, kept in memory.

    `save` runs after every good step, so it is one fused copy (`torch._foreach_copy_`) of every
    weight and optimizer-state tensor into buffers kept from the first save: no per-parameter
    Python work and no host sync.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, enabled: bool = True):
        self.optimizer = optimizer
        self.enabled = enabled
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.weights = [p.detach().clone() for p in self.params] if enabled else []
        self.state: dict[int, dict] = {}
        self._copies: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None  # (saved, live) pairs
        self._states_seen = -1  # len(optimizer.state) when the pairs were built
        self.save()

    @torch.no_grad()
    def save(self) -> None:
        """Remember the current weights and optimizer state (copied into buffers kept from last time)."""
        if not self.enabled:
            return
        if self._copies is None or self._states_seen != len(self.optimizer.state):
            self._copies = self._pairs()
        saved, live = self._copies
        if saved:
            torch._foreach_copy_(saved, live)

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every tensor to copy on save and its buffer; built again when parameters gain optimizer state."""
        saved, live = list(self.weights), [p.detach() for p in self.params]
        for index, p in enumerate(self.params):
            state = self.optimizer.state.get(p)
            if not state:
                continue
            slots = self.state[index] = _copy_into(self.state.get(index, {}), state)
            for key, value in state.items():
                if torch.is_tensor(value):
                    saved.append(slots[key])
                    live.append(value)
        self._states_seen = len(self.optimizer.state)
        return saved, live

    @torch.no_grad()
    def restore(self) -> bool:
        """Put the remembered weights and optimizer state back; False when there is no copy."""
        if not self.enabled:
            return False
        for saved, p in zip(self.weights, self.params, strict=True):
            p.copy_(saved)
        for index, p in enumerate(self.params):
            if index in self.state:
                self.optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v
                                           for k, v in self.state[index].items()}
            else:
                self.optimizer.state.pop(p, None)
        self._copies = None  # the optimizer now holds new state tensors
        return True

    @torch.no_grad()
    def weights_finite(self) -> bool:
        """Whether every trainable weight is finite (one fused reduction, one host sync)."""
        if not self.params:
            return True
        norms = torch._foreach_norm([p.detach() for p in self.params], 2, dtype=torch.float32)
        return bool(torch.isfinite(torch.stack([n.to(norms[0].device) for n in norms])).all())


def _copy_into(slots: dict, live: dict) -> dict:
    for key, value in live.items():
        if torch.is_tensor(value) and torch.is_tensor(slots.get(key)) and slots[key].shape == value.shape:
            slots[key].copy_(value)
        else:
            slots[key] = value.detach().clone() if torch.is_tensor(value) else value
    return slots


def norm_fault(norm: float | None, limit: float | None) -> bool:
    """Whether a gradient norm is a fault: not finite, or above `limit` (when set)."""
    if norm is None:
        return False
    return not math.isfinite(norm) or (limit is not None and norm > limit)


def lower_lr(optimizer: torch.optim.Optimizer, scheduler, factor: float) -> None:
    """Multiply every group's learning rate, and the schedule's base rates, by `factor`."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
