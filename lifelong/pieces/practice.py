"""Practice: plain documents become question/answer practice items and restatements, by rules.

Studying the raw text is what naive fine-tuning does; a model that has read "The Bench of Nine
Lamps sits in the city of Orrim." still often cannot answer "The Bench of Nine Lamps sits in which
city?" closed-book. Knowledge stored from varied phrasings and practised in question form is what
a model can extract (Allen-Zhu & Li 2023, "Physics of Language Models 3.1": knowledge augmentation;
Berglund et al. 2023, "The Reversal Curse": A is B does not teach B is A). So every sentence of every
document of the round is turned, by rules, into
- wh-questions: one span of the sentence (a number, a name, the complement of "is") replaced by a
  question phrase ("how many days", "what", "what year"), its answer the span;
- cloze deletions: "Fill in the blank: ... ___ ..." for the same spans, the other direction of recall;
- restatements both ways: "X is Y." also written as "Y is X." (a training text).
A sentence that opens with a pronoun ("It has green fur.") is asked with the last sentence before it
that does not, which says what "it" is. Generated items are filtered (no answer longer than
`max_answer_words`, no duplicate, at most `max_per_document` questions per document and, if set,
`max_per_sentence` per sentence, a copula's "What is X?" first; if `max_ratio` is set, the round's
practice is at most that many times as long as the examples it already has: cloze deletions go first,
then each document's later items, so that every document keeps its first ones), and the yield
of every document (made, kept, dropped by reason) goes to log.jsonl as one `practice` event per round.

Put `practice` before `replay` in a piece list: replay keeps the examples it receives, so practice
items of earlier domains are replayed too. Only documents are read, never a domain's questions; an item
that is one of the round's examples already (a question the domain gives) is not added twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from lifelong.config import PracticeConfig
from lifelong.data.records import QAItem
from lifelong.examples import question_example
from lifelong.pieces.base import Piece

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
PRONOUN_START = re.compile(r"^(It|Its|They|Their|This|These|That|Those|He|She|His|Her|Them|There)\b")
NUMBER = re.compile(r"\b(\d[\d,.]*)(?:\s+([a-z][a-z-]+))?")
LABEL = re.compile(r"\b(?:part|chapter|section|volume|page|no\.)\s*$", re.IGNORECASE)  # "part 1": a label, no fact
YEAR = re.compile(r"\b(?:in|by|since|until|from|of) ((?:the year )?)$")
FUNCTION_WORDS = {"and", "or", "but", "to", "of", "in", "on", "at", "by", "for", "with", "from", "the", "a", "an",
                  "is", "are", "was", "were", "may", "must", "can", "will", "then", "after", "before"}
# A name: capitalised words, with "of", "the", "and" inside ("Bench of Nine Lamps", "Festival of Ash").
NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:(?:of|the|and|de)\s+)*[A-Z][\w'-]*)*")
COPULA = re.compile(r"^(?P<subject>(?:The|A|An)\s.+?)\s(?P<verb>is|are|was|were)\s(?P<complement>.+?)[.!]?$")
CLOZE = "Fill in the blank: "
COLORS = {"red", "blue", "green", "yellow", "black", "white", "grey", "gray", "brown", "purple", "orange",
          "pink", "golden", "silver"}


@dataclass(frozen=True)
class Made:
    """What one document yielded: practice questions, restatement texts, and why candidates were dropped."""

    questions: list[QAItem]
    texts: list[str]
    dropped: Counter

    @property
    def made(self) -> int:
        return len(self.questions) + sum(self.dropped.values())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def _question(sentence: str, start: int, end: int, phrase: str) -> str:
    return (sentence[:start] + phrase + sentence[end:]).rstrip(" .!") + "?"


def _cloze(sentence: str, start: int, end: int) -> str:
    return CLOZE + sentence[:start] + "___" + sentence[end:]


def spans(sentence: str) -> list[tuple[int, int, str, str]]:
    """(start, end, question phrase, answer) of every span worth asking about: the sentence's text from
    start to end is replaced by the phrase, and the answer is the span (without "the year")."""
    out = []
    for match in NUMBER.finditer(sentence):
        number, noun = match.group(1).rstrip(".,"), match.group(2)
        start, end = match.start(1), match.start(1) + len(number)
        if LABEL.search(sentence[:start]):
            continue
        year = YEAR.search(sentence[:start])
        if year and len(number) in (3, 4):
            out.append((year.start(1), end, "what year", number))
        else:
            counted = noun and noun not in FUNCTION_WORDS
            out.append((start, end, "how many" if counted else "what", number))
    for match in NAME.finditer(sentence):
        if match.start() > 0:  # the sentence's opening word is capitalised anyway
            out.append((match.start(), match.end(), "what", match.group(0)))
    for word in re.finditer(r"\b[a-z]+\b", sentence):
        if word.group(0) in COLORS:
            out.append((word.start(), word.end(), "what color", word.group(0)))
    return sorted(set(out))


def make_practice(document: str, options: PracticeConfig) -> Made:
    """The practice items and restatements of one document, by the rules in the module docstring."""
    questions: list[QAItem] = []
    texts: list[str] = []
    dropped: Counter = Counter()
    seen: set[str] = set()

    def offer(question: str, answer: str) -> None:
        if len(answer.split()) > options.max_answer_words:
            dropped["long answer"] += 1
        elif question.lower() in seen:
            dropped["duplicate"] += 1
        elif len(questions) >= options.max_per_document:
            dropped["over max_per_document"] += 1
        else:
            seen.add(question.lower())
            questions.append(QAItem(question, answer, (), "train"))

    previous = ""  # the last sentence that does not open with a pronoun
    for sentence in sentences(document):
        pronoun = bool(PRONOUN_START.match(sentence))
        if pronoun and not previous:
            dropped["pronoun subject"] += 1
            continue
        # "It has green fur": asked with the sentence before it, which says what "it" is
        context = previous + " " if pronoun else ""
        found = spans(sentence)
        if not found:
            dropped["nothing to ask"] += 1
        candidates = []
        for start, end, phrase, answer in found:
            if (context + sentence).count(answer) > 1:
                dropped["ambiguous span"] += 1
                continue
            if options.questions:
                candidates.append((context + _question(sentence, start, end, phrase), answer))
            if options.cloze:
                candidates.append((_cloze(context + sentence, len(context) + start, len(context) + end), answer))
        if not pronoun:
            previous = sentence
        copula = COPULA.match(sentence) if options.restatements else None
        if copula:
            subject, verb, complement = copula.group("subject", "verb", "complement")
            if len(complement.split()) <= options.max_answer_words and "," not in complement:
                candidates.append((f"What {verb} {subject[0].lower() + subject[1:]}?", complement))
                if options.restatement_texts:
                    texts.append(f"{complement[0].upper() + complement[1:]} {verb} {subject[0].lower() + subject[1:]}.")
                if options.max_per_sentence is not None:
                    candidates.insert(0, candidates.pop())  # the copula's question is the one a cap keeps
        cap = options.max_per_sentence
        if cap is not None and len(candidates) > cap:
            # every fact once as a question before any fact twice: a cap of 2 keeps two facts, not one in two forms
            candidates.sort(key=lambda candidate: candidate[0].startswith(CLOZE))
            dropped["over max_per_sentence"] += len(candidates) - cap
            candidates = candidates[:cap]
        for question, answer in candidates:
            offer(question, answer)
    return Made(questions, texts, dropped)


def within_budget(practice: list[tuple], examples: list, max_ratio: float | None) -> list[tuple]:
    """The (example, document, is_cloze) practice kept under a budget of max_ratio x the round's
    examples' total length (characters).

    Kept first: questions and restatements before cloze deletions, and within each, an item's rank in
    its own document (so every document keeps its first items before any keeps its later ones). The
    kept items stay in their original order.
    """
    if max_ratio is None:
        return practice
    budget = max_ratio * sum(example.length for example in examples)
    seen: Counter = Counter()
    rank = []
    for _, document, cloze in practice:
        rank.append((cloze, seen[document, cloze]))
        seen[document, cloze] += 1
    kept, used = set(), 0
    for i in sorted(range(len(practice)), key=rank.__getitem__):
        used += practice[i][0].length
        if used > budget:
            break
        kept.add(i)
    return [item for i, item in enumerate(practice) if i in kept]


class Practice(Piece):
    """Adds rule-made practice questions and restatements of the round's documents to its examples."""

    name = "practice"
    options: PracticeConfig

    def __init__(self, options: PracticeConfig | None = None):
        super().__init__(options or PracticeConfig())

    def examples(self, domain, examples):
        if getattr(self.context, "reference", False):
            return examples  # a reference round studies the documents alone
        from lifelong.training import Example

        prompt = self.context.config.evaluation.prompt
        made = [make_practice(document.text, self.options) for document in domain.documents]
        extra = [(question_example(item, prompt), d, item.question.startswith(CLOZE))
                 for d, m in enumerate(made) for item in m.questions]
        extra += [(Example(text=text, source="restatement"), d, False) for d, m in enumerate(made) for text in m.texts]
        extra = [item for item in extra if item[0] is not None]
        given = {(example.prompt, example.text) for example in examples}
        new = [item for item in extra if (item[0].prompt, item[0].text) not in given]
        kept = within_budget(new, examples, self.options.max_ratio)
        over_budget = Counter(d for _, d, _ in new) - Counter(d for _, d, _ in kept)
        self._log(domain.name, made, given=len(extra) - len(new), over_budget=over_budget)
        return examples + [example for example, _, _ in kept] * self.options.repeats

    def _log(self, domain: str, made: list[Made], given: int, over_budget: Counter) -> None:
        """kept: what the rules' filters kept; over_max_ratio: of those, what the round's budget cut."""
        dropped = sum((m.dropped for m in made), Counter())
        per_document = [{"made": m.made, "kept": len(m.questions), "restatements": len(m.texts),
                         "dropped": dict(m.dropped), "over_max_ratio": over_budget[d]} for d, m in enumerate(made)]
        self.context.log({"event": "practice", "domain": domain, "documents": len(made),
                          "made": sum(m.made for m in made), "kept": sum(len(m.questions) for m in made),
                          "restatements": sum(len(m.texts) for m in made), "dropped": dict(dropped),
                          "already_given": given, "over_max_ratio": sum(over_budget.values()),
                          "per_document": per_document})
