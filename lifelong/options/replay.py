"""Options of the `replay` piece (lifelong/pieces/replay.py):
the `replay:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class ReplayConfig(Section):
    """Replay of a core set plus a buffer of earlier domains' examples, mixed into every batch."""

    ratio: float = Field(0.2, ge=0, lt=1, description="share of each batch drawn from core set + buffer")
    buffer_size: int = Field(200, ge=0, description="examples of earlier domains kept in the buffer")
    policy: Literal["reservoir", "balanced"] = Field("reservoir", description="reservoir: uniform over everything "
                                                     "seen (Vitter); balanced: equal share per domain")
    core: bool = Field(True, description="replay the stream's core set (its documents and split=train questions)")
    core_share: float | None = Field(None, ge=0, le=1, description="share of the old examples drawn from the core "
                                     "set (the rest from the buffer of earlier domains); null = one pool, each "
                                     "old example equally likely")
    synthetic: int = Field(0, ge=0, le=10000, description="self-synthesized rehearsal: texts the model writes per "
                           "earlier domain at each round's start, replayed beside the buffer; 0 = off")
    synthetic_prompt: str = Field(
        "Here are notes about one topic:\n{examples}\n\nWrite one more short note about the same topic, "
        "in the same style.", description="rehearsal prompt; {examples}: a few buffered texts of the domain, "
        "{domain}: its name")
    synthetic_examples: int = Field(3, ge=0, le=64, description="buffered texts of the domain shown in the prompt")
