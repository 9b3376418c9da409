"""Options of the `fast_adapters` piece (lifelong/pieces/fast_adapters.py):
the `fast_adapters:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class FastAdaptersConfig(Section):
    """The fast system: one LoRA adapter per episode at a high learning rate (complementary learning systems)."""

    r: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lr: float | None = Field(2e-3, gt=0, le=1.0, description="episode adapters' learning rate; null = training.lr")
    inference: Literal["route", "stack"] = Field("route", description="route: each input uses the adapter of the "
                                                  "episode its text is most like (or none); stack: every adapter")
    route_threshold: float = Field(0.15, ge=0, le=1, description="least TF-IDF cosine, over distinctive words "
                                   "(not one token), between an input and an episode's text to use its adapter")
    route_threshold_common: float = Field(0.4, ge=0, le=1, description="the same for an input made only of "
                                          "common words")
    route_thresholds_from: Literal["config", "practice"] = Field(
        "config", description="config: the two thresholds above; practice: after every episode both are chosen "
        "again on practice questions only (each episode's own should reach its adapter, the core set's the base), "
        "never on eval questions; kept as configured where there are no practice questions")
