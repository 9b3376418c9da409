"""Options of the `ewc` piece (lifelong/pieces/ewc.py):
the `ewc:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class EwcConfig(Section):
    """Online Elastic Weight Consolidation (Kirkpatrick et al. 2017; Schwarz et al. 2018)."""

    ewc_lambda: float = Field(100.0, ge=0, description="penalty strength lambda in lambda/2 * sum F (theta - anchor)^2")
    gamma: float = Field(1.0, ge=0, le=1, description="decay of the running Fisher: F = gamma * F_old + F_new")
    fisher_samples: int = Field(64, ge=1, description="training examples per round used to estimate the Fisher")
