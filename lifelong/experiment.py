"""Experiment: runs a learner over a stream and writes results (DESIGN §2, §4).

Row 0 of the accuracy matrix is scored before training, row i after learning domain i. After
every row the partial results, the report and a checkpoint are written, so a killed run
resumes at the next domain with the earlier rows intact.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lifelong import checkpoint, metrics
from lifelong.config import RunConfig, save_config
from lifelong.data.records import Domain
from lifelong.data.stream import Stream, load_stream
from lifelong.errors import ConfigError, LifelongError
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces
from lifelong.report import write_run_report

console = Console(stderr=True)

# Keys that do not change what a run computes, so a resume may differ in them.
NON_SEMANTIC_KEYS = ("out", "checkpoint_keep")


class RunLog:
    """log.jsonl: one line per training log point and per evaluation."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, event: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")


def config_fingerprint(config: RunConfig) -> str:
    data = config.model_dump(mode="json", exclude=set(NON_SEMANTIC_KEYS))
    data["evaluation"].pop("progress", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def default_out_dir(config: RunConfig) -> Path:
    stream = Path(config.stream).stem if config.stream else "stream"
    return Path("runs") / f"{stream}-{config.condition}-seed{config.seed}"


@dataclass
class Progress:
    """What a run has finished so far; saved in state.json with every checkpoint."""

    matrix: list[list[float]] = field(default_factory=list)
    canary: list[float | None] = field(default_factory=list)
    curves: list[list[tuple[int, float]]] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    timing: dict = field(default_factory=lambda: {"train_s": [], "eval_s": []})

    @property
    def domains_done(self) -> int:
        return max(len(self.matrix) - 1, 0)


class Experiment:
    def __init__(self, config: RunConfig, out_dir: Path | None = None, stream: Stream | None = None):
        self.config = config
        self.out_dir = Path(out_dir or config.out or default_out_dir(config))
        self.stream = stream or load_stream(config.stream)
        self.progress = Progress()

    # ---- setup ----------------------------------------------------------------------
    def _prepare_out_dir(self) -> dict | None:
        """Create the output folder; return the resumable state if it holds this run."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise LifelongError(f"{self.out_dir}: output folder is a file")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = checkpoint.read_state(self.out_dir)
        if state and state.get("fingerprint") != config_fingerprint(self.config):
            raise ConfigError(f"{self.out_dir}: holds a run with a different config; "
                              "choose another --out or delete the folder")
        return state

    def _build(self) -> tuple[Learner, Evaluator]:
        cfg = self.config
        pieces = build_pieces(cfg.pieces or [], cfg)
        model, tokenizer = load_model(cfg.model, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed)
        learner = Learner(model, tokenizer, pieces, cfg, log=self.log)
        learner.core = self.stream.core
        return learner, Evaluator(cfg.evaluation, tokenizer, seed=cfg.seed)

    # ---- the run --------------------------------------------------------------------
    def run(self) -> dict:
        state = self._prepare_out_dir()
        self.log = RunLog(self.out_dir / "log.jsonl")
        save_config(self.config, self.out_dir / "config.yaml")
        learner, evaluator = self._build()
        if state:
            self._resume(state, learner)
        else:
            self.log({"event": "start", "model": self.config.model, "condition": self.config.condition,
                      "domains": self.stream.domain_names, "seed": self.config.seed})
            self._score_row(learner, evaluator, row=0)
        for index in range(self.progress.domains_done, len(self.stream.domains)):
            self._learn_domain(learner, evaluator, index)
        results = self.results()
        checkpoint.write_json(self.out_dir / "results.json", results)
        write_run_report(self.out_dir, results)
        self.log({"event": "done", "metrics": results["metrics"]})
        return results

    def _resume(self, state: dict, learner: Learner) -> None:
        self.progress = Progress(**state["progress"])
        self.progress.curves = [[tuple(point) for point in curve] for curve in self.progress.curves]
        pieces_state = checkpoint.load_checkpoint(self.out_dir, state, learner.model)
        learner.load_pieces_state(pieces_state)
        done = self.progress.domains_done
        console.print(f"[bold]Resuming[/] {self.out_dir}: {done} of {len(self.stream.domains)} domains done")
        self.log({"event": "resume", "domains_done": done})

    def _learn_domain(self, learner: Learner, evaluator: Evaluator, index: int) -> None:
        domain = self.stream.domains[index]
        console.print(f"[bold]Learning[/] {domain.name} ({index + 1}/{len(self.stream.domains)})")
        curve = [(0, self.progress.matrix[index][index])]

        def score_in_domain(step: int) -> None:
            score = evaluator.score_domain(learner.accelerator.unwrap_model(learner.model), domain).score
            curve.append((step, score))
            self.log({"event": "curve", "domain": domain.name, "step": step, "score": score})

        started = time.perf_counter()
        stats = learner.learn(domain, seed=self.config.seed * 1000 + index + 1, on_checkpoint=score_in_domain)
        self.progress.timing["train_s"].append(round(time.perf_counter() - started, 2))
        self.progress.steps.append(stats.steps)
        self.progress.curves.append(curve)
        self._score_row(learner, evaluator, row=index + 1)

    def _score_row(self, learner: Learner, evaluator: Evaluator, row: int) -> None:
        started = time.perf_counter()
        model = learner.model
        after = "before" if row == 0 else self.stream.domains[row - 1].name
        scores = [self._score(evaluator, model, domain, row, after) for domain in self.stream.domains]
        canary = self._score(evaluator, model, self.stream.canary, row, after) if self.stream.canary else None
        self.progress.matrix.append(scores)
        self.progress.canary.append(canary)
        self.progress.timing["eval_s"].append(round(time.perf_counter() - started, 2))
        self._show_row(row, after, scores, canary)
        self._save(learner, row)

    def _score(self, evaluator: Evaluator, model, domain: Domain, row: int, after: str) -> float:
        score = evaluator.score_domain(model, domain, desc=f"eval {domain.name}").score
        event = {"event": "eval", "row": row, "after": after, "domain": domain.name, "score": score,
                 "items": len(evaluator.sample(domain.eval_items))}
        documents = [doc.text for doc in domain.documents[:self.config.evaluation.perplexity_docs]]
        if documents:
            event["perplexity"] = round(evaluator.perplexity(model, documents, desc=f"ppl {domain.name}"), 4)
        self.log(event)
        return score

    def _save(self, learner: Learner, row: int) -> None:
        progress = {"fingerprint": config_fingerprint(self.config), "progress": self.progress.__dict__}
        checkpoint.save_checkpoint(self.out_dir, f"row-{row}", learner.model, learner.pieces_state(),
                                   progress, keep=self.config.checkpoint_keep)
        checkpoint.write_json(self.out_dir / "results.json", self.results())
        write_run_report(self.out_dir)

    def _show_row(self, row: int, after: str, scores: list[float], canary: float | None) -> None:
        table = Table(title=f"row {row}: {after}", show_header=True)
        for name in self.stream.domain_names + (["canary"] if canary is not None else []):
            table.add_column(name, justify="right")
        table.add_row(*[f"{s:.3f}" for s in scores + ([canary] if canary is not None else [])])
        console.print(table)

    # ---- results --------------------------------------------------------------------
    def results(self) -> dict:
        p = self.progress
        complete = p.domains_done == len(self.stream.domains)
        canary = p.canary if self.stream.canary else None
        return {
            "model": self.config.model,
            "condition": self.config.condition,
            "pieces": self.config.pieces,
            "teacher": self.config.teacher or self.config.model,
            "stream": self.stream.name,
            "domains": self.stream.domain_names,
            "accuracy_matrix": p.matrix,
            "canary": canary,
            "metrics": metrics.all_metrics(p.matrix, canary, p.curves) if complete else None,
            "complete": complete,
            "steps": p.steps,
            "timing": p.timing,
            "prompts": prompts.describe(self.config.evaluation.prompt),
            "items": {d.name: len(d.eval_items) for d in self.stream.domains},
            "config": self.config.model_dump(mode="json"),
        }
