"""`lifelong eval`: score a model or a run's latest checkpoint on a stream (a one-row matrix)."""

from __future__ import annotations

from pathlib import Path

from lifelong import checkpoint as ckpt
from lifelong.config import RunConfig, load_config
from lifelong.data.stream import load_stream
from lifelong.errors import InputError
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.files import write_json
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces


def _model_from_run(folder: Path, cfg: RunConfig):
    """Rebuild a run's learner from its saved config and load its latest checkpoint."""
    state = ckpt.read_state(folder)
    if state is None:
        raise InputError(folder, "not a run folder with a checkpoint (state.json missing)")
    run_cfg = load_config(folder / "config.yaml")
    model, tokenizer = load_model(run_cfg.model, dtype=cfg.dtype, device=cfg.device, seed=run_cfg.seed)
    learner = Learner(model, tokenizer, build_pieces(run_cfg.pieces or [], run_cfg), run_cfg)
    ckpt.load_checkpoint(folder, state, learner.model)
    return learner.model, tokenizer, run_cfg.model


def evaluate_model(cfg: RunConfig, checkpoint: Path | None = None, out: Path | None = None) -> dict:
    """Scores a model (or, with `checkpoint`, a run folder or saved model folder) on cfg.stream."""
    stream = load_stream(cfg.stream)
    if checkpoint is not None and (checkpoint / ckpt.STATE_FILE).is_file():
        model, tokenizer, name = _model_from_run(checkpoint, cfg)
    else:
        name = str(checkpoint) if checkpoint else cfg.model
        model, tokenizer = load_model(name, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed)
    evaluator = Evaluator(cfg.evaluation, tokenizer, seed=cfg.seed)
    row = [evaluator.score_domain(model, domain).score for domain in stream.domains]
    canary = [evaluator.score_domain(model, stream.canary).score] if stream.canary else None
    results = {"model": name, "condition": None, "domains": stream.domain_names, "accuracy_matrix": [row],
               "canary": canary, "metrics": None, "prompts": prompts.describe(cfg.evaluation.prompt),
               "config": cfg.model_dump(mode="json")}
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(out, "output folder is a file")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", results)
    return results

