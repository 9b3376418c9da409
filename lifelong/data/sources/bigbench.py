"""BIG-bench (the PyPI sdist bigbench==1.0.0, download only, 358 MB): short general-knowledge facts.

qa_wikidata's cloze lines ("The capital of France is" -> "Paris") become questions ("What is
the capital of France?"); general_knowledge's items keep their question and best answer. They
supply the canary candidates and the core set's general practice questions.
"""

from __future__ import annotations

import json
import re

from lifelong.data.records import QAItem
from lifelong.data.sources import BIGBENCH, Package

PACKAGE: Package = BIGBENCH
TASKS = "bigbench-1.0.0/bigbench/benchmark_tasks/"
MEMBERS = (TASKS + "qa_wikidata/task.json", TASKS + "general_knowledge/task.json")
CLOZE = re.compile(r"^The (.{2,40}?) of (.{2,80}) is$")
MAX_ANSWER_WORDS = 3


def _short(answer: str) -> bool:
    return 0 < len(answer.split()) <= MAX_ANSWER_WORDS and len(answer) <= 30


def wikidata_items(data: bytes) -> list[QAItem]:
    out = []
    for example in json.loads(data)["examples"]:
        match = CLOZE.match(str(example.get("input", "")).strip())
        targets = example.get("target")
        targets = [targets] if isinstance(targets, str) else list(targets or [])
        targets = [t.strip() for t in targets if isinstance(t, str) and _short(t.strip())]
        if not match or not targets:
            continue
        relation, subject = match.groups()
        out.append(QAItem(question=f"What is the {relation} of {subject}?", answer=targets[0],
                          aliases=tuple(dict.fromkeys(t for t in targets[1:] if t != targets[0]))))
    return out


def general_knowledge_items(data: bytes) -> list[QAItem]:
    out = []
    for example in json.loads(data)["examples"]:
        scores = example.get("target_scores") or {}
        best = [answer for answer, score in scores.items() if score == 1]
        question = str(example.get("input", "")).strip()
        if len(best) == 1 and _short(best[0]) and question:
            out.append(QAItem(question=question, answer=best[0]))
    return out


def load(members: dict[str, bytes]) -> list[QAItem]:
    """All usable general questions, qa_wikidata first, de-duplicated by question."""
    items = wikidata_items(members[MEMBERS[0]]) + general_knowledge_items(members[MEMBERS[1]])
    seen, out = set(), []
    for item in items:
        if item.question.lower() not in seen:
            seen.add(item.question.lower())
            out.append(item)
    return out
