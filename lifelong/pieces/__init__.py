"""The pieces: one technique per module (lifelong/pieces/<name>.py), the interface in `base.py`, the registry
(`PIECES`, `build_pieces`) in `registry.py`.

This file imports nothing at load: importing `lifelong.pieces.base` (as the training loop does) must not
load every piece, which import the loop. `PIECES` and `build_pieces` are loaded on first use.
"""

from __future__ import annotations

from typing import Any

_REGISTRY_NAMES = ("PIECES", "build_pieces")


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from lifelong.pieces import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'lifelong.pieces' has no attribute {name!r}")
