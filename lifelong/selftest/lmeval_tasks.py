"""Diagnostic tasks written as lm-evaluation-harness task YAML files (a subset of its fields).

A user who already has lm-eval tasks can list their YAML files under `self_test.diagnostic_tasks`;
each becomes one more capability the self-test watches (a `Domain` with `qa` or `mc` items).

Supported fields (everything else in the file is ignored, except the unsupported ones below):

- `task`: the capability's name (default: the file's stem);
- the data, from local files only: `dataset_path: json` (or `jsonl`) with
  `dataset_kwargs: {data_files: PATH | [PATHS] | {SPLIT: PATH | [PATHS]}}`, or `dataset_path` a
  `.json`/`.jsonl` file itself. Paths are relative to the YAML file. A `.json` file holds a list of
  records (or `{"data": [...]}`), a `.jsonl` file one record per line;
- the splits: `test_split` (scored; default `test`, else `validation_split`), `training_split`
  (its documents become split=train items: material the self-test may replay to repair the task,
  never scored);
- `output_type`: `multiple_choice` (log-likelihood choice, lm-eval's acc_norm) or `generate_until`
  (exact match on the first line of the answer);
- `doc_to_text`: a field name or a Jinja template (`"{{question}}"`). The stream's scoring prompt
  wraps it, so a `Question: ... Answer:` frame in the template is dropped (the default prompt
  already has it);
- `doc_to_target`: a field name, a Jinja template or an integer. For `multiple_choice`, an index
  into the choices or the text of the right choice; for `generate_until`, the answer text (a list
  gives the answer and its aliases);
- `doc_to_choice`: a field name, a Jinja template that renders a list (`"{{choices}}"`) or a YAML
  list of fixed choices;
- `include`: a base YAML file (relative path) whose keys this file overrides.

`!function` hooks and `process_docs` (Python code) are not supported: an error names the file and
the key. Every error names the file, and the key or the record.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import yaml

from lifelong.data.records import Domain, Item, MCItem, QAItem
from lifelong.errors import InputError

OUTPUT_TYPES = ("multiple_choice", "generate_until")
UNSUPPORTED = ("process_docs", "process_results", "custom_dataset")
_FRAME = re.compile(r"^\s*(?:question|q)\s*:\s*(.*?)\s*(?:\n\s*)?(?:answer|a)\s*:\s*$", re.I | re.S)


class _Function:
    """A `!function module.name` tag: recorded, so a field that uses it can be refused by name."""

    def __init__(self, target: str):
        self.target = target


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise InputError(path, "lm-eval task file not found")
    if path.resolve() in seen:
        raise InputError(path, "includes itself", field="include")
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError(path, f"not valid YAML ({getattr(error, 'problem', error)})",
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(spec, dict):
        raise InputError(path, "an lm-eval task file must be a mapping of keys to values")
    base = spec.pop("include", None)
    if base is None:
        return spec
    if not isinstance(base, str):
        raise InputError(path, "must be a file name", field="include")
    return {**_read_yaml(path.parent / base, (*seen, path.resolve())), **spec}


def _check_supported(spec: dict, path: Path) -> None:
    for key, value in spec.items():
        if isinstance(value, _Function) and key in ("doc_to_text", "doc_to_target", "doc_to_choice", "dataset_path"):
            raise InputError(path, f"'!function {value.target}' (Python code) is not supported; write a field "
                             "name or a Jinja template", field=key)
    for key in UNSUPPORTED:
        if spec.get(key) is not None:
            raise InputError(path, "Python hooks are not supported by lifelong's lm-eval subset", field=key)


# ---- data ---------------------------------------------------------------------------------------


def _read_records(file: Path, path: Path, key: str) -> list[dict]:
    if not file.is_file():
        raise InputError(path, f"data file {file} not found", field=key)
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(file, f"not valid JSON ({error.msg})", line=number) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(file, f"not valid JSON ({error.msg})", line=error.lineno) from None
        records = data.get("data") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise InputError(file, "a .json data file must hold a list of records (or {\"data\": [...]})")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(file, f"record {number} is not a JSON object")
    return records


def _split_files(spec: dict, path: Path) -> dict[str, list[Path]]:
    """Data files per split name, resolved relative to the YAML file."""
    dataset = spec.get("dataset_path")
    kwargs = spec.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise InputError(path, "must be a mapping", field="dataset_kwargs")
    if not isinstance(dataset, str):
        raise InputError(path, "missing: give `json` with dataset_kwargs.data_files, or a local .json/.jsonl file",
                         field="dataset_path")
    if dataset.endswith((".json", ".jsonl")):
        files: Any = {str(spec.get("test_split") or "test"): dataset}
    elif dataset in ("json", "jsonl"):
        files = kwargs.get("data_files")
        if files is None:
            raise InputError(path, "missing: a local data file (or a mapping split -> file) is required",
                             field="dataset_kwargs.data_files")
    else:
        raise InputError(path, f"only local JSON data is supported (dataset_path: json with data_files, or a "
                         f".json/.jsonl path), got {dataset!r}; Hugging Face Hub datasets are not fetched",
                         field="dataset_path")
    if isinstance(files, (str, list)):
        files = {"train" if spec.get("training_split") and not spec.get("test_split") else
                 str(spec.get("test_split") or "test"): files}
    if not isinstance(files, dict):
        raise InputError(path, "must be a file, a list of files or a mapping split -> files",
                         field="dataset_kwargs.data_files")
    resolved = {}
    for split, entries in files.items():
        entries = [entries] if isinstance(entries, str) else entries
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise InputError(path, f"split {split!r}: must be a file name or a list of them",
                             field="dataset_kwargs.data_files")
        resolved[str(split)] = [path.parent / e if not Path(e).is_absolute() else Path(e) for e in entries]
    return resolved


# ---- templates ----------------------------------------------------------------------------------


def _environment():
    import jinja2  # a transformers dependency

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _render(value: Any, doc: dict, key: str, path: Path, where: str) -> Any:
    """lm-eval's rule: a field name selects the field, a string is a Jinja template, anything else is itself."""
    if isinstance(value, str) and value in doc:
        return doc[value]
    if not isinstance(value, str):
        return value
    import jinja2

    try:
        return _environment().from_string(value).render(**doc)
    except jinja2.TemplateError as error:
        raise InputError(path, f"{where}: template failed ({error})", field=key) from None


