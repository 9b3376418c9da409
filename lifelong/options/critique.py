"""Options of the `critique` piece (lifelong/pieces/critique.py):
the `critique:` section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lifelong.options.base import Section


class CritiqueConfig(Section):
    """SELF: the teacher critiques each generated text against its source, and revises or drops it."""

    prompt: str = Field("Source: {source}\n\nText: {text}\n\nIs everything the text says correct according "
                        "to the source? Reply 'yes' or 'no', then say what is wrong.",
                        description="{source}: the document or question, {text}: the generated text")
    revise_prompt: str = Field("Source: {source}\n\nText: {text}\n\nProblems: {critique}\n\nRewrite the "
                               "text so that it is correct according to the source. Reply with the text only.",
                               description="{source}, {text}, {critique}")
    revise: bool = Field(True, description="replace a rejected text by its revision (if that passes the "
                         "filters) instead of dropping it")
    unclear: Literal["keep", "drop"] = Field("keep", description="a critique that says neither yes nor no")
    critique_tokens: int = Field(48, ge=1, le=1024)
