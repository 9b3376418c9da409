"""What the field sources (hpo, spdx_licences, more_itertools_docs, champ) give the builder in lifelong/data/fields.py.

A `Piece` is one unit of study text (a disease, a licence passage, a function's documentation, a problem with its
solution) with the questions that the text answers. A `Candidate` is one such question before the builder keeps
or drops it; a candidate that a source already rejects carries the reason in `dropped`, so the builder's yield log
can count it. `group` is the key that keeps related questions in one split (practice or eval): questions made from
one sentence, or one fact asked two ways, share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WORD_TOKEN = re.compile(r"\w+|[^\w\s]")
# Words that say nothing specific: an answer that is one of them is guessable.
COMMON = frozenset((
    "about", "above", "after", "again", "against", "also", "another", "any", "because", "been", "before", "being",
    "between", "both", "case", "could", "does", "each", "either", "every", "first", "from", "have", "here",
    "however", "including", "into", "itself", "last", "least", "less", "made", "make", "many", "more", "most",
    "much", "must", "next", "none", "only", "other", "otherwise", "over", "part", "same", "second", "shall",
    "should", "since", "some", "such", "than", "that", "their", "them", "then", "there", "these", "they", "this",
    "those", "through", "thus", "under", "upon", "used", "using", "very", "what", "when", "where", "whether",
    "which", "while", "will", "with", "within", "without", "would", "your", "true", "false", "none",
))


@dataclass(frozen=True)
class Candidate:
    kind: str  # the question type, for the yield log: "gene", "cloze", "output", ...
    question: str
    answer: str
    group: str  # questions with one group go to one split
    aliases: tuple[str, ...] = ()
    dropped: str | None = None  # why the source rejected it; None: kept so far


@dataclass(frozen=True)
class Piece:
    key: str  # stable id, unique within its source
    text: str
    candidates: tuple[Candidate, ...] = field(default=())


def normalise(text: str) -> str:
    """Lower case, whitespace runs as one space: how answers are looked up in documents."""
    return " ".join(text.lower().split())


def words(text: str) -> int:
    return len(text.split())


def approx_tokens(text: str) -> int:
    """A tokenizer-free size: runs of word characters plus each punctuation mark (code and formulas count more)."""
    return len(WORD_TOKEN.findall(text))


def sentences(text: str) -> list[str]:
    """Sentences of prose: split after . ; ! ? followed by a space and a capital, a quote or a bracket."""
    flat = " ".join(text.split())
    parts = re.split(r"(?<=[.!?;])\s+(?=[A-Z(\"'])", flat)
    return [part.strip() for part in parts if part.strip()]


def gives_away(name: str, text: str, stem: int = 5) -> bool:
    """True when a word of `name` (4 letters or more; compared by its first `stem` letters) appears in `text`."""
    lower = text.lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if len(p) >= 4]
    return any(p[:stem] in lower for p in parts)
