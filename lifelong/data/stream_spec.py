"""What a stream is (`Stream`) and what its stream.yaml says, without loading its domains.

Below the config (which reads a stream's recommended `settings:` through `stream_settings`) and below
the models; `lifelong.data.stream.load_stream` loads a stream, preparing a built-in one on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lifelong.data.records import Domain
from lifelong.errors import InputError

STREAM_FILE = "stream.yaml"
EXAM_DIR = "exam"  # exam/<domain>.jsonl beside the domains: that domain's exam questions, a second score
SPECIAL_FILES = {"core.jsonl", "canary.jsonl"}
STREAM_KEYS = {"domains", "core", "canary", "name", "settings"}
BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass
class Stream:
    name: str
    domains: list[Domain]
    core: Domain | None = None
    canary: Domain | None = None
    exams: dict[str, Domain] = field(default_factory=dict)

    @property
    def domain_names(self) -> list[str]:
        return [domain.name for domain in self.domains]


def _read_stream_yaml(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(path, f"not valid YAML ({error})", mark.line + 1 if mark else None) from None
    if not isinstance(spec, dict):
        raise InputError(path, "must be a mapping with a 'domains' list")
    return spec


def _settings_of(spec: dict, path: Path) -> dict:
    settings = spec.get("settings") or {}
    if not isinstance(settings, dict):
        raise InputError(path, "must be a mapping of run config keys (e.g. training: {epochs: 3})", field="settings")
    for key in ("stream", "condition"):
        if key in settings:
            raise InputError(path, f"a stream cannot choose the {key}", field=f"settings.{key}")
    by_condition = settings.get("by_condition")  # its condition names are checked by the config
    if by_condition is not None and (not isinstance(by_condition, dict)
                                     or not all(isinstance(v, dict) for v in by_condition.values())):
        raise InputError(path, "must map a condition to run config keys (e.g. e: {training: {epochs: 2}})",
                         field="settings.by_condition")
    return settings


def stream_settings(spec: str | Path) -> tuple[dict, Path | None]:
    """The run settings a stream recommends and the stream.yaml they come from ({} and None when it has
    none, or when the stream cannot be found: loading it reports that). A preparable built-in stream
    recommends the same settings whether it is prepared yet or not."""
    from lifelong.data import prepared

    if str(spec) in prepared.RECOMMENDED_SETTINGS:
        folder = prepared.streams_dir() / str(spec)
        return prepared.RECOMMENDED_SETTINGS[str(spec)], folder / STREAM_FILE
    path = Path(spec)
    if path.is_dir():
        path = path / STREAM_FILE
    elif not path.is_file() and path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        path = BUILTIN_DIR / str(spec) / STREAM_FILE
    if not path.is_file():
        return {}, None
    return _settings_of(_read_stream_yaml(path), path), path
