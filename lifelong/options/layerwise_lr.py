"""Options of the `layerwise_lr` piece (lifelong/pieces/layerwise_lr.py):
the `layerwise_lr:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class LayerwiseLrConfig(Section):
    """Layer-wise LR decay (Howard & Ruder 2018; Clark et al. 2020): lr_l = lr * xi^(L-l)."""

    xi: float = Field(0.9, gt=0, le=1, description="decay per layer going down; embeddings get lr * xi^L")
