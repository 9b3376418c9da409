"""LoRA adapters through PEFT (condition b).

The base weights are frozen and a low-rank adapter is trained. After each domain the adapter
is either merged into the base weights and a fresh one attached (`after_domain: merge`), or
kept and trained further on the next domain (`continue`).
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model

from lifelong.config import LoraPieceConfig
from lifelong.pieces.base import Piece


class Lora(Piece):
    name = "lora"
    options: LoraPieceConfig

    def __init__(self, options: LoraPieceConfig | None = None):
        super().__init__(options or LoraPieceConfig())

    def peft_config(self) -> LoraConfig:
        o = self.options
        return LoraConfig(r=o.r, lora_alpha=o.lora_alpha, lora_dropout=o.lora_dropout,
                          target_modules=o.target_modules, rank_pattern=dict(o.rank_pattern),
                          alpha_pattern=dict(o.alpha_pattern), task_type="CAUSAL_LM")

    def attach(self, learner) -> None:
        super().attach(learner)
        learner.model = get_peft_model(learner.model, self.peft_config())

    def after_round(self, domain) -> None:
        if self.options.after_domain == "merge":
            self.merge_and_renew()

    def merge_and_renew(self) -> None:
        """Fold the adapter into the base weights and start a fresh adapter."""
        model = self.learner.model
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        self.learner.model = get_peft_model(model, self.peft_config())
