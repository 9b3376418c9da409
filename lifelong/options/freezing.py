"""Options of the `freezing` piece (lifelong/pieces/freezing.py):
the `freezing:` section of the run config."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from lifelong.options.base import Section


class FreezingConfig(Section):
    """Selective freezing: the bottom n transformer layers and/or parameters matching `names`."""

    bottom_n: int = Field(0, ge=0, description="freeze transformer layers 0..n-1 (with LoRA: their adapters)")
    names: list[str] = Field([], description="a parameter is frozen if a pattern is a substring of its name "
                                             "or a regular expression matching its whole name")
    embeddings: bool = Field(False, description="also freeze the embeddings (tied embeddings: the head too)")

    @field_validator("names")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({error})") from None
        return patterns
