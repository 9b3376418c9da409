"""What the self-directed pieces share: the teacher, the filters, the log event, real text in the mix.

A self-directed piece writes study material in its `examples` hook: it receives the round's
examples (the documents and practice questions, and what earlier pieces made), adds what it
generated and kept, and makes sure real text stays at least `self_directed.real_share` of the
round. Every generated text is a `Generated` record (model, prompt name, prompt, source); the
records of a round, kept or not, and the examples made from them are written to
`<out>/generated/<domain>.<piece>.json`. A round that is run again (a resumed run) reads that
file instead of generating again, so a continued round trains on exactly the same material.

In a reference round (the documents-only comparison behind self_teaching_quality,
`context.reference` is True) the pieces pass the examples through unchanged.

Each round logs one event per piece:
`{"event": "self_teach", "domain", "piece", "generated", "kept", "dropped_duplicates",
"dropped_length", "dropped_overlap", "gap_rate", "distinct_1", "distinct_2", "self_rouge",
"teacher", "seconds", ...}`; distinct-n and self-ROUGE are over the kept texts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from lifelong.files import write_json
from lifelong.generation import Generated, Generator, learner_generator, teacher_generator
from lifelong.pieces.base import Piece
from lifelong.selfdirected import filters

REAL_SOURCES = ("document", "question")


def mix_real(examples: list, share: float) -> list:
    """Repeat the real examples (documents, practice questions) until they are at least `share` of the list."""
    real = [e for e in examples if e.source in REAL_SOURCES]
    if not real or share <= 0:
        return examples
    mixed = list(examples)
    count = len(real)
    i = 0
    while count / len(mixed) < share:
        mixed.append(real[i % len(real)])
        count += 1
        i += 1
    return mixed


class SelfDirectedPiece(Piece):
    """Base of the pieces that generate material; subclasses implement `study(domain, examples)`."""

    generates = True

    def __init__(self, options=None):
        super().__init__(options)
        self.material: dict = {}  # Example -> Generated: what this round's generated examples came from
        self.records: list[Generated] = []  # everything generated this round, kept or not
        self.last_event: dict | None = None

    # ---- the models ----------------------------------------------------------------------------
    def teacher(self) -> Generator:
        """Writes the material: config `teacher`, by default the learner itself."""
        return teacher_generator(self.context)

    def student(self) -> Generator:
        """The model that is learning (closed-book answers)."""
        return learner_generator(self.context)

    @property
    def settings(self):
        return self.context.config.self_directed

    # ---- the hook ------------------------------------------------------------------------------
    def examples(self, domain, examples):
        self.material, self.records = {}, []
        if getattr(self.context, "reference", False):
            return examples
        started = time.perf_counter()
        cached = self._read_cache(domain)
        if cached is not None:
            made, self.material, event = cached
            self.context.log({**event, "cached": True})
            self.last_event = event
        else:
            made, event = self.study(domain, examples)
            event = self._event(domain, event, time.perf_counter() - started)
            self._write_cache(domain, made, event)
            self.context.log(event)
            self.last_event = event
        return mix_real(made, self.settings.real_share)

    def study(self, domain, examples: list) -> tuple[list, dict]:
        """The round's examples after this piece, and the event fields (generated, kept, ...)."""
        raise NotImplementedError

    # ---- helpers -------------------------------------------------------------------------------
    def filter(self, records: Sequence[Generated], check_overlap: bool = True,
               real: Sequence[str] = ()) -> tuple[list[Generated], filters.FilterReport]:
        self.records.extend(records)
        texts = [record.text for record in records]
        report = filters.filter_texts(texts, [record.source for record in records], self.settings, real=real,
                                      check_overlap=check_overlap)
        return [records[i] for i in report.kept], report

    def _event(self, domain, fields: dict, seconds: float) -> dict:
        kept_texts = fields.pop("kept_texts", [])
        event = {"event": "self_teach", "domain": domain.name, "piece": self.name, "generated": 0, "kept": 0,
                 "dropped_duplicates": 0, "gap_rate": None, **filters.diversity(kept_texts), **fields,
                 "teacher": self.teacher_name(), "seconds": round(seconds, 2)}
        return event

    def teacher_name(self) -> str:
        """The model that wrote this piece's material (the config `teacher`, else the learner's model)."""
        return self.teacher().name

    # ---- the record of what was generated ------------------------------------------------------
    def _cache_path(self, domain) -> Path | None:
        out_dir = getattr(self.context, "out_dir", None)
        return Path(out_dir) / "generated" / f"{domain.name}.{self.name}.json" if out_dir else None

    def _write_cache(self, domain, made: list, event: dict) -> None:
        path = self._cache_path(domain)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        records = list(dict.fromkeys([*self.records, *self.material.values()]))
        index = {record: i for i, record in enumerate(records)}
        write_json(path, {"event": event, "records": [r.to_dict() for r in records],
                          "examples": [{**asdict(e), "record": index.get(self.material.get(e))} for e in made]})

    def _read_cache(self, domain):
        path = self._cache_path(domain)
        if path is None or not path.is_file():
            return None
        from lifelong.training import Example  # lazy: the loop imports the pieces

        data = json.loads(path.read_text(encoding="utf-8"))
        records = [Generated(**r) for r in data["records"]]
        made, material = [], {}
        for item in data["examples"]:
            record = item.pop("record")
            example = Example(**item)
            made.append(example)
            if record is not None:
                material[example] = records[record]
        return made, material, data["event"]
