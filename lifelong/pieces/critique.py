"""SELF critique and revise: a filter over the material the other self-directed pieces wrote.

Put `critique` after the pieces that generate (`study_notes`, `gap_detection`, `star`). For every
example they made this round, the teacher reads the text beside its source (the document, or
the question) and says whether it is correct (config `critique.prompt`, a reply starting with
yes or no). Accepted texts stay. A rejected text is revised (`critique.revise_prompt`, given the
critique) and the revision replaces it if it passes the filters; otherwise, or with
`revise: false`, or when the text is a prompt + answer pair (gap questions, rationales), it is
dropped. A critique that says neither yes nor no counts as `critique.unclear` (keep or drop).
Real examples (documents, practice questions) are never critiqued.

Source: Lu et al. 2023, "SELF: Self-Evolution with Language Feedback" (self-feedback, then
self-refinement, as a filter on the model's own training data).
"""

from __future__ import annotations

import re

from lifelong.config import CritiqueConfig
from lifelong.errors import ConfigError
from lifelong.selfdirected.base import SelfDirectedPiece

PROMPT_NAME, REVISE_PROMPT_NAME = "critique", "critique_revise"
_YES = re.compile(r"^\W*(yes|correct|true|right|accurate)\b", re.I)
_NO = re.compile(r"^\W*(no|incorrect|false|wrong|not correct|inaccurate)\b", re.I)


def verdict(critique: str) -> bool | None:
    """True when the critique starts with yes (or correct), False with no (or incorrect), else None."""
    if _NO.match(critique):
        return False
    if _YES.match(critique):
        return True
    return None


class Critique(SelfDirectedPiece):
    """Critique each generated text against its source; keep, revise or drop it."""

    name = "critique"
    options: CritiqueConfig

    def __init__(self, options: CritiqueConfig | None = None):
        super().__init__(options or CritiqueConfig())

    def attach(self, context) -> None:
        super().attach(context)
        mine = next(i for i, piece in enumerate(context.pieces) if piece is self) if self in context.pieces else -1
        if mine >= 0 and not any(isinstance(p, SelfDirectedPiece) for p in context.pieces[:mine]):
            raise ConfigError("key 'pieces': 'critique' filters generated material; put it after a piece "
                              "that generates (study_notes, gap_detection, star)")

    def generated_material(self) -> dict:
        """Example -> Generated, from the self-directed pieces that ran before this one this round."""
        material = {}
        for piece in self.context.pieces:
            if piece is self:
                break
            if isinstance(piece, SelfDirectedPiece):
                material.update(piece.material)
        return material

    def study(self, domain, examples):
        from lifelong.training import Example  # lazy: the loop imports the pieces

        material = self.generated_material()
        checked = [e for e in examples if e in material]
        teacher = self.teacher()
        critiques = [r for (r,) in teacher.generate(
            [self.options.prompt.format(source=material[e].source, text=(e.prompt + e.text).strip()) for e in checked],
            PROMPT_NAME, sample=False, max_new_tokens=self.options.critique_tokens,
            sources=[material[e].source for e in checked])]
        self.records.extend(critiques)
        verdicts = [verdict(c.text) for c in critiques]
        unclear_keeps = self.options.unclear == "keep"
        rejected = [i for i, v in enumerate(verdicts) if v is False or (v is None and not unclear_keeps)]
        revisable = [i for i in rejected if self.options.revise and not checked[i].prompt]
        replacements: dict = {}
        if revisable:
            revised = [r for (r,) in teacher.generate(
                [self.options.revise_prompt.format(source=material[checked[i]].source, text=checked[i].text,
                                                   critique=critiques[i].text) for i in revisable],
                REVISE_PROMPT_NAME, sample=False, sources=[material[checked[i]].source for i in revisable])]
            _, report = self.filter(revised, real=[e.text for i, e in enumerate(checked) if i not in rejected])
            for j in report.kept:
                old = checked[revisable[j]]
                new = Example(text=revised[j].text, prompt=old.prompt, source=old.source)
                replacements[old] = new
                self.material[new] = revised[j]
        dropped = {checked[i] for i in rejected} - set(replacements)
        result = []
        for example in examples:
            if example in replacements:
                result.append(replacements[example])
            elif example not in dropped:
                result.append(example)
                if example in material:
                    self.material[example] = material[example]
        return result, {"generated": len(checked), "kept": len(checked) - len(dropped),
                        "rejected": sum(v is False for v in verdicts), "unclear": sum(v is None for v in verdicts),
                        "revised": len(replacements), "dropped": len(dropped),
                        "kept_texts": [e.text for e in result if e in self.material]}
