"""Options of the `lora` piece (lifelong/pieces/lora.py):
the `lora:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class LoraPieceConfig(Section):
    """PEFT's LoraConfig names; `after_domain` says what happens to the adapter after each domain."""

    r: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    use_rslora: bool = Field(False, description="scale the adapter by lora_alpha / sqrt(r) instead of "
                                                "lora_alpha / r (rsLoRA, Kalajdzievski 2023)")
    loraplus_lr_ratio: float | None = Field(None, gt=0, description="LoRA+ (Hayou et al. 2024): the B matrices "
                                            "train at this multiple of the A matrices' learning rate; null = 1")
    after_domain: Literal["merge", "continue"] = "merge"
