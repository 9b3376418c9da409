"""The domain file format (DESIGN §2), in one place.

A domain is one JSONL file; each line is a `document`, a `qa` item or an `mc` item. Every bad
line raises an InputError naming the file, the line number and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lifelong.errors import InputError

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Document:
    text: str


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str
    aliases: tuple[str, ...] = ()
    split: str = "eval"

    @property
    def answers(self) -> tuple[str, ...]:
        return (self.answer, *self.aliases)


@dataclass(frozen=True)
class MCItem:
    question: str
    choices: tuple[str, ...]
    answer: int
    split: str = "eval"


Item = QAItem | MCItem


@dataclass
class Domain:
    """Study documents plus questions, read from `NAME.jsonl`."""

    name: str
    documents: list[Document] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    path: Path | None = None

    def questions(self, split: str) -> list[Item]:
        return [item for item in self.items if item.split == split]

    @property
    def eval_items(self) -> list[Item]:
        return self.questions("eval")

    @property
    def train_items(self) -> list[Item]:
        return self.questions("train")


def _text_field(record: dict, key: str, path: Path, line: int) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InputError(path, f"must be a string, got {type(value).__name__}", line, key)
    if not value.strip():
        raise InputError(path, "must not be empty", line, key)
    return value


def _split(record: dict, path: Path, line: int) -> str:
    split = record.get("split", "eval")
    if split not in SPLITS:
        raise InputError(path, f"must be one of {', '.join(SPLITS)}, got {split!r}", line, "split")
    return split


def _parse_qa(record: dict, path: Path, line: int) -> QAItem:
    aliases = record.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise InputError(path, "must be a list of non-empty strings", line, "aliases")
    return QAItem(
        question=_text_field(record, "question", path, line),
        answer=_text_field(record, "answer", path, line),
        aliases=tuple(aliases),
        split=_split(record, path, line),
    )


def _parse_mc(record: dict, path: Path, line: int) -> MCItem:
    question = _text_field(record, "question", path, line)
    choices = record.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise InputError(path, "must be a list of at least two strings", line, "choices")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise InputError(path, "every choice must be a non-empty string", line, "choices")
    answer = record.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise InputError(path, f"must be an integer index into choices, got {answer!r}", line, "answer")
    if not 0 <= answer < len(choices):
        raise InputError(path, f"index {answer} is out of range for {len(choices)} choices", line, "answer")
    return MCItem(question=question, choices=tuple(choices), answer=answer, split=_split(record, path, line))


def parse_record(record: object, path: Path, line: int) -> Document | Item:
    if not isinstance(record, dict):
        raise InputError(path, "each line must be a JSON object", line)
    kind = record.get("kind")
    if kind == "document":
        return Document(text=_text_field(record, "text", path, line))
    if kind == "qa":
        return _parse_qa(record, path, line)
    if kind == "mc":
        return _parse_mc(record, path, line)
    raise InputError(path, f"must be 'document', 'qa' or 'mc', got {kind!r}", line, "kind")


def load_domain(path: str | Path, name: str | None = None) -> Domain:
    """Read one domain file; the domain's name is the file's stem unless given."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "domain file not found")
    domain = Domain(name=name or path.stem, path=path)
    with path.open(encoding="utf-8") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as error:
                raise InputError(path, f"not valid JSON ({error.msg})", line_number) from None
            parsed = parse_record(record, path, line_number)
            if isinstance(parsed, Document):
                domain.documents.append(parsed)
            else:
                domain.items.append(parsed)
    if not domain.documents and not domain.items:
        raise InputError(path, "domain file is empty")
    return domain


def record_to_json(record: Document | Item) -> dict:
    """The inverse of parse_record, for writing domain files."""
    if isinstance(record, Document):
        return {"kind": "document", "text": record.text}
    if isinstance(record, QAItem):
        out = {"kind": "qa", "split": record.split, "question": record.question, "answer": record.answer}
        if record.aliases:
            out["aliases"] = list(record.aliases)
        return out
    return {"kind": "mc", "split": record.split, "question": record.question,
            "choices": list(record.choices), "answer": record.answer}


def write_domain(path: str | Path, records: list[Document | Item]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record_to_json(record), ensure_ascii=False) + "\n")
    tmp.replace(path)
