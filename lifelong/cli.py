"""The `lifelong` command line (DESIGN §2). Every flag overrides a config key."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated

import typer

from lifelong.errors import LifelongError

app = typer.Typer(help="Teach a language model a stream of domains without catastrophic forgetting.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Built-in data: fetch, build and show the built-in streams.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigArg = Annotated[Path | None, typer.Argument(help="YAML config file (optional).", show_default=False)]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model: smollm2-135m (embedded), tiny, "
                                              "a Hugging Face id or a local folder.")]
StreamOpt = Annotated[str | None, typer.Option("--stream", help="Built-in stream name, stream.yaml or folder.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder; default runs/STREAM-COND-seedN.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="One seed for data order, initialisation, sampling.")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override any config key: --set training.lr=1e-4")]


def _overrides(sets: list[str] | None, **flags) -> dict:
    from lifelong.config import deep_merge, parse_assignment

    merged: dict = {}
    for assignment in sets or []:
        merged = deep_merge(merged, parse_assignment(assignment))
    return deep_merge(merged, {key: value for key, value in flags.items() if value is not None})


@app.command()
def run(config: ConfigArg = None, model: ModelOpt = None, stream: StreamOpt = None,
        condition: Annotated[str | None, typer.Option("--condition", help="Condition preset: a (full "
                             "fine-tuning), b (LoRA), c (LoRA + replay), d (LoRA + replay + layer-wise "
                             "LR decay), e (the full system) or f (two learning systems: episode adapters "
                             "+ sleep).")] = None,
        out: OutOpt = None, seed: SeedOpt = None, set_: SetOpt = None) -> None:
    """Learn a stream of domains, scoring every domain before training and after each one."""
    from lifelong.config import load_config
    from lifelong.experiment import Experiment

    overrides = _overrides(set_, model=model, stream=stream, condition=condition,
                           out=str(out) if out else None, seed=seed)
    experiment = Experiment(load_config(config, overrides))
    results = experiment.run()
    if experiment.main:  # one process of a multi-process run prints (docs/scale.md)
        _print_metrics(results)


@app.command()
def compare(config: ConfigArg = None,
            conditions: Annotated[str, typer.Option("--conditions",
                                                    help="Comma-separated conditions (a-f).")] = "a,b,c,d,e",
            out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/compare"),
            model: ModelOpt = None, stream: StreamOpt = None, seed: SeedOpt = None,
            workers: Annotated[int | None, typer.Option("--workers", help="Conditions run at once, as Ray tasks "
                                                        "(config key parallel.workers; default 1).")] = None,
            ablate: Annotated[str | None, typer.Option(
                "--ablate", help="Instead of --conditions: this condition and, per piece, the condition without "
                "it (one row each).")] = None,
            set_: SetOpt = None) -> None:
    """Run one experiment per condition and write one report that sets them side by side."""
    from lifelong.compare import run_compare

    names = [c.strip() for c in conditions.split(",") if c.strip()]
    parallel = {"workers": workers} if workers is not None else None
    run_compare(config, names, out, _overrides(set_, model=model, stream=stream, seed=seed, parallel=parallel),
                ablate=ablate)


@app.command("eval")
def evaluate(model: ModelOpt = None,
             checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="A run's output folder or "
                                                             "a saved model folder.")] = None,
             stream: StreamOpt = None, out: OutOpt = None, config: Annotated[Path | None, typer.Option(
                 "--config", help="YAML config for evaluation settings.")] = None,
             set_: SetOpt = None,
             diagnose_against: Annotated[str | None, typer.Option(
                 "--diagnose-against", help="A model spec, model folder or run folder to compare with: forgetting "
                 "diagnostics (drift, CKA, rotation, sharpness, collapse, layer attribution) with it as the "
                 "model before; writes diagnostics.json to --out.")] = None) -> None:
    """Score a model (or a run's latest checkpoint) on every domain of a stream."""
    from lifelong.config import load_config
    from lifelong.evaluate import evaluate_model

    cfg = load_config(config, _overrides(set_, model=model, stream=stream))
    results = evaluate_model(cfg, checkpoint=checkpoint, out=out)
    row = results["accuracy_matrix"][0]
    for name, score in zip(results["domains"], row, strict=True):
        typer.echo(f"{name}\t{score:.3f}")
    if results["canary"]:
        typer.echo(f"canary\t{results['canary'][0]:.3f}")
    if diagnose_against:
        from lifelong.evaluate import diagnose_against as diagnose

        _print_diagnosis(diagnose(cfg, checkpoint, diagnose_against, out))


@app.command()
def learn(docs: Annotated[list[Path] | None, typer.Option("--docs", help="Documents to learn: .txt, .md or .jsonl "
                                                         "files, or folders of them (repeat --docs).")] = None,
          state: Annotated[Path, typer.Option("--state", help="State folder: model, episode adapters, replay "
                                              "buffer, Fisher, history, dashboard.")] = Path("learner"),
          config: ConfigArg = None, model: ModelOpt = None,
          sleep: Annotated[bool, typer.Option("--sleep", help="Consolidate (sleep) after this call, due or not.")]
          = False, set_: SetOpt = None) -> None:
    """Teach one model new documents, continuing from its state folder (two learning systems + sleep)."""
    from lifelong.learn import learn as learn_documents

    entry = learn_documents(list(docs or []), state, config, _overrides(set_, model=model), sleep=sleep)
    sleep_record = entry.get("sleep") or {}
    if sleep_record.get("episodes"):
        outcome = "passed, adapters dropped" if sleep_record.get("passed") else "failed, rolled back"
        typer.echo(f"sleep\t{outcome} (canary {sleep_record.get('canary_before')} -> "
                   f"{sleep_record.get('canary_after')}, transfer {sleep_record.get('transfer')})")
    for name, score in (entry.get("scores") or {}).items():
        if score is not None:
            typer.echo(f"{name}\t{score:.3f}")
    if entry.get("canary") is not None:
        typer.echo(f"canary\t{entry['canary']:.3f}")
    typer.echo(f"state\t{state} (adapters: {', '.join(entry.get('adapters') or []) or 'none'})")


@app.command()
def report(directory: Annotated[Path, typer.Argument(help="A run's or a comparison's output folder.")]) -> None:
    """Rebuild report.html from results.json and log.jsonl (or compare.json)."""
    from lifelong.compare import rebuild_report

    typer.echo(str(rebuild_report(directory)))


@data_app.command("prepare")
def data_prepare(size: Annotated[str, typer.Option("--size", help="small, medium or large.")] = "small",
                 seed: Annotated[int, typer.Option("--seed", help="Seed for every sampling choice.")] = 0,
                 force: Annotated[bool, typer.Option("--force", help="Rebuild even if prepared.")] = False) -> None:
    """Download the source packages and build the built-in streams into the cache."""
    try:
        from lifelong.data.prepare import prepare_streams
    except ImportError:
        raise LifelongError("data prepare: the built-in five-domain stream is not available in this "
                            "version; the example stream ships with the package") from None
    for name, path in prepare_streams(size=size, seed=seed, force=force).items():
        typer.echo(f"{name}\t{path}")


@data_app.command("show")
def data_show(stream: Annotated[str, typer.Argument(help="A prepared built-in stream (five-domains, "
                                                    "five-domains-medium, five-domains-large), another built-in "
                                                    "name, a stream.yaml or a folder.", show_default=False)],
              width: Annotated[int, typer.Option("--width", min=20, help="Characters of each document shown (the "
                                                 "rest is cut, marked [...]).")] = 700) -> None:
    """Print a stream's domains: counts, the start of one document and one eval question with its answer."""
    from lifelong.data import fields
    from lifelong.data.stream import load_stream

    _check_prepared(stream)
    loaded = load_stream(stream)
    typer.echo(f"stream {loaded.name}: {len(loaded.domains)} domains ({', '.join(loaded.domain_names)})\n")
    shown = {domain.name: _domain_field(domain, loaded.exams.get(domain.name)) for domain in loaded.domains}
    fields.show(shown, width=width, out=_Echo())
    for label, extra in (("core", loaded.core), ("canary", loaded.canary)):
        if extra is not None:
            counts = [(len(extra.documents), "documents"), (len(extra.eval_items), "eval questions"),
                      (len(extra.train_items), "practice questions")]
            typer.echo(f"{label}: " + ", ".join(f"{n} {what}" for n, what in counts if n))


def _check_prepared(stream: str) -> None:
    """A built-in stream that `lifelong data prepare` builds must be prepared first: `show` never downloads."""
    from lifelong.data import prepared

    if stream in prepared.PREPARABLE and not Path(stream).exists() and stream not in prepared.available_streams():
        from lifelong.data.prepare import SIZES, stream_name

        size = next((size for size in SIZES if stream_name(size) == stream), "small")
        option = "" if size == "small" else f" --size {size}"
        raise LifelongError(f"stream '{stream}' is not prepared in {prepared.streams_dir()}: run "
                            f"`lifelong data prepare{option}` first")


def _domain_field(domain, exam=None):
    """A loaded domain as a fields.Field (documents, questions, the counts `fields.show` prints); a multiple-choice
    eval question is shown with its choices and the right one as its answer."""
    import statistics

    from lifelong.data.fields import Field
    from lifelong.data.records import MCItem, QAItem

    items = [item for item in domain.items if isinstance(item, QAItem)]
    if not any(item.split == "eval" for item in items):
        items += [QAItem(f"{item.question} ({' / '.join(item.choices)})", item.choices[item.answer], (), "eval")
                  for item in domain.eval_items[:1] if isinstance(item, MCItem)]
    lengths = [len(document.text.split()) for document in domain.documents]
    log = {"documents": len(domain.documents), "median_words": statistics.median(lengths) if lengths else 0,
           "eval": len(domain.eval_items), "train": len(domain.train_items),
           "exam": len(exam.eval_items) if exam is not None else 0}
    return Field(domain.name, list(domain.documents), items, log)


class _Echo:
    """A file-like object that writes through typer.echo (so CliRunner and pipes see the output)."""

    def write(self, text: str) -> None:
        typer.echo(text, nl=False)

    def flush(self) -> None:
        pass


def _print_diagnosis(event: dict) -> None:
    """The diagnostics between two models, one measurement a line."""
    drift, rotation, collapse = event.get("drift") or {}, event.get("rotation") or {}, event.get("collapse") or {}
    lines = [("against", event.get("against")), ("cka_mean", drift.get("cka_mean")), ("cka_min", drift.get("cka_min")),
             ("attention_drift_lower", drift.get("attention_drift_lower")),
             ("attention_drift_upper", drift.get("attention_drift_upper")),
             ("rotation_explained", rotation.get("explained_total")),
             ("rotation_heldout_explained", rotation.get("heldout_explained_total"))]
    for side in ("before", "after"):
        stats = collapse.get(side) or {}
        lines += [(f"distinct_2_{side}", stats.get("distinct_2")), (f"entropy_{side}", stats.get("predictive_entropy"))]
    for side, values in (event.get("sharpness") or {}).items():
        for direction in ("gradient", "random"):
            for rho, rise in (values.get(direction) or {}).items():
                lines.append((f"sharpness_{side}_{direction}_{rho}", rise))
    for source, scores in (event.get("scores") or {}).items():
        lines.append((f"drop_{source}", scores.get("drop")))
    for source, groups in ((event.get("attribution") or {}).get("returned") or {}).items():
        lines += [(f"returned_{source}_{group}", share) for group, share in groups.items()]
    for key, value in lines:
        typer.echo(f"{key}\t{value:.4f}" if isinstance(value, float) else f"{key}\t{value}")


def _print_metrics(results: dict) -> None:
    for key, value in (results.get("metrics") or {}).items():
        if isinstance(value, float):
            typer.echo(f"{key}\t{value:.3f}")
        elif value is not None:
            typer.echo(f"{key}\t{value}")


def main() -> None:
    try:
        app()
    except LifelongError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        typer.echo(f"error: {error.filename or 'output folder'}: disk full ({error.strerror}); free space and "
                   "run the same command again to resume", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
