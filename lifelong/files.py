"""Small file helpers shared by checkpoints, reports, model caching and data preparation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from lifelong.errors import LifelongError


def write_atomic(path: Path, text: str) -> Path:
    """Write text so readers see the old file or the new one, never a mix (temp file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data: dict) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where prepared data and converted models are cached (LIFELONG_CACHE overrides)."""
    root = os.environ.get("LIFELONG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lifelong")
    return Path(root)


def build_atomically(target: Path, build: Callable[[Path], None], marker: str = "stream.yaml") -> None:
    """Run `build` into a fresh temporary folder beside `target`, then rename it into place; `build` must
    write `marker` (last), the file whose presence says the folder is complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        build(temp)
        if not (temp / marker).is_file():
            raise LifelongError(f"building {target.name} wrote no {marker}")
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        temp.rename(target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
