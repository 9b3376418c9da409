"""`lifelong eval`: score a model or a run's latest checkpoint on a stream (a one-row matrix)."""

from __future__ import annotations

from pathlib import Path

from lifelong import checkpoint as ckpt
from lifelong.config import RunConfig, load_saved_config
from lifelong.data.stream import load_stream
from lifelong.errors import InputError
from lifelong.evaluation import prompts
from lifelong.evaluation.evaluator import Evaluator
from lifelong.files import write_json
from lifelong.learner import Learner
from lifelong.models import load_model
from lifelong.pieces import build_pieces
from lifelong.precision import set_threads


def _model_from_run(folder: Path, cfg: RunConfig):
    """Rebuild a run's learner from its saved config and load its latest checkpoint."""
    state = ckpt.read_state(folder)
    if state is None:
        raise InputError(folder, "not a run folder with a checkpoint (state.json missing)")
    run_cfg = load_saved_config(folder / "config.yaml")
    model, tokenizer = load_model(run_cfg.model, dtype=cfg.dtype, device=cfg.device, seed=run_cfg.seed,
                                  mixed_precision=cfg.mixed_precision)
    learner = Learner(model, tokenizer, build_pieces(run_cfg.pieces or [], run_cfg), run_cfg)
    ckpt.load_checkpoint(folder, state, learner.model, before_weights=learner.load_pieces_state)
    return learner.model, tokenizer, run_cfg.model


def evaluate_model(cfg: RunConfig, checkpoint: Path | None = None, out: Path | None = None) -> dict:
    """Scores a model (or, with `checkpoint`, a run folder or saved model folder) on cfg.stream."""
    set_threads(cfg.threads)
    stream = load_stream(cfg.stream)
    if checkpoint is not None and (checkpoint / ckpt.STATE_FILE).is_file():
        model, tokenizer, name = _model_from_run(checkpoint, cfg)
    else:
        name = str(checkpoint) if checkpoint else cfg.model
        model, tokenizer = load_model(name, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed,
                                      mixed_precision=cfg.mixed_precision)
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



def _load_any(cfg: RunConfig, source: Path | str | None):
    """(model, tokenizer, name) for a run folder (its latest checkpoint), a model folder, a model spec or cfg.model."""
    if source is not None and (Path(source) / ckpt.STATE_FILE).is_file():
        return _model_from_run(Path(source), cfg)
    name = str(source) if source else cfg.model
    model, tokenizer = load_model(name, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed,
                                  mixed_precision=cfg.mixed_precision)
    return model, tokenizer, name


def _plain(model):
    """A LoRA run's model with its adapters merged, so its weights compare by name with a plain model."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def diagnose_against(cfg: RunConfig, checkpoint: Path | None, against: Path | str, out: Path | None = None) -> dict:
    """Forgetting diagnostics between two models: `against` as before, the checkpoint (or cfg.model) as after.

    Drift, CKA, attention-output drift, rotation, collapse and layer attribution compare the two models
    on cfg.stream (`diagnostics` config section); sharpness is measured on both; the gradient conflict
    needs a round's start and a new domain, so it is not measured here. Writes diagnostics.json to `out`.
    """
    from lifelong.diagnostics.suite import Diagnoser, compare_models, probe_texts

    set_threads(cfg.threads)
    stream = load_stream(cfg.stream)
    model, tokenizer, name = _load_any(cfg, checkpoint)
    reference, _, reference_name = _load_any(cfg, against)
    model, reference = _plain(model), _plain(reference)
    for p in (*model.parameters(), *reference.parameters()):
        p.requires_grad_(True)  # the sharpness measure perturbs every weight along the loss gradient
    diagnoser = Diagnoser(cfg.diagnostics, tokenizer, Evaluator(cfg.evaluation, tokenizer, seed=cfg.seed),
                          cfg.evaluation.prompt, max_length=cfg.training.max_length, seed=cfg.seed,
                          with_questions=cfg.training.train_questions)
    diagnoser.texts = probe_texts(stream.domains, stream.canary, stream.core, cfg.diagnostics.probe_texts,
                                  cfg.evaluation.prompt)
    event = {"model": name, "against": reference_name, "stream": stream.name,
             **compare_models(reference, model, diagnoser, stream.domains, stream.canary)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "diagnostics.json", event)
    return event
