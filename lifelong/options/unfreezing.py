"""Options of the `unfreezing` piece (lifelong/pieces/unfreezing.py):
the `unfreezing:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class UnfreezingConfig(Section):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): top layer first, one more per epoch or k steps."""

    every: Literal["epoch", "steps"] = Field("epoch", description="unfreeze one more layer every epoch (ULMFiT) "
                                                                   "or every `every_steps` optimizer steps")
    every_steps: int = Field(10, ge=1, description="steps between unfreezing two layers when every: steps")
