"""Atomic files and run checkpoints.

A checkpoint is a folder written under a temporary name and renamed into place, then named in
`state.json` (itself replaced atomically). A reader trusts only what `state.json` names, so a
run killed mid-write never leaves a partial checkpoint that a resume would read.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

STATE_FILE = "state.json"
CHECKPOINTS = "checkpoints"


def write_atomic(path: Path, text: str) -> None:
    """Write text to `path` so readers see the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_state(out_dir: Path) -> dict | None:
    path = out_dir / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def save_checkpoint(out_dir: Path, name: str, model: torch.nn.Module, pieces_state: dict,
                    progress: dict, keep: int) -> Path:
    """Save model weights and pieces' state as checkpoints/<name>, then point state.json at it."""
    root = out_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(pieces_state, tmp / "pieces.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(out_dir / STATE_FILE, {**progress, "checkpoint": f"{CHECKPOINTS}/{name}"})
    _prune(root, keep, current=final)
    return final


def load_checkpoint(out_dir: Path, state: dict, model: torch.nn.Module) -> dict:
    """Load the weights state.json names into `model`; returns the pieces' state."""
    folder = out_dir / state["checkpoint"]
    load_model(model, str(folder / "model.safetensors"))
    return torch.load(folder / "pieces.pt", weights_only=False)


def _prune(root: Path, keep: int, current: Path) -> None:
    """Keep the newest `keep` checkpoints (the current one always) and remove stale temp folders."""
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in [p for p in folders if p.name.startswith(".")]:
        shutil.rmtree(stale, ignore_errors=True)
    finished = [p for p in folders if not p.name.startswith(".") and p != current]
    for old in finished[:max(0, len(finished) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
