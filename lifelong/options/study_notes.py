"""Options of the `study_notes` piece (lifelong/pieces/study_notes.py):
the `study_notes:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class StudyNotesConfig(Section):
    """SEAL study notes: several sets of implications per document; train on them."""

    sets_per_document: int = Field(3, ge=1, le=100, description="note sets sampled per document")
    prompt: str = Field("Read the passage and list its implications: the facts restated in other words, "
                        "inferences and consequences, one per line.\n\nPassage: {document}",
                        description="{document}: the text")
    with_document: bool = Field(True, description="also train on the documents themselves")
