"""`lifelong learn`: keep teaching one model new documents, one call (an episode) at a time.

Everything lives in the state folder (`--state DIR`):

    config.yaml                       the config of the first call; later calls must not change it
    state.json                        which checkpoint is current, and the history of every call
    checkpoints/episode-<n>/          model.safetensors (base + episode adapters), pieces.pt (adapters'
                                      routing texts, the replay buffer, pending episodes, Fisher, sleeps)
    history.json, results.json        views of the history (rewritten every call); report.html: the dashboard
    log.jsonl                         every training point, evaluation, sleep and rollback
    .lock                             held while a call runs: a second call on the folder is refused

A call loads the current checkpoint, reads the documents into one episode, runs `Learner.learn` with
the configured pieces (by default the two learning systems plus whichever self-teaching and
self-test pieces are installed), consolidates when due (or with `--sleep`), scores the canary and
every episode's own eval questions, and only then writes a new checkpoint (a folder written under a
temporary name and renamed) and points state.json at it (an atomic replace). A call interrupted at
any point leaves the previous state as it was.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.console import Console
from safetensors.torch import load_model as load_weights

from lifelong import checkpoint
from lifelong.config import RunConfig, load_config, load_saved_config, save_config
from lifelong.data.records import Document, Domain, load_domain, parse_record, record_to_json
from lifelong.data.stream import load_stream
from lifelong.errors import ConfigError, InputError, LifelongError
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.experiment import RunLog
from lifelong.files import write_json
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import PIECES, build_pieces
from lifelong.precision import set_threads
from lifelong.report import write_run_report
from lifelong.stream_defaults import complete_stream
from lifelong.training import seed_everything

console = Console(stderr=True)

DOC_SUFFIXES = (".txt", ".md", ".jsonl")
CHUNK_CHARS = 1000  # about 250 tokens: one training example at the default max_length 256
SELF_TEACHING = ("gap_detection", "study_notes")  # issue-5 pieces, used when installed
SELF_TEST = ("self_test",)
TWO_SYSTEMS = ["fast_adapters", "replay", "practice", "distill", "consolidation"]  # preset f's pieces


class StateLocked(LifelongError):
    """Another `lifelong learn` holds the state folder."""


# ---- documents ------------------------------------------------------------------------------
def _chunks(text: str) -> list[str]:
    """Paragraphs (blank-line separated), joined up to CHUNK_CHARS; a longer paragraph stays whole."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    chunks: list[str] = []
    for paragraph in paragraphs:
        if chunks and len(chunks[-1]) + len(paragraph) + 1 <= CHUNK_CHARS:
            chunks[-1] += "\n" + paragraph
        else:
            chunks.append(paragraph)
    return chunks


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOC_SUFFIXES)
        if not files:
            raise InputError(path, f"folder holds no {', '.join(DOC_SUFFIXES)} files")
        return files
    if not path.exists():
        raise InputError(path, "document path not found")
    if path.suffix.lower() not in DOC_SUFFIXES:
        raise InputError(path, f"unsupported document type (use {', '.join(DOC_SUFFIXES)} files or a folder)")
    return [path]


def read_documents(paths: list[Path], name: str) -> Domain:
    """One episode from files and folders: .txt/.md are cut into paragraph chunks, .jsonl is our record format."""
    if not paths:
        raise InputError("--docs", "give at least one file or folder")
    episode = Domain(name=name)
    for path in (f for p in paths for f in _files(Path(p))):
        if path.suffix.lower() == ".jsonl":
            domain = load_domain(path)
            episode.documents += domain.documents
            episode.items += domain.items
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            chunks = _chunks(text)
            if not chunks:
                raise InputError(path, "document is empty")
            episode.documents += [Document(chunk) for chunk in chunks]
    return episode


