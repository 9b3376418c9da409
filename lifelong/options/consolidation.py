"""Options of the `consolidation` piece (lifelong/pieces/consolidation.py):
the `consolidation:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lifelong.options.base import Section


class ConsolidationConfig(Section):
    """The slow system: "sleep" folds the episode adapters into the base weights, then drops them."""

    method: Literal["distill", "merge", "rehearse"] = Field(
        "distill", description="distill: a fresh consolidation adapter learns the adapters' outputs by "
        "distillation (`epochs`); merge: it starts as PEFT's combination of the episode adapters (`merge_type`), "
        "then `repair_epochs` of the same distillation; rehearse: a fresh adapter learns the day's examples "
        "(documents and Q/A) themselves by cross-entropy for `epochs`, old material by distillation from the "
        "base, under online EWC with a Fisher taken on the old material first")
    merge_type: Literal["cat", "ties_svd", "dare_ties_svd", "dare_linear_svd", "svd"] = Field(
        "cat", description="PEFT's add_weighted_adapter combination_type; cat is the exact sum of the adapters' "
        "updates, the svd kinds trim (TIES) or drop (DARE) entries of the summed update, then refactor it")
    merge_weight: float | Literal["mean"] = Field(1.0, description="merge: each episode adapter's weight in the "
                                                  "combination, in (0, 1] (1: their sum), or mean: 1/n of n adapters")

    density: float = Field(0.5, gt=0, le=1, description="share of each update's entries that TIES/DARE keep")
    repair_epochs: int = Field(1, ge=0, le=100, description="merge: distillation epochs after the merge "
                               "(0: the merge alone)")
    repair: Literal["distill", "rehearse"] = Field("distill", description="merge: how the repair epochs train "
                                                   "(the distill or the rehearse loss)")
    every: int = Field(3, ge=0, description="sleep after every `every` episodes; 0 = only on command")
    lr: float = Field(1e-3, gt=0, le=1.0, description="learning rate of the consolidation adapter")
    epochs: int = Field(2, ge=1, le=100)
    batch_size: int = Field(8, ge=1, le=4096)
    r: int = Field(16, ge=1, le=4096, description="rank of the consolidation adapter merged into the base")
    lora_alpha: float = Field(32, gt=0)
    xi: float = Field(0.9, gt=0, le=1, description="layer-wise LR decay of the consolidation adapter")
    ewc_lambda: float = Field(100.0, ge=0, description="online EWC strength over the consolidation adapter")
    replay_examples: int = Field(64, ge=0, description="old examples (core set + replay buffer) mixed in")
    canary_replies: bool = Field(True, description="the canary prompts carry the base's own greedy reply (never "
                                 "the canary's answers), so that the KL to the base covers the answer's tokens too")
    temperature: float = Field(1.0, gt=0, description="distillation temperature")
    max_canary_drop: float = Field(0.05, ge=0, le=1, description="self-test: the canary may fall by at most this "
                                   "fraction of its pre-sleep score")
    min_transfer: float = Field(0.5, ge=0, le=1, description="self-test: share of the adapters' log-perplexity "
                                "gain on the episodes' documents the base must keep")
    min_answer_transfer: float = Field(0.5, ge=0, le=1, description="self-test: share of the adapters' "
                                       "closed-book accuracy gain on the episodes' practice questions the base "
                                       "must keep (not checked where the episodes have no practice questions)")

    @field_validator("merge_weight")
    @classmethod
    def _weight_in_range(cls, value):
        if value != "mean" and not 0 < value <= 1:
            raise ValueError("must be in (0, 1] or 'mean'")
        return value
