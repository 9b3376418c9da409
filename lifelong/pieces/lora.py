"""LoRA adapters through PEFT (condition b).

The base weights are frozen and a low-rank adapter is trained. After each domain the adapter
is either merged into the base weights and a fresh one attached (`after_domain: merge`), or
kept and trained further on the next domain (`continue`).

Two published variants, under PEFT's names: `use_rslora` scales the adapter by alpha / sqrt(r)
(Kalajdzievski 2023), and `loraplus_lr_ratio` trains the B matrices at that multiple of the A
matrices' rate (LoRA+, Hayou et al. 2024; PEFT's `create_loraplus_optimizer`), here as an optimizer
group of its own so that other pieces (layer-wise decay) scale it like any group.
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
                          alpha_pattern=dict(o.alpha_pattern), use_rslora=o.use_rslora, task_type="CAUSAL_LM")

    def param_groups(self, model, groups: list[dict]) -> list[dict]:
        """LoRA+: each group's B matrices move to a group of their own at `loraplus_lr_ratio` times its rate."""
        ratio = self.options.loraplus_lr_ratio
        if ratio is None or ratio == 1:
            return groups
        b_matrices = {id(p) for name, p in model.named_parameters() if ".lora_B." in name}
        default_lr = self.context.config.training.lr if self.context is not None else None
        split: list[dict] = []
        for group in groups:
            rest = [p for p in group["params"] if id(p) not in b_matrices]
            b = [p for p in group["params"] if id(p) in b_matrices]
            split.append({**group, "params": rest})
            if b:
                split.append({**group, "params": b, "lr": group.get("lr", default_lr) * ratio})
        return split

    def attach(self, context) -> None:
        super().attach(context)
        context.model = get_peft_model(context.model, self.peft_config())

    def after_round(self, domain) -> None:
        if self.options.after_domain == "merge":
            self.merge_and_renew()

    def merge_and_renew(self) -> None:
        """Fold the adapter into the base weights and start a fresh adapter."""
        model = self.context.model
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        self.context.model = get_peft_model(model, self.peft_config())
