"""Options of the `gap_detection` piece (lifelong/pieces/gap_detection.py):
the `gap_detection:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class GapDetectionConfig(Section):
    """Autonomous Learning: questions about each document, answered open- and closed-book; train on the gaps."""

    questions_per_document: int = Field(3, ge=1, le=100)
    prompt: str = Field("Read the passage and write {n} short questions about its facts, each followed by its "
                        "short answer taken from the passage. Use the format:\nQ: <question>\nA: <answer>"
                        "\n\nPassage: {document}", description="{n}: questions wanted, {document}: the text")
    answer_tokens: int = Field(24, ge=1, le=512, description="cap on tokens of an open- or closed-book answer")
    min_f1: float = Field(0.8, ge=0, le=1, description="an answer is right when it contains the written answer "
                          "or its token F1 with it reaches this (0.8: 'Lake Orrim' is not 'Lake Vessim')")
    with_document: bool = Field(True, description="also train on the documents")
