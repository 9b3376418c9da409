"""Experiment: runs a learner over a stream and writes results (DESIGN §2, §4).

Row 0 of the accuracy matrix is scored before training, row i after learning domain i. After
every row the partial results, the report and a checkpoint are written, so a killed run
resumes at the next domain with the earlier rows intact; with `checkpoint_every` a checkpoint
is also written every few optimizer steps inside a domain, and a killed run continues that
domain from its last one. Nothing is written before the stream, the config and the model have
loaded, so bad input leaves the output folder untouched.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lifelong import checkpoint, metrics
from lifelong.config import RunConfig, load_saved_config, save_config
from lifelong.data.records import Domain
from lifelong.data.stream import Stream, load_stream
from lifelong.errors import ConfigError, LifelongError
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.files import write_json
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces
from lifelong.precision import active_precision, set_threads
from lifelong.report import write_run_report
from lifelong.selfdirected import quality
from lifelong.stream_defaults import complete_stream
from lifelong.training import Checkpointing, LoopState, seed_everything

console = Console(stderr=True)

# Keys that do not change what a run computes, so a resume may differ in them.
NON_SEMANTIC_KEYS = ("out", "checkpoint_keep", "checkpoint_every", "parallel")


class RunLog:
    """log.jsonl: one line per training log point and per evaluation."""

    def __init__(self, path: Path):
        self.path = path
        self.enabled = True  # False in every process but the main one of a multi-process run

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")


def config_fingerprint(config: RunConfig) -> str:
    data = config.model_dump(mode="json", exclude=set(NON_SEMANTIC_KEYS))
    data["evaluation"].pop("progress", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def launched_processes() -> int:
    """How many processes run this experiment together (`accelerate launch --num_processes N`), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_state(config: RunConfig):
    """Accelerate's state of this process in a multi-process run (docs/scale.md): CPU processes talk through
    gloo when there is no GPU or `device` is cpu, else each process takes its own GPU (NCCL)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=config.device == "cpu" or not torch.cuda.is_available())


def default_out_dir(config: RunConfig) -> Path:
    stream = Path(config.stream).stem if config.stream else "stream"
    return Path("runs") / f"{stream}-{config.condition}-seed{config.seed}"


@dataclass
class Progress:
    """What a run has finished so far; saved in state.json with every checkpoint."""

    matrix: list[list[float]] = field(default_factory=list)
    canary: list[float | None] = field(default_factory=list)
    exam_matrix: list[list[float | None]] = field(default_factory=list)
    curves: list[list[tuple[int, float]]] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    reference_scores: list[float | None] = field(default_factory=list)  # self_teaching_quality's denominators
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
        self.log = RunLog(self.out_dir / "log.jsonl")  # writes nothing until the first event
        self._round: dict | None = None  # a round to continue, from a mid-domain checkpoint
        self._supplied: dict | None = None  # what the general set supplied to the stream (stream_defaults)
        self.main = True  # whether this process writes: the main one of a multi-process run (docs/scale.md)

    # ---- setup ----------------------------------------------------------------------
    def _check_out_dir(self) -> dict | None:
        """The resumable state if the output folder holds this run; reads only, writes nothing."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise LifelongError(f"{self.out_dir}: output folder is a file")
        state = checkpoint.read_state(self.out_dir) if self.out_dir.is_dir() else None
        if state and state.get("fingerprint") != config_fingerprint(self.config) \
                and not self._same_config_from_older_version():
            raise ConfigError(f"{self.out_dir}: holds a run with a different config; "
                              "choose another --out or delete the folder")
        return state

    def _same_config_from_older_version(self) -> bool:
        """Whether the folder's config.yaml, read by this version (settings it lacked at their defaults),
        is this run's config: a run made before an upgrade that added settings still resumes."""
        saved = self.out_dir / "config.yaml"
        try:
            same = saved.is_file() and config_fingerprint(load_saved_config(saved)) == config_fingerprint(self.config)
        except LifelongError:
            return False
        if same:
            console.print(f"[yellow]note[/]: {self.out_dir}: resuming a run made by an earlier version; settings "
                          "added since then are at their defaults")
        return same

    def _build(self) -> tuple[Learner, Evaluator]:
        cfg = self.config
        set_threads(cfg.threads)
        seed_everything(cfg.seed)  # pieces may draw at attach (LoRA's adapter initialisation)
        pieces = build_pieces(cfg.pieces or [], cfg)
        device = cfg.device
        if device is None and launched_processes() > 1:
            device = str(process_state(cfg).device)  # each process its own GPU (or the CPU)
        model, tokenizer = load_model(cfg.model, dtype=cfg.dtype, device=device, seed=cfg.seed,
                                      mixed_precision=cfg.mixed_precision)
        evaluator = Evaluator(cfg.evaluation, tokenizer, seed=cfg.seed)
        # before any trained weights: the canary is what the base model knew
        self.stream, self._supplied = complete_stream(self.stream, cfg, model, evaluator)
        # Pieces write generated material under out_dir; in a multi-process run only the main process
        # writes (the Learner keeps it there only; the others regenerate the same seeded material).
        learner = Learner(model, tokenizer, pieces, cfg, log=self.log, core=self.stream.core, stream=self.stream,
                          evaluator=evaluator, out_dir=self.out_dir)
        return learner, learner.evaluator

    # ---- the run --------------------------------------------------------------------
    def run(self) -> dict:
        if launched_processes() > 1:
            process_state(self.config).wait_for_everyone()  # every process reads the folder before the main writes
        state = self._check_out_dir()
        learner, evaluator = self._build()  # a bad model or piece setting fails here, before any write
        self._set_main(learner)
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out_dir / "config.yaml")
        if state:
            self._resume(state, learner)
        else:
            self.log({"event": "start", "model": self.config.model, "condition": self.config.condition,
                      "domains": self.stream.domain_names, "seed": self.config.seed,
                      "mixed_precision": active_precision(learner.model), "threads": torch.get_num_threads()})
            if self._supplied:
                self.log(self._supplied)
            self._score_row(learner, evaluator, row=0)
            self._save(learner, 0)
        for index in range(self.progress.domains_done, len(self.stream.domains)):
            self._learn_domain(learner, evaluator, index)
        results = self.results()
        if self.main:
            write_json(self.out_dir / "results.json", results)
            write_run_report(self.out_dir, results)
        self.log({"event": "done", "metrics": results["metrics"]})
        return results

    def _set_main(self, learner: Learner) -> None:
        """With several processes (docs/scale.md) all train and score alike; only the main one writes and shows."""
        self.main = learner.accelerator.is_main_process
        self.log.enabled = self.main
        if not self.main:
            self.config.evaluation.progress = False
            learner.loop.progress = False

    def _resume(self, state: dict, learner: Learner) -> None:
        self.progress = Progress(**state["progress"])
        self.progress.curves = [[tuple(point) for point in curve] for curve in self.progress.curves]
        checkpoint.load_checkpoint(self.out_dir, state, learner.model, before_weights=learner.load_pieces_state)
        done = self.progress.domains_done
        if state.get("round", {}).get("domain") == done:
            self._round = checkpoint.load_training(self.out_dir, state)
        step = self._round["loop"]["step"] if self._round else 0
        within = f", {step} steps into the next" if step else ""
        if self.main:
            console.print(f"[bold]Resuming[/] {self.out_dir}: {done} of {len(self.stream.domains)} domains done"
                          f"{within}")
        self.log({"event": "resume", "domains_done": done, "step": step})

    def _learn_domain(self, learner: Learner, evaluator: Evaluator, index: int) -> None:
        domain = self.stream.domains[index]
        if self.main:
            console.print(f"[bold]Learning[/] {domain.name} ({index + 1}/{len(self.stream.domains)})")
        resume, self._round = self._round, None
        curve = [tuple(p) for p in resume["curve"]] if resume else [(0, self.progress.matrix[index][index])]

        def score_in_domain(step: int) -> None:
            score = evaluator.score_domain(learner.accelerator.unwrap_model(learner.model), domain).score
            curve.append((step, score))
            self.log({"event": "curve", "domain": domain.name, "step": step, "score": score})

        started = time.perf_counter()
        seed = self.config.seed * 1000 + index + 1
        before = quality.snapshot(learner) if self.config.evaluation.self_teaching_quality and not resume else None
        # The row scored next gives the curve's last point: the round's end is not scored twice.
        stats = learner.learn(domain, seed=seed, on_checkpoint=score_in_domain,
                              checkpoints=self._checkpointing(learner, index, curve, resume), final_point=False)
        self.progress.timing["train_s"].append(round(time.perf_counter() - started, 2))
        if self.config.evaluation.self_teaching_quality:
            self._reference(learner, evaluator, domain, seed, stats.steps, before)
        self.progress.steps.append(stats.steps)
        self.progress.curves.append(curve)
        scores = self._score_row(learner, evaluator, row=index + 1)
        curve.append((stats.steps, scores[index]))
        self.log({"event": "curve", "domain": domain.name, "step": stats.steps, "score": scores[index]})
        self._save(learner, index + 1)

    def _reference(self, learner: Learner, evaluator: Evaluator, domain: Domain, seed: int, steps: int,
                   before: quality.Snapshot | None) -> None:
        """self_teaching_quality's reference: the same steps on the domain's own material (selfdirected/quality.py).

        A round continued from a mid-domain checkpoint has no snapshot of its start: its reference is None."""
        started = time.perf_counter()
        score = quality.reference_score(learner, evaluator, domain, seed, steps, before) if before else None
        self.progress.reference_scores.append(score)
        self.progress.timing.setdefault("reference_s", []).append(round(time.perf_counter() - started, 2))
        self.log({"event": "reference", "domain": domain.name, "steps": steps, "score": score})

    def _score_row(self, learner: Learner, evaluator: Evaluator, row: int) -> list[float]:
        """Score every domain (and the canary and exams) as row `row` of the matrices; the domains' scores."""
        started = time.perf_counter()
        model = learner.model
        after = "before" if row == 0 else self.stream.domains[row - 1].name
        scores = [self._score(evaluator, model, domain, row, after) for domain in self.stream.domains]
        canary = self._score(evaluator, model, self.stream.canary, row, after) if self.stream.canary else None
        if self._scores_exams:
            self.progress.exam_matrix.append([self._score_exam(evaluator, model, d.name, row, after)
                                              if self._exam_row(row, column) else None
                                              for column, d in enumerate(self.stream.domains)])
        self.progress.matrix.append(scores)
        self.progress.canary.append(canary)
        self.progress.timing["eval_s"].append(round(time.perf_counter() - started, 2))
        self._show_row(row, after, scores, canary)
        return scores

    def _score(self, evaluator: Evaluator, model, domain: Domain, row: int, after: str) -> float:
        score = evaluator.score_domain(model, domain, desc=f"eval {domain.name}").score
        event = {"event": "eval", "row": row, "after": after, "domain": domain.name, "score": score,
                 "items": len(evaluator.sample(domain.eval_items))}
        documents = [doc.text for doc in domain.documents[:self.config.evaluation.perplexity_docs]]
        if documents:
            event["perplexity"] = round(evaluator.perplexity(model, documents, desc=f"ppl {domain.name}"), 4)
        self.log(event)
        return score

    @property
    def _scores_exams(self) -> bool:
        return bool(self.stream.exams) and self.config.evaluation.exams

    def _exam_row(self, row: int, column: int) -> bool:
        """Whether row `row` scores domain `column`'s exam (evaluation.exam_rows)."""
        rows = self.config.evaluation.exam_rows
        ends = row in (0, len(self.stream.domains))
        return rows == "all" or ends or (rows == "own" and row == column + 1)

    def _score_exam(self, evaluator: Evaluator, model, name: str, row: int, after: str) -> float | None:
        exam = self.stream.exams.get(name)
        if exam is None:
            return None
        cap = self.config.evaluation.exam_max_items
        score = evaluator.score_domain(model, exam, desc=f"exam {name}", cap=cap).score
        self.log({"event": "eval", "row": row, "after": after, "domain": name, "exam": True, "score": score,
                  "items": len(evaluator.sample(exam.eval_items, cap))})
        return score

    def _checkpointing(self, learner: Learner, index: int, curve: list, resume: dict | None) -> Checkpointing:
        """Mid-domain checkpoints for round `index`, continuing from `resume` when given."""
        loop = LoopState(**resume["loop"]) if resume else None
        every = self.config.checkpoint_every
        if not every:
            return Checkpointing(resume=loop)
        round_pieces = copy.deepcopy(learner.pieces_state())  # a continued round starts from these

        def save(state: LoopState) -> None:
            self._save_within(learner, index, round_pieces, curve, state)

        return Checkpointing(every=every, save=save, resume=loop)

    def _save_within(self, learner: Learner, index: int, pieces_state: dict, curve: list, loop: LoopState) -> None:
        """A checkpoint inside domain `index`: weights now, pieces as the round began, the loop's state."""
        if not self.main:
            return
        name = f"domain-{index + 1}-step-{loop.step}"
        state = {**self._state(), "round": {"domain": index, "step": loop.step}}
        checkpoint.save_checkpoint(self.out_dir, name, learner.accelerator.unwrap_model(learner.model),
                                   pieces_state, state, keep=self.config.checkpoint_keep,
                                   training={"loop": vars(loop), "curve": list(curve)})
        self.log({"event": "checkpoint", "name": name, "domain": self.stream.domains[index].name, "step": loop.step})

    def _state(self) -> dict:
        return {"fingerprint": config_fingerprint(self.config), "progress": self.progress.__dict__}

    def _save(self, learner: Learner, row: int) -> None:
        if not self.main:
            return
        checkpoint.save_checkpoint(self.out_dir, f"row-{row}", learner.model, learner.pieces_state(),
                                   self._state(), keep=self.config.checkpoint_keep)
        self.log({"event": "checkpoint", "name": f"row-{row}", "row": row})
        write_json(self.out_dir / "results.json", self.results())
        write_run_report(self.out_dir)

    def _show_row(self, row: int, after: str, scores: list[float], canary: float | None) -> None:
        if not self.main:
            return
        table = Table(title=f"row {row}: {after}", show_header=True)
        for name in self.stream.domain_names + (["canary"] if canary is not None else []):
            table.add_column(name, justify="right")
        table.add_row(*[f"{s:.3f}" for s in scores + ([canary] if canary is not None else [])])
        console.print(table)

    # ---- results --------------------------------------------------------------------
    def _self_teaching(self) -> list[float | None] | None:
        """R[j][j] over the reference score per domain, when the run measured it."""
        p = self.progress
        if not self.config.evaluation.self_teaching_quality or len(p.reference_scores) != p.domains_done:
            return None
        learned = [p.matrix[j + 1][j] for j in range(p.domains_done)]
        return [None if r is None else q for q, r in
                zip(metrics.self_teaching_quality(learned, [r or 0 for r in p.reference_scores]),
                    p.reference_scores, strict=True)]

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
            "exam_matrix": p.exam_matrix if self._scores_exams else None,
            "metrics": metrics.all_metrics(p.matrix, canary, p.curves, self._self_teaching()) if complete else None,
            "complete": complete,
            "steps": p.steps,
            "reference_scores": p.reference_scores if self.config.evaluation.self_teaching_quality else None,
            "timing": p.timing,
            "prompts": prompts.describe(self.config.evaluation.prompt),
            "items": {d.name: len(d.eval_items) for d in self.stream.domains},
            "config": self.config.model_dump(mode="json"),
        }
