"""Which questions quiz a document: the closed-book test a candidate note set is rewarded on.

A domain file lists documents and questions separately, so a question is assigned to the
document that contains one of its answers and shares the most words with it (DESIGN §8: the
documents contain the answers). Only `qa` items take part; exact match is the reward.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lifelong.data.records import Document, Item, QAItem
from lifelong.evaluation.prompts import normalize_answer

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(normalize_answer(text)))


def _contains_answer(document: str, item: QAItem) -> bool:
    text = f" {normalize_answer(document)} "
    return any(f" {normalize_answer(answer)} " in text for answer in item.answers)


def questions_by_document(documents: Sequence[Document], items: Sequence[Item]) -> list[list[QAItem]]:
    """For each document, the qa items whose answer it contains and with which it shares the most words."""
    quizzes: list[list[QAItem]] = [[] for _ in documents]
    words = [_words(doc.text) for doc in documents]
    for item in items:
        if not isinstance(item, QAItem):
            continue
        holders = [i for i, doc in enumerate(documents) if _contains_answer(doc.text, item)]
        if holders:
            asked = _words(item.question)
            quizzes[max(holders, key=lambda i: len(asked & words[i]))].append(item)
    return quizzes
