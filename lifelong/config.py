"""The run configuration: one YAML file validated on load (DESIGN §2).

Precedence, lowest first: defaults, the settings the stream recommends (its stream.yaml's
`settings`), the condition's preset (lifelong/presets/<c>.yaml), the user's config file,
command-line flags. Errors name the key, and the file and line when known.
"""

from __future__ import annotations

import contextlib
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from lifelong.errors import ConfigError
from lifelong.options.base import Section
from lifelong.options.consolidation import ConsolidationConfig
from lifelong.options.critique import CritiqueConfig
from lifelong.options.diagnostics import DIAGNOSTIC_MEASUREMENTS, DiagnosticsConfig  # noqa: F401  (old home)
from lifelong.options.distill import DistillConfig
from lifelong.options.ewc import EwcConfig
from lifelong.options.fast_adapters import FastAdaptersConfig
from lifelong.options.freezing import FreezingConfig
from lifelong.options.full_finetune import FullFinetuneConfig
from lifelong.options.gap_detection import GapDetectionConfig
from lifelong.options.layerwise_lr import LayerwiseLrConfig
from lifelong.options.lora import LoraPieceConfig
from lifelong.options.practice import PracticeConfig
from lifelong.options.replay import ReplayConfig
from lifelong.options.restem import RestemConfig
from lifelong.options.sam import SamConfig
from lifelong.options.self_directed import SelfDirectedConfig
from lifelong.options.self_test import SelfTestConfig, SelfTestRepairConfig  # noqa: F401  (old home)
from lifelong.options.star import StarConfig
from lifelong.options.study_notes import StudyNotesConfig
from lifelong.options.unfreezing import UnfreezingConfig

