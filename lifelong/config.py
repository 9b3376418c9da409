"""The run configuration: one YAML file validated on load (DESIGN §2).

Precedence, lowest first: defaults, the condition's preset (lifelong/presets/<c>.yaml), the
user's config file, command-line flags. Errors name the key, and the file and line when known.
"""

from __future__ import annotations

import contextlib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifelong.errors import ConfigError

CONDITIONS = ("a", "b", "c", "d")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-4` as a string; config files mean a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainingConfig(Section):
    lr: float = Field(1e-4, gt=0, le=1.0, description="peak learning rate")
    epochs: int = Field(6, ge=1, le=1000)
    batch_size: int = Field(4, ge=1, le=4096)
    grad_accum: int = Field(1, ge=1, le=1024, description="micro-batches per optimizer step")
    max_length: int = Field(256, ge=8, le=32768, description="tokens per training example")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
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
    perplexity_docs: int = Field(16, ge=0, description="documents per domain whose perplexity is logged; 0 = none")
    progress: bool = True


class FullFinetuneConfig(Section):
    pass


class LoraPieceConfig(Section):
    """PEFT's LoraConfig names; `after_domain` says what happens to the adapter after each domain."""

    r: int = Field(16, ge=1, le=4096)
    lora_alpha: float = Field(32, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    after_domain: Literal["merge", "continue"] = "merge"


class LayerwiseLrConfig(Section):
    """Layer-wise LR decay (Howard & Ruder 2018; Clark et al. 2020): lr_l = lr * xi^(L-l)."""

    xi: float = Field(0.9, gt=0, le=1, description="decay per layer going down; embeddings get lr * xi^L")


class UnfreezingConfig(Section):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): top layer first, one more per epoch or k steps."""

    every: Literal["epoch", "steps"] = Field("epoch", description="unfreeze one more layer every epoch (ULMFiT) "
                                                                   "or every `every_steps` optimizer steps")
    every_steps: int = Field(10, ge=1, description="steps between unfreezing two layers when every: steps")


class FreezingConfig(Section):
    """Selective freezing: the bottom n transformer layers and/or parameters matching `names`."""

    bottom_n: int = Field(0, ge=0, description="freeze transformer layers 0..n-1 (with LoRA: their adapters)")
    names: list[str] = Field([], description="a parameter is frozen if a pattern is a substring of its name "
                                             "or a regular expression matching its whole name")
    embeddings: bool = Field(False, description="also freeze the embeddings (tied embeddings: the head too)")

    @field_validator("names")
    @classmethod
    def _valid_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({error})") from None
        return patterns


class EwcConfig(Section):
    """Online Elastic Weight Consolidation (Kirkpatrick et al. 2017; Schwarz et al. 2018)."""

    ewc_lambda: float = Field(100.0, ge=0, description="penalty strength lambda in lambda/2 * sum F (theta - anchor)^2")
    gamma: float = Field(1.0, ge=0, le=1, description="decay of the running Fisher: F = gamma * F_old + F_new")
    fisher_samples: int = Field(64, ge=1, description="training examples per round used to estimate the Fisher")


class ReplayConfig(Section):
    """Replay of a core set plus a buffer of earlier domains' examples, mixed into every batch."""

    ratio: float = Field(0.2, ge=0, lt=1, description="share of each batch drawn from core set + buffer")
    buffer_size: int = Field(200, ge=0, description="examples of earlier domains kept in the buffer")
    policy: Literal["reservoir", "balanced"] = Field("reservoir", description="reservoir: uniform over everything "
                                                     "seen (Vitter); balanced: equal share per domain")
    core: bool = Field(True, description="replay the stream's core set (its documents and split=train questions)")


class SamConfig(Section):
    """Sharpness-aware minimisation (Foret et al. 2021)."""

    rho: float = Field(0.05, ge=0, description="radius of the adversarial weight perturbation")


class RunConfig(Section):
    model: str = "smollm2-135m"
    teacher: str | None = None
    stream: str = "example"
    condition: Literal["a", "b", "c", "d"] = "d"
    pieces: list[str] | None = Field(None, description="explicit piece list; default: the condition's preset")
    seed: int = Field(0, ge=0)
    out: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str | None = None
    checkpoint_keep: int = Field(1, ge=1, le=1000, description="checkpoints kept on disk (domain and mid-domain)")
    checkpoint_every: int = Field(0, ge=0, description="optimizer steps between mid-domain checkpoints; "
                                  "0 = a checkpoint only after each domain")
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    full_finetune: FullFinetuneConfig = FullFinetuneConfig()
    lora: LoraPieceConfig = LoraPieceConfig()
    layerwise_lr: LayerwiseLrConfig = LayerwiseLrConfig()
    unfreezing: UnfreezingConfig = UnfreezingConfig()
    freezing: FreezingConfig = FreezingConfig()
    ewc: EwcConfig = EwcConfig()
    replay: ReplayConfig = ReplayConfig()
    sam: SamConfig = SamConfig()


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


def _describe(error: ValidationError, source: str, lines: dict[tuple[str, ...], int]) -> str:
    first = error.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(loc)
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{source}:{line}" if line else source
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in first and first["type"] != "missing":
        message += f" (got {first['input']!r})"
    return f"{where}: key '{key}': {message}"


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults < condition preset < config file < overrides (flags), validated as one."""
    user = _read_yaml(Path(path)) if path else {}
    overrides = overrides or {}
    condition = overrides.get("condition") or user.get("condition") or RunConfig().condition
    if not isinstance(condition, str):
        raise ConfigError(f"{path or 'config'}: key 'condition': must be one of {', '.join(CONDITIONS)}")
    merged = deep_merge(deep_merge(preset(condition), user), overrides)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as error:
        source = str(path) if path else "command line"
        raise ConfigError(_describe(error, source, _key_lines(Path(path)) if path else {})) from None


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
