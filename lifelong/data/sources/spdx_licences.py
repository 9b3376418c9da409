"""Licence texts of the SPDX licence list (spdx/data/*.txt and spdx/data/db.json in the PyPI wheel spdx==2.5.1).

A document is a passage of one licence, 150-400 words at paragraph boundaries, headed with the licence's name and
SPDX identifier ('From the Academic Free License v3.0 (SPDX identifier AFL-3.0): ...'); the templates' variables
are written with their original text ("the copyright holder"). Questions ask what the passage states:
- "identifier": 'Which licence contains the sentence "..."? Give its SPDX identifier.' -> "AFL-3.0" (alias: the
  name), only for a sentence that occurs in no other licence of the list and names neither the licence nor its
  owner;
- "cloze": 'In the Academic Free License v3.0, which word fills the blank: "... ___ ..."?' -> a distinctive word
  of the sentence: CLOZE_LETTERS letters or more, in at most DISTINCT_IN licences of the list, its stem (first 5
  letters) only once in the sentence (a word the sentence repeats is predictable), not a word of the licence's
  name (which the question states); up to CLOZES_PER_SENTENCE words of one sentence, rarest first, each asked
  with only its own blank;
- "holder": 'Who is named as the copyright holder in the ...?' -> the organisation of a "Copyright (c) YEAR
  NAME" line of the passage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lifelong.data.sources import SPDX, Package
from lifelong.data.sources.passages import COMMON, Candidate, Piece, normalise, sentences, words

PACKAGE: Package = SPDX
DATA_DIR = "spdx/data/"
INDEX = DATA_DIR + "db.json"
VARIABLE = re.compile(r"<<var;[^>]*?original=(.*?);match=.*?>>", re.S)
OPTIONAL = re.compile(r"<<(?:beginOptional|endOptional)[^>]*>>")
MIN_WORDS, MAX_WORDS = 150, 350
SENTENCE_WORDS = (8, 60)
DISTINCT_IN = 12  # a cloze word occurs in at most this many licences of the list
SPECIFIC_IN = 20  # a sentence asked for its licence has a word that at most this many licences use
CLOZE_LETTERS = 6
CLOZES_PER_SENTENCE = 2
MAX_CLOZES = 24  # per passage
# Words of a licence's name that say nothing about which licence it is (or are too short to be a name).
NAME_WORDS = frozenset(("license", "licence", "public", "version", "general", "source", "free", "open",
                        "software", "agreement", "terms", "and", "the", "for", "with", "non", "only", "not", "any"))
HOLDER = re.compile(r"Copyright\s+(?:\(c\)|©)\s*(?:[\d,\s-]+)(?:by\s+)?([A-Z][^.,;()<>\n\"]{2,60})")
WORD = re.compile(r"[A-Za-z]+")
# A word as written, letters of any script: "con-nection" and "développé" are one token each; only a token of
# ASCII letters alone is asked for.
TOKEN = re.compile(r"[^\W\d_][\w'-]*")
# Words a reader of any licence completes from the sentence around them.
GUESSABLE = frozenset((
    "whichever", "whatever", "whoever", "wherever", "therefore", "thereof", "thereto", "therein", "thereby",
    "hereby", "herein", "hereof", "hereto", "hereunder", "thereunder", "provided", "including", "applicable",
    "accordance", "notwithstanding", "foregoing", "following", "pursuant", "respect", "subject",
))


@dataclass(frozen=True)
class Licence:
    id: str
    name: str
    text: str


def clean_template(text: str) -> str:
    """The licence text with each template variable as its original wording and no optional-part markers."""
    text = VARIABLE.sub(lambda m: m.group(1).strip(), text)
    text = OPTIONAL.sub("", text)
    return text.replace("\r", "")


def parse_index(data: bytes) -> list[tuple[str, str, str]]:
    """(id, name, template file) of every licence in db.json, in id order."""
    entries = json.loads(data.decode("utf-8"))["licenses"]
    return sorted((e["id"], e["name"], e["template"]) for e in entries if e.get("template"))


def load(members: dict[str, bytes]) -> list[Licence]:
    """Licences of the list whose template file is present, by id."""
    out = []
    for licence_id, name, template in parse_index(members[INDEX]):
        data = members.get(DATA_DIR + template)
        if data is not None:
            out.append(Licence(licence_id, name, clean_template(data.decode("utf-8", errors="replace"))))
    return out


def paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def passages(text: str) -> list[str]:
    """Runs of whole paragraphs of MIN_WORDS to MAX_WORDS words (a longer paragraph is cut at sentences); a short
    remainder joins the passage before it."""
    units: list[str] = []
    for paragraph in paragraphs(text):
        if words(paragraph) <= MAX_WORDS:
            units.append(paragraph)
        else:
            units.extend(sentences(paragraph))
    out, current = [], []
    for unit in units:
        if current and words(" ".join(current + [unit])) > MAX_WORDS:
            out.append(current)
            current = []
        current.append(unit)
    if current:
        if out and words(" ".join(current)) < MIN_WORDS and words(" ".join(out[-1] + current)) <= MAX_WORDS * 1.25:
            out[-1] = out[-1] + current
        else:
            out.append(current)
    return ["\n\n".join(part) for part in out if words(" ".join(part)) >= MIN_WORDS]


def word_spread(licences: list[Licence]) -> dict[str, int]:
    """In how many licences each (lower-case) word occurs."""
    spread: dict[str, int] = {}
    for licence in licences:
        for word in {w.lower() for w in WORD.findall(licence.text)}:
            spread[word] = spread.get(word, 0) + 1
    return spread


def sentence_spread(licences: list[Licence]) -> dict[str, int]:
    """In how many licences each (normalised) sentence occurs."""
    spread: dict[str, int] = {}
    for licence in licences:
        for sentence in {normalise(s) for p in paragraphs(licence.text) for s in sentences(p)}:
            spread[sentence] = spread.get(sentence, 0) + 1
    return spread


def names_licence(licence: Licence, sentence: str) -> bool:
    """True when the sentence gives the licence away: its identifier, or a distinctive word of its name."""
    lower = sentence.lower()
    if licence.id.lower() in lower:
        return True
    name_words = [w.lower() for w in WORD.findall(licence.name) if len(w) >= 3 and w.lower() not in NAME_WORDS]
    return any(re.search(rf"\b{re.escape(w)}", lower) for w in name_words)


def document(licence: Licence, passage: str) -> str:
    return f"From the {licence.name} (SPDX identifier {licence.id}):\n{passage}"


def cloze_words(sentence: str, spread: dict[str, int], exclude: frozenset[str] = frozenset(),
                limit: int = CLOZES_PER_SENTENCE) -> list[str]:
    """Up to `limit` of the sentence's rarest words across the list (first on ties), each distinctive enough to
    ask for: CLOZE_LETTERS letters or more, not common, in at most DISTINCT_IN licences, its stem (first 5 letters)
    once in the sentence and not one of `exclude` (the stems of the licence's name, which the question states)."""
    found = TOKEN.findall(sentence)
    stems: dict[str, int] = {}
    for word in found:
        stems[word.lower()[:5]] = stems.get(word.lower()[:5], 0) + 1
    options = [w for w in dict.fromkeys(found) if len(w) >= CLOZE_LETTERS and w.isascii() and w.isalpha()
               and w.lower() not in COMMON and w.lower() not in GUESSABLE and stems[w.lower()[:5]] == 1
               and spread.get(w.lower(), 0) <= DISTINCT_IN
               and not w.isupper() and w.lower()[:5] not in exclude]
    return sorted(options, key=lambda w: (spread.get(w.lower(), 0), found.index(w)))[:limit]


def cloze_word(sentence: str, spread: dict[str, int], exclude: frozenset[str] = frozenset()) -> str | None:
    """The sentence's one best cloze word (see cloze_words), or None."""
    return next(iter(cloze_words(sentence, spread, exclude, 1)), None)


def blank(sentence: str, word: str) -> str:
    return re.sub(rf"\b{re.escape(word)}\b", "___", sentence, count=1)


def candidates(licence: Licence, passage: str, words_spread: dict[str, int],
               sentences_spread: dict[str, int]) -> list[Candidate]:
    out: list[Candidate] = []
    askable = [s for p in paragraphs(passage) for s in sentences(p)
               if SENTENCE_WORDS[0] <= words(s) <= SENTENCE_WORDS[1]]
    clozes = 0
    name_stems = frozenset(w.lower()[:5] for w in WORD.findall(licence.name))
    for sentence in askable:
        group = normalise(sentence)  # a sentence two licences share is asked in one split only
        if sentences_spread.get(normalise(sentence), 0) == 1:
            reason = None
            if names_licence(licence, sentence):
                reason = "sentence names the licence"
            elif min((words_spread.get(w.lower(), 0) for w in WORD.findall(sentence)), default=0) > SPECIFIC_IN:
                reason = "sentence too generic"
            out.append(Candidate("identifier", f'Which licence contains the sentence "{sentence}"? Give its SPDX '
                                 "identifier.", licence.id, group, (licence.name,), dropped=reason))
        for word in cloze_words(sentence, words_spread, name_stems)[:MAX_CLOZES - clozes]:
            clozes += 1
            out.append(Candidate("cloze", f'In the {licence.name}, which word fills the blank: '
                                 f'"{blank(sentence, word)}"?', word, group))
    match = HOLDER.search(passage)
    if match:
        holder = " ".join(match.group(1).split()).rstrip(" ,")
        reason = None if 1 <= len(holder.split()) <= 6 and "copyright" not in holder.lower() else "holder unclear"
        out.append(Candidate("holder", f"Who is named as the copyright holder in the {licence.name}?", holder,
                             f"{licence.id}:holder", dropped=reason))
    return out


def pieces(licences: list[Licence]) -> list[Piece]:
    """One piece per passage, licences in id order; a passage whose text an earlier licence already has is left
    out (versions and variants of a licence share whole paragraphs)."""
    words_spread, sentences_spread = word_spread(licences), sentence_spread(licences)
    seen: set[str] = set()
    out = []
    for licence in licences:
        for index, passage in enumerate(passages(licence.text)):
            key = normalise(passage)
            if key in seen:
                continue
            seen.add(key)
            out.append(Piece(f"{licence.id}#{index}", document(licence, passage),
                             tuple(candidates(licence, passage, words_spread, sentences_spread))))
    return out
