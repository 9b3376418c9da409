"""Feature rotation: the best orthogonal map between a layer's old and new features (the geometric view).

Orthogonal Procrustes (Schoenemann 1966, "A generalized solution of the orthogonal Procrustes
problem"): for column-centred features X (before) and Y (after), each scaled to unit Frobenius norm,
R = argmin over orthogonal R of ||X R - Y||_F is U V^T where U S V^T = svd(X^T Y). The drift is
||X - Y||^2, the residual ||X R - Y||^2; the share of the drift a rotation explains is
1 - residual / drift (R = I is a candidate, so in-sample it lies in [0, 1]). When the tokens are few
against the width, a rotation can fit noise, so the map is also fitted on one part of the tokens and
scored on the rest (`heldout_explained`; it can be negative when the fitted rotation does not carry over;
None when the fitting tokens are not more than the width).
"""

from __future__ import annotations

import torch


def _normalised(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().double()
    x = x - x.mean(dim=0, keepdim=True)
    norm = x.norm()
    return x / norm if norm > 0 else x


def orthogonal_procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The orthogonal R minimising ||x R - y||_F (x, y: rows x width, same shape)."""
    u, _, vh = torch.linalg.svd(x.double().T @ y.double(), full_matrices=False)
    return u @ vh


def _explained(x: torch.Tensor, y: torch.Tensor, r: torch.Tensor) -> tuple[float, float, float]:
    drift = float(((x - y) ** 2).sum())
    residual = float(((x @ r - y) ** 2).sum())
    explained = 1.0 - residual / drift if drift > 1e-20 else 1.0
    return drift, residual, explained


def rotation_fit(before: torch.Tensor, after: torch.Tensor, holdout: float = 0.5) -> dict:
    """Procrustes between normalised features: drift, residual, explained share, in-sample and held out.

    The held-out split takes every k-th token (k = round(1 / holdout)) as the test set; it is skipped
    (None) unless the remaining tokens outnumber the width.
    """
    x, y = _normalised(before), _normalised(after)
    r = orthogonal_procrustes(x, y)
    drift, residual, explained = _explained(x, y, r)
    out = {"drift": drift, "residual": residual, "explained": explained,
           "heldout_drift": None, "heldout_residual": None, "heldout_explained": None}
    if 0 < holdout < 1:
        step = max(2, round(1 / holdout))
        test = torch.zeros(x.shape[0], dtype=torch.bool)
        test[::step] = True
        if int((~test).sum()) > x.shape[1] and test.any():  # fewer tokens than the width: any fit overfits
            r_train = orthogonal_procrustes(x[~test], y[~test])
            out["heldout_drift"], out["heldout_residual"], out["heldout_explained"] = _explained(x[test], y[test],
                                                                                                 r_train)
    return out


def rotation_summary(before: list[torch.Tensor], after: list[torch.Tensor], holdout: float = 0.5) -> dict:
    """rotation_fit per layer, and over all layers pooled: 1 - sum of residuals / sum of drifts.

    Pooling weighs each layer by its drift, so a layer that hardly moved (whose share is ill-defined)
    does not dominate the total.
    """
    fits = [rotation_fit(x, y, holdout) for x, y in zip(before, after, strict=True)]

    def pooled(drift_key: str, residual_key: str) -> float | None:
        pairs = [(f[drift_key], f[residual_key]) for f in fits if f[drift_key] is not None]
        total = sum(d for d, _ in pairs)
        return 1.0 - sum(r for _, r in pairs) / total if pairs and total > 1e-20 else (1.0 if pairs else None)

    return {
        "explained": [f["explained"] for f in fits],
        "heldout_explained": [f["heldout_explained"] for f in fits],
        "residual": [f["residual"] for f in fits],
        "explained_total": pooled("drift", "residual"),
        "heldout_explained_total": pooled("heldout_drift", "heldout_residual"),
        "residual_mean": sum(f["residual"] for f in fits) / len(fits) if fits else None,
    }
