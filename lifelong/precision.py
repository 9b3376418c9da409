"""Mixed precision (bfloat16 autocast over float32 weights) and the thread count.

`mixed_precision` is Accelerate's name for the same thing. It is applied to the model itself, the way
Accelerate's `prepare` does: the model's forward runs under `torch.autocast`, so every forward pass
(training, scoring, generation, the pieces' own passes) uses it, the backward pass runs outside it,
and the weights and optimizer state stay in float32. "auto" picks bfloat16 where the hardware
computes it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX: 1.5x a training step
and 2-3x a scoring pass on this project's 2-core machine, docs/performance.md) and float32 elsewhere.
"""

from __future__ import annotations

import functools
from types import MethodType

import torch

PRECISIONS = ("auto", "no", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bfloat16 matrix products natively (else autocast would emulate them)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(setting: str, device: torch.device, weights: torch.dtype) -> str:
    """"no" or "bf16": what `setting` means for float32/half weights on this device."""
    if setting not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {', '.join(PRECISIONS)} (got {setting!r})")
    if weights != torch.float32 or setting == "no":
        return "no"  # half-precision weights already compute in their own dtype
    if setting == "bf16" or native_bf16(device):
        return "bf16"
    return "no"


def apply_mixed_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Run the model's forward under bfloat16 autocast (precision "bf16"); floating outputs come back as
    float32. Idempotent; deep copies of the model keep it."""
    if precision != "bf16" or getattr(model, "_lifelong_autocast", False):
        return model
    forward = model.forward.__func__

    @functools.wraps(forward)
    def autocast_forward(self, *args, **kwargs):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
            output = forward(self, *args, **kwargs)
        return _to_float32(output)

    model.forward = MethodType(autocast_forward, model)
    model._lifelong_autocast = True
    return model


def active_precision(model: torch.nn.Module) -> str:
    """"bf16" when the model's forward runs under autocast (apply_mixed_precision), else "no"."""
    return "bf16" if getattr(model, "_lifelong_autocast", False) else "no"


def _to_float32(output):
    """Logits and loss as float32 (scores and argmaxes are then taken at full precision)."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype == torch.bfloat16 else output
    if hasattr(output, "keys") and hasattr(output, "__setitem__"):
        for key in ("logits", "loss"):
            value = output.get(key) if hasattr(output, "get") else None
            if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
                output[key] = value.float()
    return output


def set_threads(threads: int | None) -> None:
    """Use `threads` CPU threads for this process's tensor operations (None: torch's default, which
    follows OMP_NUM_THREADS)."""
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
