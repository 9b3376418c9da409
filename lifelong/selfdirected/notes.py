"""The note writer of study notes (SEAL): sets of implications of a document, from a generator.

Shared by the `study_notes` piece (lifelong/pieces/study_notes.py) and ReSTEM's note writer
(lifelong/restem/writer.py).
"""

from __future__ import annotations

from lifelong.config import StudyNotesConfig
from lifelong.generation import Generated, Generator

PROMPT_NAME = "study_notes"


def write_notes(generator: Generator, document: str, n: int, prompt: str | None = None) -> list[Generated]:
    """`n` sets of implications of one document (sampled when n > 1)."""
    return write_notes_batch(generator, [document], n, prompt)[0]


def write_notes_batch(generator: Generator, documents: list[str], n: int,
                      prompt: str | None = None) -> list[list[Generated]]:
    """`n` note sets for each of several documents, in one batched pass."""
    template = prompt or StudyNotesConfig().prompt
    prompts = [template.format(document=document) for document in documents]
    return generator.generate(prompts, PROMPT_NAME, n=n, sample=n > 1 or None, sources=documents)
