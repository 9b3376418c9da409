"""Options of the `full_finetune` piece (lifelong/pieces/full_finetune.py):
the `full_finetune:` section of the run config."""

from __future__ import annotations

from lifelong.options.base import Section


class FullFinetuneConfig(Section):
    pass
