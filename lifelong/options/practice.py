"""Options of the `practice` piece (lifelong/pieces/practice.py):
the `practice:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class PracticeConfig(Section):
    """Rule-made practice from documents (lifelong/pieces/practice.py)."""

    questions: bool = Field(True, description="wh-questions: a number, name or colour of a sentence asked for")
    cloze: bool = Field(True, description="cloze deletions: 'Fill in the blank: ... ___ ...' for the same spans")
    restatements: bool = Field(True, description="'X is Y.' also as the question 'What is X?' and the text "
                               "'Y is X.' (both directions of recall)")
    max_answer_words: int = Field(6, ge=1, le=100, description="drop items whose answer is longer")
    restatement_texts: bool = Field(True, description="the text 'Y is X.' of every 'X is Y.' (the reverse "
                                    "direction; its question 'What is X?' is kept either way)")
    max_per_document: int = Field(40, ge=1, le=10000, description="practice questions kept per document")
    max_per_sentence: int | None = Field(None, ge=1, le=1000, description="practice questions kept per "
                                         "sentence, 'What is X?' of a copula first, then the spans' "
                                         "questions, then their cloze deletions, each in reading order "
                                         "(null: no cap)")
    max_ratio: float | None = Field(None, gt=0, le=1000, description="the round's practice at most this many "
                                    "times the length (characters) of the examples it already has (documents, "
                                    "given questions): dense documents otherwise multiply the training, and the "
                                    "time, many times over; questions before cloze deletions, each document's "
                                    "first items before any document's later ones (null: no budget)")
    repeats: int = Field(1, ge=1, le=100, description="times each practice item appears in a round's examples")
