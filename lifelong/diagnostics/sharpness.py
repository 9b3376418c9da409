"""Sharpness: how fast the loss rises when the trained weights are nudged (a cheap estimate).

At the end of a round, the loss L(w) of a probe batch of the round's examples is compared with the
loss at perturbed weights, in two ways:
- random directions, filter-normalised (Li et al. 2018, "Visualizing the Loss Landscape of Neural
  Nets"): every trainable tensor w_t moves by rho * ||w_t|| * d_t / ||d_t||, d Gaussian; the rise is
  averaged over a few draws. rho is relative to each tensor's size;
- the gradient direction, as SAM's inner step (Foret et al. 2021; Keskar et al. 2017's
  epsilon-sharpness): e = rho * g / ||g|| over all trainable weights together, rho absolute (SAM's
  default is 0.05). This is the first-order worst case; a relative radius would put a large share of
  the embedding matrix's norm into the few rows the probe's tokens touch.
Sharpness(rho) = L(w + e) - L(w): 0 at rho 0, larger for sharper minima. Mirzadeh et al. 2020
("Understanding the Role of Training Regimes in Continual Learning") tie wide minima to less
forgetting. The weights are restored exactly afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch


def _perturbed_loss(params: list[torch.nn.Parameter], directions: Callable[[], Iterator[torch.Tensor]],
                    scales: Callable[[torch.nn.Parameter, torch.Tensor], float],
                    loss_fn: Callable[[], float]) -> float:
    """The loss with every tensor p moved by scales(p, d) * d; the weights are restored."""
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, d in zip(params, directions(), strict=True):
                scale = scales(p, d)
                if scale:
                    p.add_((d.to(p.device).float() * scale).to(p.dtype))
        return loss_fn()
    finally:
        with torch.no_grad():
            for p, original in zip(params, saved, strict=True):
                p.copy_(original)


def _random_directions(params: list[torch.nn.Parameter], seed: int) -> Callable[[], Iterator[torch.Tensor]]:
    """The same Gaussian direction every time it is called, drawn one tensor at a time (no copy of the model)."""
    def directions() -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        for p in params:
            yield torch.randn(p.shape, generator=generator)
    return directions


def _relative(rho: float) -> Callable[[torch.nn.Parameter, torch.Tensor], float]:
    """Scale so that ||e_t|| = rho * ||w_t|| (filter normalisation)."""
    def scale(p: torch.nn.Parameter, d: torch.Tensor) -> float:
        norm = float(d.norm())
        return rho * float(p.detach().float().norm()) / norm if norm > 0 else 0.0
    return scale


def sharpness(model: torch.nn.Module, loss_fn: Callable[[], float], radii: Sequence[float] = (0.01, 0.03),
              samples: int = 1, gradient_fn: Callable[[], None] | None = None,
              gradient_radii: Sequence[float] = (0.01, 0.05), seed: int = 0) -> dict:
    """Loss rise at each radius along random directions (relative radii, mean of `samples`) and the gradient.

    `loss_fn()` returns the probe loss at the current weights (no gradient); `gradient_fn()` fills the
    trainable parameters' .grad with the probe loss's gradient (None: no gradient direction).
    Results are keyed by str(rho).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    base = loss_fn()
    out: dict = {"loss": base, "random": {}, "gradient": {}}
    for rho in radii:
        rises = [_perturbed_loss(params, _random_directions(params, seed * 1000 + k), _relative(rho), loss_fn) - base
                 for k in range(samples)]
        out["random"][str(rho)] = sum(rises) / len(rises) if rises else None
    if gradient_fn is not None:
        saved = [p.grad for p in params]
        for p in params:
            p.grad = None
        try:
            gradient_fn()
            grads = [p.grad.detach().float().clone() if p.grad is not None else torch.zeros(p.shape)
                     for p in params]
        finally:
            for p, grad in zip(params, saved, strict=True):
                p.grad = grad
        norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))) if grads else 0.0
        out["gradient_norm"] = norm
        for rho in gradient_radii:
            scale = rho / norm if norm > 0 else 0.0
            out["gradient"][str(rho)] = _perturbed_loss(params, lambda: iter(grads), lambda p, d, s=scale: s,
                                                        loss_fn) - base
    return out
