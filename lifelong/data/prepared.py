"""Streams built by `lifelong data prepare` into the cache (see lifelong.data.prepare)."""

from __future__ import annotations

from pathlib import Path

from lifelong.files import cache_dir  # noqa: F401  (lives in files.py, below the models that cache there too)

# Streams that `lifelong data prepare` can build, by name.
PREPARABLE: tuple[str, ...] = ("five-domains", "five-domains-medium", "five-domains-large")

# The run settings each prepared stream recommends (its stream.yaml's `settings`; precedence: defaults <
# stream < condition preset < config file < flags). The small stream is sized for `lifelong run` with
# defaults to finish in about 15 minutes on 2 CPU cores (docs/data.md): 2 epochs of length-grouped
# batches, 80 of each domain's 200 eval questions (and of the canary's 120) scored per row, 30 exam
# questions scored before training and at the end, 4 documents' perplexity, bfloat16 autocast where the
# hardware has it. Practice (a piece of condition e) keeps one question a sentence, a definition's
# "What is the medical term for X?", and no reverse restatements ("Y is the medical term for X."; the
# stream asks one direction only): all of its rules made 4-5x d's training tokens a round. Condition e
# trains 2 epochs here, not its preset's 3: with 3 it learned 0.657 against a's 0.408 but took 2.08x d's
# wall time (docs/documents_only.md, "Sixth session"); `by_condition` ranks above the preset.
RECOMMENDED_SETTINGS: dict[str, dict] = {
    "five-domains": {"training": {"epochs": 2, "group_by_length": True}, "mixed_precision": "auto",
                     "evaluation": {"max_items": 80, "exam_max_items": 30, "exam_rows": "ends", "perplexity_docs": 4},
                     "practice": {"max_per_sentence": 1, "restatement_texts": False},
                     "by_condition": {"e": {"training": {"epochs": 2}}}},
    "five-domains-medium": {"training": {"epochs": 3}, "mixed_precision": "auto"},
    "five-domains-large": {"training": {"epochs": 3}, "mixed_precision": "auto"},
}


def streams_dir() -> Path:
    return cache_dir() / "streams"


def available_streams() -> dict[str, Path]:
    """Prepared streams: a folder counts only once its stream.yaml has been written (last)."""
    root = streams_dir()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "stream.yaml").is_file()}
