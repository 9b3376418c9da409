"""Options of every self-directed piece (lifelong/selfdirected/base.py):
the `self_directed:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class SelfDirectedConfig(Section):
    """What every self-directed piece shares: the teacher's decoding and the filters against collapse."""

    max_new_tokens: int = Field(96, ge=1, le=4096, description="cap on tokens generated per text")
    temperature: float = Field(0.8, ge=0, le=5, description="sampling temperature; 0 = greedy")
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(8, ge=1, le=4096, description="prompts per generate call")
    dedup_threshold: float = Field(0.7, gt=0, le=1, description="drop a text whose ROUGE-L F with a kept one "
                                   "(or a real text) is at or above this (Self-Instruct: 0.7)")
    min_words: int = Field(4, ge=0, description="drop generated texts shorter than this")
    max_words: int = Field(300, ge=1, description="drop generated texts longer than this")
    min_source_overlap: float = Field(0.2, ge=0, le=1, description="drop a text when less than this share of "
                                      "its words occur in its source (off topic); 0 = off")
    max_source_rouge: float = Field(0.95, gt=0, le=1, description="drop a text whose ROUGE-L F with its source is "
                                    "at or above this (a copy, nothing new)")
    real_share: float = Field(0.25, ge=0, lt=1, description="at least this share of a round's examples is real "
                              "text (documents, practice questions), repeated if needed")
