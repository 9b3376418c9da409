"""Registry of pieces: the names config uses, and how to build each from the run config.

`from lifelong.pieces import PIECES, build_pieces` reads them from here (lifelong/pieces/__init__.py
imports this module only when they are asked for, so importing `lifelong.pieces.base` loads no piece)."""

from __future__ import annotations

from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece
from lifelong.pieces.consolidation import Consolidation
from lifelong.pieces.critique import Critique
from lifelong.pieces.diagnostics import Diagnostics
from lifelong.pieces.distill import Distill
from lifelong.pieces.ewc import Ewc
from lifelong.pieces.fast_adapters import FastAdapters
from lifelong.pieces.freezing import Freezing
from lifelong.pieces.full_finetune import FullFinetune
from lifelong.pieces.gap_detection import GapDetection
from lifelong.pieces.layerwise_lr import LayerwiseLr
from lifelong.pieces.lora import Lora
from lifelong.pieces.practice import Practice
from lifelong.pieces.replay import Replay
from lifelong.pieces.restem import Restem
from lifelong.pieces.sam import Sam
from lifelong.pieces.self_test import SelfTest
from lifelong.pieces.star import Star
from lifelong.pieces.study_notes import StudyNotes
from lifelong.pieces.unfreezing import Unfreezing

PIECES: dict[str, type[Piece]] = {
    cls.name: cls for cls in (FullFinetune, Lora, LayerwiseLr, Unfreezing, Freezing, Ewc, Replay, Sam,
                              Diagnostics, Restem, SelfTest, FastAdapters, Consolidation, StudyNotes,
                              GapDetection, Star, Critique, Practice, Distill)
}


def build_pieces(names: list[str], config) -> list[Piece]:
    """Instantiate pieces by name, each with its own config section (`config.<name>`)."""
    pieces = []
    for name in names:
        if name not in PIECES:
            raise ConfigError(f"key 'pieces': unknown piece {name!r} (known: {', '.join(sorted(PIECES))})")
        pieces.append(PIECES[name](getattr(config, name, None)))
    return pieces