def _question(text: Any) -> str:
    text = str(text)
    framed = _FRAME.match(text)
    return (framed.group(1) if framed else text).strip()


def _as_list(value: Any, key: str, path: Path, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise InputError(path, f"{where}: did not give a list (got {value!r})", field=key) from None
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise InputError(path, f"{where}: needs a list of at least two choices (got {value!r})", field=key)
    return [str(v) for v in value]


def _choice_index(target: Any, choices: list[str], path: Path, where: str) -> int:
    if isinstance(target, str) and target.strip().lstrip("-").isdigit():
        target = int(target.strip())
    if isinstance(target, list) and target:
        target = target[0]
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < len(choices):
            raise InputError(path, f"{where}: index {target} is out of range for {len(choices)} choices",
                             field="doc_to_target")
        return target
    if isinstance(target, str) and target.strip() in [c.strip() for c in choices]:
        return [c.strip() for c in choices].index(target.strip())
    raise InputError(path, f"{where}: {target!r} is neither an index nor one of the choices",
                     field="doc_to_target")


def _item(spec: dict, doc: dict, split: str, path: Path, where: str) -> Item:
    question = _question(_render(spec["doc_to_text"], doc, "doc_to_text", path, where))
    if not question:
        raise InputError(path, f"{where}: empty question", field="doc_to_text")
    target = _render(spec["doc_to_target"], doc, "doc_to_target", path, where)
    if spec["output_type"] == "multiple_choice":
        choices = _as_list(_render(spec["doc_to_choice"], doc, "doc_to_choice", path, where), "doc_to_choice",
                           path, where)
        return MCItem(question, tuple(choices), _choice_index(target, choices, path, where), split=split)
    answers = target if isinstance(target, list) else [target]
    answers = [str(a).strip() for a in answers if str(a).strip()]
    if not answers:
        raise InputError(path, f"{where}: empty answer", field="doc_to_target")
    return QAItem(question, answers[0], tuple(answers[1:]), split=split)


def load_lmeval_task(path: str | Path) -> Domain:
    """One lm-eval task YAML file as a Domain: its test split scored, its training split kept for repair."""
    path = Path(path)
    spec = _read_yaml(path)
    _check_supported(spec, path)
    output_type = spec.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise InputError(path, f"must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}", field="output_type")
    spec["output_type"] = output_type
    for key in ("doc_to_text", "doc_to_target") + (("doc_to_choice",) if output_type == "multiple_choice" else ()):
        if spec.get(key) is None:
            raise InputError(path, f"missing (required for output_type {output_type})", field=key)
    files = _split_files(spec, path)
    test = str(spec.get("test_split") or ("test" if "test" in files else spec.get("validation_split") or "test"))
    train = spec.get("training_split")
    if test not in files:
        raise InputError(path, f"no data files for the scored split {test!r} (have: {', '.join(files)})",
                         field="test_split")
    name = str(spec.get("task") or path.stem)
    domain = Domain(name=name, path=path)
    for split, ours in ((test, "eval"), (train, "train")):
        if split is None or split not in files:
            continue
        for file in files[split]:
            for number, doc in enumerate(_read_records(file, path, "dataset_kwargs.data_files"), start=1):
                domain.items.append(_item(spec, doc, ours, path, f"record {number} of {file.name}"))
    if not domain.eval_items:
        raise InputError(path, f"split {test!r} holds no records", field="test_split")
    return domain


def load_lmeval_tasks(paths: list[str], base: Path | None = None) -> list[Domain]:
    """Every listed task file as a Domain; relative paths are taken from `base` (default: the working folder)."""
    domains = []
    for entry in paths:
        path = Path(entry)
        if not path.is_absolute() and base is not None:
            path = base / path
        domains.append(load_lmeval_task(path))
    names = [d.name for d in domains]
    for name in names:
        if names.count(name) > 1:
            raise InputError(name, "two diagnostic tasks have this name", field="task")
    return domains
