"""Options of the `star` piece (lifelong/pieces/star.py):
the `star:` section of the run config."""

from __future__ import annotations

from pydantic import Field

from lifelong.options.base import Section


class StarConfig(Section):
    """STaR: rationales for the domain's split=train questions; wrong ones rationalised with the answer."""

    prompt: str = Field("{question}\nThink step by step, then give the final answer on the last line as "
                        "'Answer: <answer>'.", description="{question}: the question (with its choices for mc)")
    hint_prompt: str = Field("{question}\nThe correct answer is {answer}. Explain step by step why, then give "
                             "the final answer on the last line as 'Answer: <answer>'.",
                             description="rationalisation: {question} and {answer}")
    rationalize: bool = Field(True, description="rationalise the questions answered wrongly, with the answer as hint")
    max_items: int | None = Field(None, ge=1, description="cap on questions per domain")
