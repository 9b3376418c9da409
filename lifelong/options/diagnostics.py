"""Options of the `diagnostics` piece (lifelong/pieces/diagnostics.py):
the `diagnostics:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lifelong.options.base import Section

DIAGNOSTIC_MEASUREMENTS = ("gradient_conflict", "drift", "sharpness", "rotation", "collapse", "attribution")


class DiagnosticsConfig(Section):
    """Forgetting diagnostics after every round (lifelong/diagnostics/); probe sizes bound their cost."""

    measurements: list[Literal["gradient_conflict", "drift", "sharpness", "rotation", "collapse", "attribution"]] = \
        Field(list(DIAGNOSTIC_MEASUREMENTS), description="which measurements run")
    layer_groups: int = Field(3, ge=1, le=64, description="block groups besides the embeddings (3: lower, middle, "
                              "upper)")
    probe_texts: int = Field(48, ge=2, le=4096, description="fixed probe texts for drift, CKA and rotation")
    probe_length: int = Field(64, ge=4, le=4096, description="tokens per probe text")
    probe_tokens: int = Field(2048, ge=8, description="probe tokens kept per layer (features are per token)")
    grad_examples: int = Field(8, ge=1, le=4096, description="examples per source for the gradients and "
                               "the sharpness loss")
    score_items: int | None = Field(16, ge=1, description="eval items per earlier domain / canary scored before "
                                    "and after the round (regressions, attribution); null = all")
    batch_size: int = Field(8, ge=1, le=4096)
    sharpness_radii: list[float] = Field([0.01, 0.03], description="random directions: relative radii "
                                         "(each tensor moves by rho ||w_t||)")
    sharpness_samples: int = Field(1, ge=0, le=100, description="random directions averaged per radius")
    sharpness_gradient_radii: list[float] = Field([0.01, 0.05], description="gradient direction: absolute "
                                                  "radii, as SAM's rho (e = rho g / ||g||)")
    rotation_holdout: float = Field(0.5, ge=0, lt=1, description="share of probe tokens the Procrustes map is "
                                    "scored on but not fitted to; 0 = in-sample only")
    generation_prompts: list[str] | None = Field(None, description="prompts for free generation (collapse); "
                                                 "null = built-in open prompts")
    generation_tokens: int = Field(32, ge=1, le=2048)
    generation_sample: bool = Field(False, description="sample (seeded) instead of greedy decoding")

    @field_validator("sharpness_radii", "sharpness_gradient_radii")
    @classmethod
    def _non_negative(cls, radii: list[float]) -> list[float]:
        if any(r < 0 for r in radii):
            raise ValueError("radii must be >= 0")
        return radii