CONDITIONS = ("a", "b", "c", "d", "e", "f")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-4` as a string; config files mean a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class TrainingConfig(Section):
    lr: float = Field(1e-4, gt=0, le=1.0, description="peak learning rate")
    epochs: int = Field(6, ge=1, le=1000)
    batch_size: int = Field(4, ge=1, le=4096)
    grad_accum: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    max_length: int = Field(256, ge=8, le=32768, description="tokens per training example; a longer document "
                            "is learned in consecutive pieces cut at lines' or sentences' ends")
    group_by_length: bool = Field(False, description="batch examples of similar length together (less padding); "
                                  "the order stays seeded and random at the level of batches")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler_type: Literal["auto", "constant", "linear", "cosine"] = Field(
        "auto", description="the learning-rate schedule within each domain (transformers' names): auto = linear "
        "decay to 0 when warmup_ratio > 0, else constant")
    weight_decay: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    train_questions: bool = Field(True, description="also train on the domain's split=train questions")
    log_every: int = Field(5, ge=1, description="optimizer steps between log.jsonl training points")
    curve_every: int = Field(0, ge=0, description="steps between in-domain evals (learning efficiency); 0 = per epoch")
    max_grad_norm_fault: float | None = Field(1e4, gt=0, description="a gradient norm above this (or not finite) is "
                                              "a numerical fault; null = only non-finite norms")
    fault_lr_factor: float = Field(0.5, gt=0, le=1, description="after the first numerical fault of a round the "
                                   "learning rate is multiplied by this")
    fault_snapshot: bool = Field(True, description="keep the trainable weights and optimizer state of the last "
                                 "good step in memory (about 3x the trainable parameters) to return to on a fault")


class ParallelConfig(Section):
    """Independent runs fanned out as Ray tasks (lifelong/parallel.py, docs/scale.md)."""

    workers: int = Field(1, ge=1, le=1024, description="`lifelong compare`: conditions run at once as Ray "
                         "tasks; 1 = one after another in this process")
    address: str | None = Field(None, description="Ray cluster to use (else $RAY_ADDRESS, else a local instance)")
    gpus_per_task: float = Field(0, ge=0, description="GPUs Ray reserves for each task (e.g. 1 on a GPU cluster)")


class PromptConfig(Section):
    mode: Literal["few_shot", "chat"] = "few_shot"
    template: str = "Question: {question}\nAnswer:"
    examples: list[tuple[str, str]] = [
        ("What is the capital of France?", "Paris"),
        ("How many legs does a spider have?", "eight"),
    ]
    separator: str = "\n\n"


class EvaluationConfig(Section):
    prompt: PromptConfig = PromptConfig()
    batch_size: int = Field(16, ge=1, le=4096)
    max_items: int | None = Field(None, ge=1, description="cap on eval items per domain (seeded sample)")
    max_new_tokens: int = Field(32, ge=1, le=2048, description="chat mode: tokens generated per answer")
    exams: bool = Field(True, description="also score each domain's exam questions (exam/<domain>.jsonl)")
    exam_max_items: int | None = Field(None, ge=1, description="cap on exam items per domain (seeded sample); "
                                       "null = max_items")
    exam_rows: Literal["all", "own", "ends"] = Field("all", description="rows that score the exams: all; own "
                                                     "(before training, right after the exam's own domain, after "
                                                     "the last domain); or ends (before training and after the "
                                                     "last domain). The other cells of exam_matrix are null")
    perplexity_docs: int = Field(16, ge=0, description="documents per domain whose perplexity is logged; 0 = none")
    progress: bool = True
    self_teaching_quality: bool = Field(False, description="also train each domain on its documents alone for "
                                        "the same number of optimizer steps from the same weights, score it, "
                                        "restore, and report self_teaching_quality (doubles training)")


class GeneralConfig(Section):
    """The built-in general set (lifelong/data/general.py) stands in for what a stream lacks."""

    core: bool = Field(True, description="a stream without a core set replays (and the self-test repairs "
                       "from) the general core: country facts, antonyms, plurals, general definitions")
    canary: bool = Field(True, description="a stream without a canary is scored on a canary of the general "
                         "candidates its base model answers right (selected once per model and cached)")
    canary_size: int = Field(120, ge=1, le=10000, description="items in that canary (fewer when the model "
                             "answers fewer candidates right)")
    canary_min_prob: float = Field(0.5, ge=0, lt=1, description="a candidate joins the canary only when the base "
                                   "model gives its answer's tokens at least this geometric-mean probability; "
                                   "0 = any right answer, however narrow (docs/documents_only.md)")



class RunConfig(Section):
    model: str = "smollm2-135m"
    teacher: str | None = None
    stream: str = Field("five-domains", description="a built-in stream (five-domains, prepared on first use; "
                        "example, shipped), a stream.yaml or a folder")
    condition: Literal["a", "b", "c", "d", "e", "f"] = "e"
    pieces: list[str] | None = Field(None, description="explicit piece list; default: the condition's preset")
    seed: int = Field(0, ge=0)
    out: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    mixed_precision: Literal["no", "bf16", "auto"] = Field(
        "no", description="bf16: forward passes under bfloat16 autocast over float32 weights (Accelerate's name); "
        "auto: bf16 where the device computes it natively (CUDA bf16, CPU AVX512-BF16/AMX), else no")
    threads: int | None = Field(None, ge=1, le=4096, description="CPU threads for tensor operations; "
                                "null = torch's default (OMP_NUM_THREADS, else the physical cores)")
    device: str | None = None
    checkpoint_keep: int = Field(1, ge=1, le=1000, description="checkpoints kept on disk (domain and mid-domain)")
    checkpoint_every: int = Field(0, ge=0, description="optimizer steps between mid-domain checkpoints; "
                                  "0 = a checkpoint only after each domain")
    parallel: ParallelConfig = ParallelConfig()
    general: GeneralConfig = GeneralConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    full_finetune: FullFinetuneConfig = FullFinetuneConfig()
    lora: LoraPieceConfig = LoraPieceConfig()
    layerwise_lr: LayerwiseLrConfig = LayerwiseLrConfig()
    unfreezing: UnfreezingConfig = UnfreezingConfig()
    freezing: FreezingConfig = FreezingConfig()
    ewc: EwcConfig = EwcConfig()
    replay: ReplayConfig = ReplayConfig()
    practice: PracticeConfig = PracticeConfig()
    distill: DistillConfig = DistillConfig()
    sam: SamConfig = SamConfig()
    self_directed: SelfDirectedConfig = SelfDirectedConfig()
    gap_detection: GapDetectionConfig = GapDetectionConfig()
    study_notes: StudyNotesConfig = StudyNotesConfig()
    star: StarConfig = StarConfig()
    critique: CritiqueConfig = CritiqueConfig()
    self_test: SelfTestConfig = SelfTestConfig()
    fast_adapters: FastAdaptersConfig = FastAdaptersConfig()
    consolidation: ConsolidationConfig = ConsolidationConfig()
    restem: RestemConfig = RestemConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return data


def _key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every key in a YAML mapping, by dotted path."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*prefix, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.compose(path.read_text(encoding="utf-8")), ())
    return lines


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def preset(condition: str) -> dict:
    """The condition's preset: which pieces are on and the settings tuned for them."""
    if condition not in CONDITIONS:
        raise ConfigError(f"key 'condition': unknown condition {condition!r} (choose from {', '.join(CONDITIONS)})")
    text = resources.files("lifelong").joinpath("presets", f"{condition}.yaml").read_text(encoding="utf-8")
    return yaml_load(text) or {}


def parse_assignment(assignment: str) -> dict:
    """`training.lr=1e-4` -> {"training": {"lr": 1e-4}} (the value is read as YAML)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. training.lr=1e-4")
    value: Any = yaml_load(raw) if raw.strip() else None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def _describe(error: ValidationError, source: str, lines: dict[tuple[str, ...], int], key_prefix: str = "") -> str:
    first = error.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = key_prefix + ".".join(loc)
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in first and first["type"] != "missing":
        message += f" (got {first['input']!r})"
    return f"{where}: key '{key}': {message}"


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults < the stream's recommended settings < condition preset < config file < overrides (flags),
    validated as one."""
    user = _read_yaml(Path(path)) if path else {}
    overrides = overrides or {}
    condition = overrides.get("condition") or user.get("condition") or RunConfig().condition
    if not isinstance(condition, str):
        raise ConfigError(f"{path or 'config'}: key 'condition': must be one of {', '.join(CONDITIONS)}")
    stream = overrides.get("stream") or user.get("stream") or RunConfig().stream
    recommended, by_condition = _stream_settings(stream)
    for_condition = by_condition.get(condition, {})
    merged = deep_merge(deep_merge(deep_merge(deep_merge(recommended, preset(condition)), for_condition), user),
                        overrides)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as error:
        source = str(path) if path else "command line"
        raise ConfigError(_describe(error, source, _key_lines(Path(path)) if path else {})) from None


BY_CONDITION = "by_condition"  # a stream's settings for one condition, above its preset: {e: {training: ...}}


def _stream_settings(stream: object) -> tuple[dict, dict]:
    """The stream's recommended settings and its `by_condition` blocks (condition -> settings), each
    checked on its own so that an error names the stream.yaml key."""
    from lifelong.data.stream_spec import stream_settings

    if not isinstance(stream, str | Path):
        return {}, {}
    settings, source = stream_settings(stream)
    general = {key: value for key, value in settings.items() if key != BY_CONDITION}
    by_condition = settings.get(BY_CONDITION) or {}
    unknown = sorted(set(by_condition) - set(CONDITIONS), key=str)
    if unknown:
        raise ConfigError(f"{source}: key 'settings.{BY_CONDITION}': unknown condition(s) "
                          f"{', '.join(map(str, unknown))}; one of {', '.join(CONDITIONS)}")
    blocks = [((), general)] + [((BY_CONDITION, name), block) for name, block in by_condition.items()]
    for prefix, block in blocks:
        try:
            RunConfig.model_validate(block)
        except ValidationError as error:
            found = _key_lines(source) if source is not None and source.is_file() else {}
            head = ("settings", *prefix)
            lines = {key[len(head):]: line for key, line in found.items()
                     if key[:len(head)] == head and len(key) > len(head)}
            raise ConfigError(_describe(error, str(source), lines, key_prefix=".".join(head) + ".")) from None
    return general, by_condition


def load_saved_config(path: Path) -> RunConfig:
    """A config this program wrote earlier (a run's or a learner's state); keys this version no longer
    knows (written by an older version) are dropped and named on stderr."""
    data = yaml_load(path.read_text(encoding="utf-8")) or {}
    dropped = _drop_unknown(data, RunConfig)
    if dropped:
        print(f"note: {path}: ignoring key(s) this version does not know: {', '.join(dropped)}", file=sys.stderr)
    try:
        return RunConfig.model_validate(data)
    except ValidationError:
        return load_config(path)  # the same error, named by key and line


def _drop_unknown(data: dict, section: type[BaseModel], prefix: str = "") -> list[str]:
    dropped = []
    for key in list(data):
        field = section.model_fields.get(key)
        if field is None:
            dropped.append(prefix + key)
            del data[key]
        elif isinstance(data[key], dict) and isinstance(field.annotation, type) \
                and issubclass(field.annotation, BaseModel):
            dropped += _drop_unknown(data[key], field.annotation, f"{prefix}{key}.")
    return dropped


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
