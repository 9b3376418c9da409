"""Options of the `distill` piece (lifelong/pieces/distill.py):
the `distill:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class DistillConfig(Section):
    """Distillation towards the first round's predictions on the core set (lifelong/pieces/distill.py)."""

    alpha: float = Field(1.0, ge=0, description="weight of the distillation term beside the language-model loss")
    batch_size: int = Field(2, ge=1, le=4096, description="core examples distilled at every step")
    examples: int = Field(256, ge=1, description="core examples whose predictions are kept")
    top_k: int = Field(32, ge=1, le=4096, description="most likely next tokens kept per position")
    max_length: int = Field(128, ge=8, le=32768, description="tokens per distilled example")
    focus: Literal["all", "answers"] = Field("all", description="all: every position of the core examples as "
                                             "trained, pooled; answers: a core question in the evaluation's "
                                             "prompt, at the positions that predict its answer only, a document "
                                             "at every position, every example weighing the same (it kept less "
                                             "of the canary: docs/documents_only.md)")
