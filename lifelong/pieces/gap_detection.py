"""Gap detection (Autonomous Learning): the model finds what it does not know yet and studies that.

For each document the teacher writes `questions_per_document` questions with their answers,
with the document in view (config `gap_detection.prompt`, lines `Q: ...` and `A: ...`). The
questions pass the filters (length, on topic, ROUGE-L dedup among the domain's questions).
The learner then answers every question twice with the scoring prompt (greedy, capped at
`answer_tokens`): open-book, the document placed before the prompt, and closed-book, without
it. An answer is right when it contains the written answer or their token F1 reaches `min_f1`.

- open-book wrong: the question or its answer is unreliable, dropped;
- open-book right, closed-book right: already known, dropped;
- open-book right, closed-book wrong: a gap; it becomes a training example (the question as
  the prompt, the written answer as the text to learn, `source: "gap_question"`).

gap_rate = gaps / questions answered right open-book, logged per round. The documents stay in
the round unless `with_document: false`.

Source: Ji et al. 2024, "LLMs Could Autonomously Learn Without External Supervision"
(Autonomous Learning: open-book study, closed-book self-test, review of the gaps).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from lifelong.config import GapDetectionConfig
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.generation import Generated
from lifelong.selfdirected.base import SelfDirectedPiece

PROMPT_NAME = "gap_questions"
_QA = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:\*\*)?\s*(Q|A|Question|Answer)\s*\d*\s*(?:\*\*)?\s*[:.)]\s*(.*)$", re.I)


def parse_qa_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from lines `Q: ...` / `A: ...` (also `Question:`/`Answer:`, numbered)."""
    pairs, question = [], None
    for line in text.splitlines():
        match = _QA.match(line)
        if not match:
            continue
        tag, body = match.group(1).lower()[0], match.group(2).strip()
        if tag == "q":
            question = body or None
        elif question and body:
            pairs.append((question, body))
            question = None
    return pairs


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of two answers, after normalisation."""
    pred, ref = prompts.normalize_answer(prediction).split(), prompts.normalize_answer(reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answer_matches(reply: str, answer: str, min_f1: float = 0.8) -> bool:
    """The reply (its first line) contains the answer, or their token F1 reaches `min_f1`."""
    reply = reply.strip().split("\n", 1)[0]
    normal_reply, normal_answer = prompts.normalize_answer(reply), prompts.normalize_answer(answer)
    if not normal_reply or not normal_answer:
        return False
    if f" {normal_answer} " in f" {normal_reply} ":
        return True
    return token_f1(reply, answer) >= min_f1


def select_gaps(open_book: Sequence[bool], closed_book: Sequence[bool]) -> list[int]:
    """Indices of the gaps: right with the document in view, wrong without it."""
    return [i for i, (seen, unseen) in enumerate(zip(open_book, closed_book, strict=True)) if seen and not unseen]


def gap_rate(open_book: Sequence[bool], closed_book: Sequence[bool]) -> float | None:
    answerable = sum(open_book)
    return len(select_gaps(open_book, closed_book)) / answerable if answerable else None


class GapDetection(SelfDirectedPiece):
    """Questions about each document, answered open- and closed-book; the gaps become training examples."""

    name = "gap_detection"
    options: GapDetectionConfig

    def __init__(self, options: GapDetectionConfig | None = None):
        super().__init__(options or GapDetectionConfig())
        self._answerer: Evaluator | None = None

    # ---- the steps -----------------------------------------------------------------------------
    def write_questions(self, documents: Sequence[str]) -> list[tuple[Generated, str, str]]:
        """(record, question, answer) for every parsed pair, at most questions_per_document per document."""
        k = self.options.questions_per_document
        prompts_ = [self.options.prompt.format(n=k, document=document) for document in documents]
        found = []
        for (record,) in self.teacher().generate(prompts_, PROMPT_NAME, sources=documents):
            self.records.append(record)
            found += [(record, q, a) for q, a in parse_qa_pairs(record.text)[:k]]
        return found

    def answerer(self) -> Evaluator:
        """The learner's scoring prompt, greedy, answers capped at `answer_tokens`."""
        if self._answerer is None:
            config = self.context.config.evaluation.model_copy(
                update={"max_new_tokens": self.options.answer_tokens, "progress": False})
            self._answerer = Evaluator(config, self.context.tokenizer, seed=self.context.config.seed)
        return self._answerer

    def answer(self, questions: Sequence[str], documents: Sequence[str] | None) -> list[str]:
        """The learner's replies, closed-book, or open-book with each question's document before the prompt."""
        answerer = self.answerer()
        texts = [answerer.context_text(q) for q in questions]
        if documents is not None:
            texts = [f"Passage: {doc}\n\n{text}" for doc, text in zip(documents, texts, strict=True)]
        return answerer.generate(self.student().model, texts, desc="gap answers")

    def study(self, domain, examples):
        from lifelong.training import Example  # lazy: the loop imports the pieces

        found = self.write_questions([doc.text for doc in domain.documents])
        as_records = [Generated(q, r.model, r.prompt_name, r.prompt, r.source) for r, q, _ in found]
        practice = [item.question for item in domain.train_items]
        kept_records, report = self.filter(as_records, real=practice)
        kept = [found[i] for i in report.kept]
        questions = [q for _, q, _ in kept]
        open_book = closed_book = []
        if kept:
            min_f1 = self.options.min_f1
            opened = self.answer(questions, [r.source for r, _, _ in kept])
            closed = self.answer(questions, None)
            open_book = [answer_matches(reply, a, min_f1) for reply, (_, _, a) in zip(opened, kept, strict=True)]
            closed_book = [answer_matches(reply, a, min_f1) for reply, (_, _, a) in zip(closed, kept, strict=True)]
        template = self.context.config.evaluation.prompt.template
        gaps = []
        for i in select_gaps(open_book, closed_book):
            record, question, answer = kept[i]
            example = Example(prompt=template.format(question=question),
                              text=prompts.answer_continuation(answer) + "\n", source="gap_question")
            self.material[example] = record
            gaps.append(example)
        base = examples if self.options.with_document else [e for e in examples if e.source != "document"]
        return [*base, *gaps], {"generated": len(found), **report.counts(), "kept": len(gaps),
                                "questions": len(kept), "open_book_right": sum(open_book),
                                "gaps": len(gaps), "gap_rate": gap_rate(open_book, closed_book),
                                "kept_texts": [e.prompt + e.text for e in gaps]}
