"""STaR: the model reasons its way to checkable answers and learns from the reasoning that worked.

For the domain's practice questions (split=train `qa` and `mc` items, whose answers are known),
the teacher writes step-by-step reasoning ending in `Answer: ...` (config `star.prompt`).
- the final answer is right: the reasoning is kept;
- wrong (or none): with `rationalize`, the teacher is asked again with the right answer as a
  hint (`star.hint_prompt`); the rationalisation is kept if it reaches the right answer.
A kept rationale trains as the question (prompt, loss-free) followed by the reasoning and its
answer (`source: "rationale"`); the hint never appears in the training example. Rationales
pass the length filter and ROUGE-L dedup. gap_rate = share of questions answered wrongly
before the hint.

Source: Zelikman et al. 2022, "STaR: Bootstrapping Reasoning With Reasoning" (rationale
generation, filtering by the answer, rationalisation with the answer as a hint).
"""

from __future__ import annotations

import re
import string

from lifelong.config import StarConfig
from lifelong.data.records import MCItem, QAItem
from lifelong.evaluation import prompts
from lifelong.selfdirected.base import SelfDirectedPiece

PROMPT_NAME, HINT_PROMPT_NAME = "star_rationale", "star_rationalization"
_FINAL = re.compile(r"answer\s*(?:is)?\s*[:：]\s*(.+)", re.I)
_LETTER = re.compile(r"^\(?([A-Za-z])(?:\)|\.|:|$)\s*(.*)$")


def question_text(item) -> str:
    """The question as the model reads it; mc choices listed as A., B., ..."""
    if isinstance(item, MCItem):
        choices = "\n".join(f"{string.ascii_uppercase[i]}. {c}" for i, c in enumerate(item.choices))
        return f"{item.question}\n{choices}"
    return item.question


def right_answer(item) -> str:
    if isinstance(item, MCItem):
        return f"{string.ascii_uppercase[item.answer]}. {item.choices[item.answer]}"
    return item.answer


def final_answer(text: str) -> str | None:
    """What follows the last `Answer:` in the text, or None."""
    matches = _FINAL.findall(text)
    return matches[-1].strip() if matches else None


def is_correct(answer: str | None, item) -> bool:
    """The final answer names the item's answer (qa: the answer or an alias; mc: its letter or its text)."""
    if not answer:
        return False
    normal = prompts.normalize_answer(answer)
    if isinstance(item, QAItem):
        return any(f" {prompts.normalize_answer(a)} " in f" {normal} " for a in item.answers)
    choice = prompts.normalize_answer(item.choices[item.answer])
    others = [prompts.normalize_answer(c) for i, c in enumerate(item.choices) if i != item.answer]
    letter = _LETTER.match(answer.strip())
    if letter:  # "B", "B.", "(B) quellroot": the letter decides unless the text names another choice
        named = letter.group(2).strip()
        return letter.group(1).upper() == string.ascii_uppercase[item.answer] and (
            not named or not any(o and o in prompts.normalize_answer(named) for o in others))
    return bool(choice) and choice in normal and not any(o and o in normal for o in others)


class Star(SelfDirectedPiece):
    """Rationales that reached the right answer, and rationalisations of the wrong ones, as training examples."""

    name = "star"
    options: StarConfig

    def __init__(self, options: StarConfig | None = None):
        super().__init__(options or StarConfig())

    def study(self, domain, examples):
        from lifelong.training import Example  # lazy: the loop imports the pieces

        items = [item for item in domain.train_items if isinstance(item, QAItem | MCItem)]
        items = items[:self.options.max_items] if self.options.max_items else items
        questions = [question_text(item) for item in items]
        teacher = self.teacher()
        first = [r for (r,) in teacher.generate([self.options.prompt.format(question=q) for q in questions],
                                                PROMPT_NAME, sources=questions)]
        self.records.extend(first)
        right = [is_correct(final_answer(r.text), item) for r, item in zip(first, items, strict=True)]
        chosen = {i: first[i] for i, ok in enumerate(right) if ok}
        wrong = [i for i, ok in enumerate(right) if not ok]
        rationalized = []
        if self.options.rationalize and wrong:
            hinted = teacher.generate([self.options.hint_prompt.format(question=questions[i],
                                                                       answer=right_answer(items[i])) for i in wrong],
                                      HINT_PROMPT_NAME, sources=[questions[i] for i in wrong])
            self.records.extend(r for (r,) in hinted)
            for i, (record,) in zip(wrong, hinted, strict=True):
                if is_correct(final_answer(record.text), items[i]):
                    chosen[i] = record
                    rationalized.append(i)
        order = sorted(chosen)
        kept_records, report = self.filter([chosen[i] for i in order], check_overlap=False)
        kept_ids = [order[i] for i in report.kept]
        rationales = []
        for i in kept_ids:
            record = chosen[i]
            example = Example(prompt=f"Question: {questions[i]}\n", text=record.text.strip() + "\n",
                              source="rationale")
            self.material[example] = record
            rationales.append(example)
        generated = len(first) + (len(wrong) if self.options.rationalize else 0)
        return [*examples, *rationales], {
            "generated": generated, **report.counts(), "items": len(items), "right_first": sum(right),
            "rationalized": len([i for i in rationalized if i in kept_ids]),
            "gap_rate": len(wrong) / len(items) if items else None,
            "kept_texts": [e.text for e in rationales]}