# ---- the lock -------------------------------------------------------------------------------
@contextmanager
def state_lock(state_dir: Path):
    """Holds DIR/.lock (flock, released by the OS if the process dies); a second holder is refused."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ".lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole call
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StateLocked(f"{state_dir}: in use by another `lifelong learn` (pid {holder}); "
                              "wait for it to finish, then run this call again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


# ---- config -----------------------------------------------------------------------------------
def default_pieces() -> list[str]:
    """The two systems, plus the self-teaching and self-test pieces that this installation has."""
    missing = [name for name in (*SELF_TEACHING, *SELF_TEST) if name not in PIECES]
    if missing:
        console.print(f"[yellow]note[/]: piece(s) {', '.join(missing)} not available; learning from the "
                      "documents as given" + ("" if "self_test" in PIECES else ", with the sleep's own canary test"))
    # self_test reviews the fast round before consolidation sleeps (both act in the `review` hook, in list order)
    return ([n for n in SELF_TEACHING if n in PIECES] + TWO_SYSTEMS[:-1] + [n for n in SELF_TEST if n in PIECES]
            + TWO_SYSTEMS[-1:])


def learn_config(state_dir: Path, config_path: Path | None, overrides: dict) -> RunConfig:
    """The state's config; on the first call: defaults < preset f < CONFIG < flags, then frozen."""
    saved = state_dir / "config.yaml"
    if saved.is_file():
        config = load_saved_config(saved)
        if config_path is not None or any(getattr(config, k) != v for k, v in overrides.items()
                                          if not isinstance(v, dict)):
            raise ConfigError(f"{state_dir}: holds a learner made with {saved}; a later call takes no CONFIG "
                              "or --model (use a new --state folder to change them)")
        return config
    config = load_config(config_path, {"condition": "f", **overrides})
    if config.pieces == TWO_SYSTEMS and not _pieces_set_by_user(config_path, overrides):
        config.pieces = default_pieces()
    return config


def _pieces_set_by_user(config_path: Path | None, overrides: dict) -> bool:
    from lifelong.config import _read_yaml

    return "pieces" in overrides or (config_path is not None and "pieces" in _read_yaml(Path(config_path)))


