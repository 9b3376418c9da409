"""Atomic files and run checkpoints.

A checkpoint is a folder written under a temporary name and renamed into place, then named in
`state.json` (itself replaced atomically). A reader trusts only what `state.json` names, so a
run killed mid-write never leaves a partial checkpoint that a resume would read. A mid-domain
checkpoint also holds `training.pt`: the loop's optimizer, scheduler and random state and the
step reached.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from lifelong.errors import DiskFullError
from lifelong.files import write_json

STATE_FILE = "state.json"
CHECKPOINTS = "checkpoints"
TRAINING_FILE = "training.pt"


def read_state(out_dir: Path) -> dict | None:
    path = out_dir / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: OSError) -> bool:
    return error.errno in DISK_FULL


def save_checkpoint(out_dir: Path, name: str, model: torch.nn.Module, pieces_state: dict,
                    state: dict, keep: int, training: dict | None = None) -> Path:
    """Save checkpoints/<name> (weights, pieces' state, optionally the loop's), then point state.json at it.

    `state` is what state.json records besides the checkpoint. The newest `keep` checkpoints stay on
    disk (in the order state.json lists them); every other folder under checkpoints/ is removed.
    A full disk raises DiskFullError and leaves the previous checkpoint and state.json as they were.
    """
    try:
        final = _write_folder(out_dir / CHECKPOINTS, name, model, pieces_state, training)
        history = [n for n in (read_state(out_dir) or {}).get("checkpoints", []) if n != name]
        history = [*history, name][-keep:]
        write_json(out_dir / STATE_FILE, {**state, "checkpoint": f"{CHECKPOINTS}/{name}", "checkpoints": history})
    except OSError as error:
        if not is_disk_full(error):
            raise
        last = (read_state(out_dir) or {}).get("checkpoint", "none yet")
        raise DiskFullError(f"{out_dir}: disk full while writing checkpoint {name} ({error.strerror}); the last "
                            f"checkpoint ({last}) is intact: free space and run the same command to resume") from None
    _prune(out_dir / CHECKPOINTS, keep=set(history))
    return final


def _write_folder(root: Path, name: str, model: torch.nn.Module, pieces_state: dict, training: dict | None) -> Path:
    """Write the checkpoint under a temporary name and rename it into place."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(pieces_state, tmp / "pieces.pt")
        if training is not None:
            torch.save(training, tmp / TRAINING_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_checkpoint(out_dir: Path, state: dict, model: torch.nn.Module,
                    before_weights: Callable[[dict], None] | None = None) -> dict:
    """Load the weights state.json names into `model`; returns the pieces' state.

    `before_weights(pieces_state)` runs before the weights load: pieces that add modules (one adapter per
    episode) re-create them there, so the saved weights find their places.
    """
    folder = out_dir / state["checkpoint"]
    pieces_state = torch.load(folder / "pieces.pt", weights_only=False)
    if before_weights is not None:
        before_weights(pieces_state)
    load_model(model, str(folder / "model.safetensors"))
    return pieces_state


def load_training(out_dir: Path, state: dict) -> dict | None:
    """The training loop's state saved with a mid-domain checkpoint (None for a domain checkpoint)."""
    path = out_dir / state["checkpoint"] / TRAINING_FILE
    return torch.load(path, weights_only=False) if path.is_file() else None


def _prune(root: Path, keep: set[str]) -> None:
    """Remove every checkpoint folder not in `keep`, and temporary folders left by killed writes."""
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
