"""Study notes (SEAL): the model writes several sets of implications per document and trains on them.

For each document the teacher is asked (config `study_notes.prompt`, `{document}`) for the
document's implications, restatements, inferences and consequences, `sets_per_document` times
(sampled). Each set that passes the filters (length, on topic and not a copy of the document,
ROUGE-L dedup at `self_directed.dedup_threshold` among the domain's notes) becomes one training
example (`source: "note"`); the documents stay in the round too unless `with_document: false`.

`write_notes(generator, document, n, prompt)` is the note writer on its own (ReSTEM builds on it;
it lives in lifelong/selfdirected/notes.py, below both).

Source: Zweiger et al. 2025, "Self-Adapting Language Models" (SEAL), knowledge incorporation:
implications of a passage as synthetic training data.
"""

from __future__ import annotations

from lifelong.config import StudyNotesConfig
from lifelong.generation import Generator
from lifelong.selfdirected.base import SelfDirectedPiece
from lifelong.selfdirected.notes import PROMPT_NAME, write_notes, write_notes_batch  # noqa: F401  (old home)


class StudyNotes(SelfDirectedPiece):
    """Several sets of implications per document, each a training example beside the document."""

    name = "study_notes"
    options: StudyNotesConfig

    def __init__(self, options: StudyNotesConfig | None = None):
        super().__init__(options or StudyNotesConfig())

    def teacher(self) -> Generator:
        """With a `restem` piece on, its ReSTEM-trained note writer (it learned which notes work)."""
        restem = next((piece for piece in self.context.pieces if piece.name == "restem"), None)
        return restem.generator if restem is not None else super().teacher()

    def teacher_name(self) -> str:
        return self.teacher().name

    def study(self, domain, examples):
        from lifelong.training import Example  # lazy: the loop imports the pieces

        documents = [doc.text for doc in domain.documents]
        records = [r for notes in write_notes_batch(self.teacher(), documents, self.options.sets_per_document,
                                                     self.options.prompt) for r in notes]
        kept, report = self.filter(records)
        notes = []
        for record in kept:
            example = Example(text=record.text, source="note")
            self.material[example] = record
            notes.append(example)
        base = examples if self.options.with_document else [e for e in examples if e.source != "document"]
        return [*base, *notes], {"generated": len(records), **report.counts(),
                                 "kept_texts": [r.text for r in kept]}