# ---- the learner ----------------------------------------------------------------------------------
class ContinualLearner:
    """One model taught episode by episode, kept in a state folder."""

    def __init__(self, state_dir: Path, config: RunConfig):
        self.state_dir = state_dir
        self.config = config
        self.log = RunLog(state_dir / "log.jsonl")
        self.state = checkpoint.read_state(state_dir) or {}
        self.history: list[dict] = list(self.state.get("history", []))
        self.episodes_eval: dict[str, list[dict]] = dict(self.state.get("episodes_eval", {}))
        self.canary0 = self.state.get("canary0")
        self.stream = load_stream(config.stream)
        self.learner = self._build()

    def _build(self) -> Learner:
        cfg = self.config
        set_threads(cfg.threads)
        seed_everything(cfg.seed + len(self.history))
        model, tokenizer = load_model(cfg.model, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed,
                                      mixed_precision=cfg.mixed_precision)
        evaluator = Evaluator(cfg.evaluation, tokenizer, seed=cfg.seed)
        self.stream, supplied = complete_stream(self.stream, cfg, model, evaluator)  # before trained weights
        if supplied and not self.state:
            self.log(supplied)
        learner = Learner(model, tokenizer, build_pieces(cfg.pieces or [], cfg), cfg, log=self.log,
                          core=self.stream.core, stream=self.stream, evaluator=evaluator)
        if self.state.get("checkpoint"):
            folder = self.state_dir / self.state["checkpoint"]
            learner.load_pieces_state(torch.load(folder / "pieces.pt", weights_only=False))  # re-creates adapters
            load_weights(learner.model, str(folder / "model.safetensors"))
        return learner

    def piece(self, name: str):
        return next((p for p in self.learner.pieces if p.name == name), None)

    def learn(self, docs: list[Path], sleep: bool = False) -> dict:
        number = len(self.history) + 1
        episode = read_documents(docs, f"episode-{number}") if docs else None
        if episode is None and not sleep:
            raise InputError("--docs", "give documents to learn, or --sleep to consolidate")
        if self.canary0 is None and self.stream.canary is not None:
            self.canary0 = self._score(self.stream.canary, "canary", row=0)
        entry: dict = {"episode": number if episode else None, "docs": [str(d) for d in docs], "time": time.time()}
        if episode is not None:
            entry.update(self._learn_episode(episode))
        if sleep:
            consolidation = self.piece("consolidation")
            if consolidation is None:
                raise ConfigError("--sleep: the learner has no 'consolidation' piece in its config's pieces")
            entry["sleep"] = consolidation.sleep()
        entry["adapters"] = list(getattr(self.piece("fast_adapters"), "adapters", []))
        entry["canary"] = self._score(self.stream.canary, "canary", len(self.history) + 1) \
            if self.stream.canary else None
        entry["scores"] = {name: self._score(Domain(name, items=[_item(r) for r in items]), name,
                                             len(self.history) + 1)
                           for name, items in self.episodes_eval.items()}
        self.history.append(entry)
        self._save()
        return entry

    def _learn_episode(self, episode: Domain) -> dict:
        if episode.eval_items:
            self.episodes_eval[episode.name] = [record_to_json(item) for item in episode.eval_items]
        sleeps_before = len(getattr(self.piece("consolidation"), "sleeps", []))
        started = time.perf_counter()
        console.print(f"[bold]Learning[/] {episode.name}: {len(episode.documents)} documents, "
                      f"{len(episode.train_items)} practice questions")
        stats = self.learner.learn(episode, seed=self.config.seed * 1000 + len(self.history) + 1)
        sleeps = getattr(self.piece("consolidation"), "sleeps", [])[sleeps_before:]
        return {"name": episode.name, "documents": len(episode.documents), "steps": stats.steps,
                "train_s": round(time.perf_counter() - started, 1), "sleep": sleeps[-1] if sleeps else None}

    def _score(self, domain: Domain, name: str, row: int) -> float | None:
        if not domain.eval_items:
            return None
        score = self.learner.evaluator.score_domain(self.learner.model, domain, desc=f"eval {name}").score
        self.log({"event": "eval", "row": row, "domain": name, "score": score,
                  "items": len(self.learner.evaluator.sample(domain.eval_items))})
        return score

    # ---- saving ------------------------------------------------------------------------------------
    def _save(self) -> None:
        name = f"episode-{len(self.history)}"
        save_config(self.config, self.state_dir / "config.yaml")
        state = {"history": self.history, "episodes_eval": self.episodes_eval, "canary0": self.canary0}
        checkpoint.save_checkpoint(self.state_dir, name, self.learner.model, self.learner.pieces_state(), state, keep=1)
        self.log({"event": "checkpoint", "name": name})
        write_json(self.state_dir / "history.json", {"history": self.history})
        results = self.results()
        write_json(self.state_dir / "results.json", results)
        write_run_report(self.state_dir, results)

    def results(self) -> dict:
        """results.json for the dashboard: one row per call over the episodes that brought eval questions."""
        names = list(self.episodes_eval)
        rows = [[None] * len(names)] + [[h["scores"].get(n) for n in names] for h in self.history]
        return {"model": self.config.model, "condition": "learn", "pieces": self.config.pieces,
                "teacher": self.config.teacher or self.config.model, "stream": self.stream.name,
                "domains": names, "accuracy_matrix": rows,
                "canary": [self.canary0] + [h["canary"] for h in self.history] if self.stream.canary else None,
                "metrics": None, "complete": False, "steps": [h.get("steps") for h in self.history],
                "history": self.history, "prompts": prompts.describe(self.config.evaluation.prompt),
                "config": self.config.model_dump(mode="json")}


def _item(record: dict):
    return parse_record(record, Path("state.json"), 0)


def learn(docs: list[Path], state_dir: Path, config_path: Path | None = None, overrides: dict | None = None,
          sleep: bool = False) -> dict:
    """One `lifelong learn` call: lock the state, learn the documents, save; returns the call's history entry."""
    state_dir = Path(state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        raise InputError(state_dir, "state folder is a file")
    for path in docs:
        _files(Path(path))  # bad paths fail before the model loads
    with state_lock(state_dir):
        config = learn_config(state_dir, config_path, overrides or {})
        return ContinualLearner(state_dir, config).learn(list(docs), sleep=sleep)
