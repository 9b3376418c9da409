"""Options of the `self_test` piece (lifelong/pieces/self_test.py):
the `self_test:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class SelfTestRepairConfig(Section):
    """What the self-test does about a regression before it rolls back."""

    attempts: int = Field(1, ge=0, le=10, description="repair rounds before a rollback; 0 = roll back at once")
    start: Literal["snapshot", "current"] = Field("snapshot", description="retrain the round from the weights it "
                                                  "started from, or continue from the regressed weights")
    replay_ratio: float = Field(0.5, ge=0, lt=1, description="share of the repair round's examples drawn from the "
                                "regressed capabilities' stored examples (canary: the core set)")
    ewc_lambda: float = Field(1000.0, ge=0, description="EWC strength pulling the weights the regressed capability "
                              "needs towards the round's starting weights (10x the ewc piece's default)")
    ewc_growth: float = Field(10.0, ge=1, description="ewc_lambda is multiplied by this for every further attempt")
    fisher_samples: int = Field(64, ge=1, description="stored examples used to estimate the repair's Fisher")
    epochs: int | None = Field(None, ge=1, le=1000, description="epochs of a repair round over the round's "
                               "examples plus the targeted replay; null = training.epochs")
    lr_factor: float = Field(0.5, gt=0, le=1, description="the repair round trains at training.lr times this")
    mode: Literal["retrain", "recover"] = Field("retrain", description="retrain: the round is trained again with "
                                                "the targeted replay mixed in (`start`); recover: from the "
                                                "regressed weights, train on the regressed capabilities' stored "
                                                "examples alone, checking them every `check_every` steps, until "
                                                "they pass or `recover_steps` steps are done")
    recover_steps: int = Field(40, ge=1, le=100000, description="recover: most optimizer steps of one attempt")
    check_every: int = Field(5, ge=1, description="recover: optimizer steps between checks of the regressed "
                             "capabilities")


class SelfTestConfig(Section):
    """Self-testing (DESIGN §5): canary and diagnostic checks, regression rule, repair and rollback."""

    canary_every: int = Field(5, ge=0, description="optimizer steps between canary checks inside a round "
                              "(an alarm ends the round early); 0 = only after the round")
    on_alarm: Literal["restore", "stop", "continue"] = Field("restore", description="at an in-round canary "
                                                             "alarm: end the round at the weights of its last check "
                                                             "that passed (or its start), end it where it is, or go on")
    diagnostic_every: int = Field(1, ge=1, description="rounds between full diagnostic suites (every domain "
                                  "learned so far and the diagnostic tasks); always run on a canary alarm")
    abs_drop: float = Field(0.02, ge=0, le=1, description="a drop must exceed max(abs_drop, rel_drop * before)")
    rel_drop: float = Field(0.05, ge=0, le=1)
    confidence: float = Field(0.95, ge=0.5, lt=1, description="one-sided confidence that a drop (or a downward "
                              "trend) is beyond the binomial noise of the number of items")
    cumulative: bool = Field(True, description="also compare with each capability's first score (the canary: "
                             "before any training; a domain: right after it was learned), so losses within noise "
                             "per round cannot add up")
    trend: bool = Field(True, description="also flag slow drift: a significant, material downward trend over rounds")
    trend_min_points: int = Field(4, ge=3, description="scores in the history before the trend test runs")
    trend_window: int = Field(0, ge=0, description="last scores the trend test fits; 0 = the whole history")
    rollback: bool = Field(True, description="roll back a round whose regression outlives the repairs; false keeps "
                           "it, logged as kept")
    diagnostic_tasks: list[str] = Field([], description="lm-evaluation-harness task YAML files scored as extra "
                                        "diagnostic capabilities (paths relative to the working folder)")
    repair: SelfTestRepairConfig = SelfTestRepairConfig()
