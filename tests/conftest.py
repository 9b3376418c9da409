import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def hermetic_streams(monkeypatch, request):
    """A test names its stream: one that reaches a preparable built-in stream by name (the default,
    five-domains) fails, rather than download it or read whatever this machine has prepared; and a
    config that names no stream gets the plain defaults, so retuning five-domains' recommended settings
    changes no other test."""
    if request.node.get_closest_marker("prepared_streams"):
        return
    from lifelong.data import prepared, stream, stream_spec
    from lifelong.errors import LifelongError

    original = stream._resolve_builtin
    original_settings = stream_spec.stream_settings

    def resolve(name: str):
        if name in prepared.PREPARABLE:
            raise LifelongError(f"test reached the prepared stream {name!r}: give it a stream of its own")
        return original(name)

    def settings(spec):  # a config built without a stream gets the defaults, not five-domains' sizing
        return ({}, None) if str(spec) in prepared.PREPARABLE else original_settings(spec)

    monkeypatch.setattr(stream, "_resolve_builtin", resolve)
    monkeypatch.setattr(stream_spec, "stream_settings", settings)


def synthetic_general_sources(countries_count: int = 100):
    """General-set sources of invented countries, antonyms and plurals (no download)."""
    from lifelong.data.general import GeneralSources
    from lifelong.data.sources.countries import Country
    from lifelong.data.sources.wordnet import Entry

    return GeneralSources(
        countries=[Country(f"Country{i}", f"City{i}", "Europe", f"Demonym{i}", None, ())
                   for i in range(countries_count)],
        antonyms=[(f"up{i}", (f"down{i}",)) for i in range(20)] + [(f"down{i}", (f"up{i}",)) for i in range(20)],
        plurals=[(f"thing{i}", f"thingz{i}") for i in range(10)],
        glossary=[Entry(f"term{i}", (), f"the {i}th made-up general notion", "general", f"g{i}") for i in range(40)])


@pytest.fixture(scope="session", autouse=True)
def synthetic_general(tmp_path_factory):
    """A general set built from synthetic sources, which every run of the session (subprocesses too, through
    LIFELONG_GENERAL_DIR) finds prepared: no download, never the machine's own. Tests marked prepared_streams
    that want the real one unset the variable."""
    from lifelong.data import general

    folder = tmp_path_factory.mktemp("general")
    general.build_general(folder, synthetic_general_sources())
    previous = os.environ.get(general.DIR_VARIABLE)
    os.environ[general.DIR_VARIABLE] = str(folder)
    yield general.load_general(progress=False)
    if previous is None:
        os.environ.pop(general.DIR_VARIABLE, None)
    else:
        os.environ[general.DIR_VARIABLE] = previous


@pytest.fixture(scope="session")
def tiny():
    """A tiny random Llama with the embedded tokenizer: (model, tokenizer)."""
    from lifelong.models import load_model

    return load_model("tiny", seed=0)


def write_user_stream(folder: Path) -> Path:
    """Two domains and a canary, with invented facts, as a folder of user JSONL files."""
    write_jsonl(folder / "a_colors.jsonl", [
        {"kind": "document", "text": "The zorb of Plinth is blue."},
        {"kind": "document", "text": "The quell of Marn is green."},
        {"kind": "qa", "question": "What color is the zorb of Plinth?", "answer": "blue"},
        {"kind": "qa", "split": "train", "question": "What color is the quell of Marn?", "answer": "green"},
        {"kind": "mc", "question": "What color is the zorb?", "choices": ["red", "blue"], "answer": 1},
    ])
    write_jsonl(folder / "b_ships.jsonl", [
        {"kind": "document", "text": "Quarn ships sail at dawn."},
        {"kind": "qa", "question": "When do Quarn ships sail?", "answer": "dawn", "aliases": ["at dawn"]},
    ])
    write_jsonl(folder / "canary.jsonl", [
        {"kind": "qa", "question": "What is the capital of France?", "answer": "Paris"},
    ])
    return folder


@pytest.fixture
def user_stream(tmp_path) -> Path:
    """A folder of user JSONL files: two domains and a canary, with invented facts."""
    return write_user_stream(tmp_path / "stream")


def interrupt_before_domain(monkeypatch, index: int):
    """Make Experiment raise KeyboardInterrupt (as a killed run would stop) before learning domain `index`.

    Returns a function that undoes the patch, so the test can resume the run.
    """
    from lifelong.experiment import Experiment

    original = Experiment._learn_domain

    def interrupted(self, learner, evaluator, position):
        if position == index:
            raise KeyboardInterrupt
        return original(self, learner, evaluator, position)

    monkeypatch.setattr(Experiment, "_learn_domain", interrupted)
    return lambda: monkeypatch.setattr(Experiment, "_learn_domain", original)
