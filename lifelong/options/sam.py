"""Options of the `sam` piece (lifelong/pieces/sam.py):
the `sam:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class SamConfig(Section):
    """Sharpness-aware minimisation (Foret et al. 2021)."""

    rho: float = Field(0.05, ge=0, description="radius of the adversarial weight perturbation")
