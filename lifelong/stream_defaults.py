"""What a stream lacks, the built-in general set supplies (lifelong/data/general.py).

A user's stream is usually a folder of documents: no core set to replay, no canary to watch. With
the default config (`general.core`, `general.canary`) such a stream gets
- the general core as its core set, so replay and the self-test's repairs always have material;
- a canary: the general candidates that the run's base model knows before any training (answers
  right, with its answer's tokens at a geometric-mean probability of at least
  `general.canary_min_prob`), `general.canary_size` of them, selected once per model and cached
  (key: model id, weights revision, candidate set, scoring prompt and margin), so a second run
  reads them back. The event's `correct` counts the candidates that qualified.
Call `complete_stream` after the base model is loaded and before any trained weights are: the canary
is about what the base model knew. A `general` event in log.jsonl says what was supplied.
"""

from __future__ import annotations

import dataclasses
import hashlib

from lifelong.config import RunConfig
from lifelong.data import general
from lifelong.data.stream import Stream
from lifelong.evaluation import prompts

CANARY_SEED = 0  # one canary per model, whatever the run's seed: runs of different seeds stay comparable


def model_revision(model) -> str:
    """The hub commit of the weights when known, else a fingerprint of their names, shapes and first values."""
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return str(commit)
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def complete_stream(stream: Stream, config: RunConfig, model, evaluator) -> tuple[Stream, dict | None]:
    """`stream`, with the general core and a canary for `model` where it has none (config.general), and the
    `general` event for log.jsonl that says what was supplied (None: nothing was)."""
    wants_core = config.general.core and stream.core is None
    wants_canary = config.general.canary and stream.canary is None
    if not (wants_core or wants_canary):
        return stream, None
    general_set = general.load_general(progress=config.evaluation.progress)
    event: dict = {"event": "general", "folder": str(general_set.folder)}
    core, canary = stream.core, stream.canary
    if wants_core:
        core = general_set.core
        event["core"] = {"documents": len(core.documents), "questions": len(core.train_items)}
    if wants_canary:
        canary, event["canary"] = _canary(general_set, config, model, evaluator)
    return dataclasses.replace(stream, core=core, canary=canary), event


def _canary(general_set: general.GeneralSet, config: RunConfig, model, evaluator):
    min_prob = config.general.canary_min_prob
    scoring = {**prompts.describe(config.evaluation.prompt), "max_new_tokens": config.evaluation.max_new_tokens,
               **({"min_prob": min_prob} if min_prob else {})}
    revision = model_revision(model)
    key = general.canary_key(config.model, revision, general_set.candidates_sha256, scoring,
                             config.general.canary_size, CANARY_SEED)

    def is_correct(items):
        return evaluator.knows(model, items, min_prob, desc="canary selection")

    canary, info = general.canary_for(general_set, key, is_correct, config.general.canary_size, CANARY_SEED,
                                      meta={"model": config.model, "revision": revision})
    return canary, {k: info[k] for k in ("key", "candidates", "correct", "items", "cached")}
