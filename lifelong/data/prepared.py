"""Streams built by `lifelong data prepare` into the cache (see lifelong.data.prepare)."""

from __future__ import annotations

import os
from pathlib import Path

# Streams that `lifelong data prepare` can build, by name.
PREPARABLE: tuple[str, ...] = ("five-domains", "five-domains-medium", "five-domains-large")


def cache_dir() -> Path:
    """Where prepared data and converted models are cached (LIFELONG_CACHE overrides)."""
    root = os.environ.get("LIFELONG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lifelong")
    return Path(root)


def streams_dir() -> Path:
    return cache_dir() / "streams"


def available_streams() -> dict[str, Path]:
    """Prepared streams: a folder counts only once its stream.yaml has been written (last)."""
    root = streams_dir()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "stream.yaml").is_file()}
