"""`lifelong learn`: documents in, a state folder that every call continues; lock; interruption."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifelong import learn as learn_module
from lifelong.checkpoint import read_state
from lifelong.cli import app
from lifelong.config import load_config
from lifelong.errors import ConfigError, InputError
from lifelong.evaluate import evaluate_model
from lifelong.learn import StateLocked, default_pieces, learn, read_documents, state_lock

from conftest import write_user_stream


@pytest.fixture
def setup(tmp_path) -> tuple[Path, Path]:
    stream = write_user_stream(tmp_path / "stream")
    config = tmp_path / "learn.yaml"
    config.write_text(f"model: tiny\nstream: {stream}\npieces: [fast_adapters, replay, consolidation]\n"
                      "training: {epochs: 1, batch_size: 2}\nevaluation: {progress: false}\n"
                      "consolidation: {every: 3, epochs: 1, min_transfer: 0.0}\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plinth.txt").write_text("The zorb of Plinth is blue.\n\nPlinth zorbs hum at night.\n")
    (tmp_path / "docs" / "quarn.md").write_text("# Quarn\n\nQuarn ships sail at dawn.\n")
    return tmp_path, config


def test_documents_from_files_and_folders(setup):
    root, _ = setup
    episode = read_documents([root / "docs", root / "stream" / "a_colors.jsonl"], "episode-1")
    texts = [d.text for d in episode.documents]
    assert "The zorb of Plinth is blue.\nPlinth zorbs hum at night." in texts
    assert "The quell of Marn is green." in texts
    assert len(episode.train_items) == 1 and len(episode.eval_items) == 2  # eval items: tested, never trained on


@pytest.mark.parametrize(("name", "message"), [("missing.txt", "document path not found"),
                                               ("notes.pdf", "unsupported document type"),
                                               ("empty", "folder holds no")])
def test_bad_document_paths_are_clear_errors(setup, name, message):
    root, config = setup
    (root / "notes.pdf").write_text("x")
    (root / "empty").mkdir()
    with pytest.raises(InputError, match=message) as error:
        learn([root / name], root / "state", config)
    assert name in str(error.value)
    assert not (root / "state").exists()  # refused before anything is written


def test_three_calls_continue_from_the_state_and_eval_scores_it(setup):
    root, config = setup
    docs = [[root / "stream" / "a_colors.jsonl"], [root / "docs" / "plinth.txt"], [root / "stream" / "b_ships.jsonl"]]
    entries = [learn(batch, root / "state", config if i == 0 else None) for i, batch in enumerate(docs)]
    state = read_state(root / "state")
    assert [h["episode"] for h in state["history"]] == [1, 2, 3]
    assert entries[1]["adapters"] == ["episode-1", "episode-2"]
    assert entries[2]["sleep"]["episodes"] == ["episode-1", "episode-2", "episode-3"]  # due every 3 episodes
    assert set(entries[2]["scores"]) == {"episode-1", "episode-3"}  # the episodes that brought eval questions
    assert entries[2]["canary"] is not None
    history = json.loads((root / "state" / "history.json").read_text())["history"]
    assert len(history) == 3 and (root / "state" / "report.html").is_file()
    eval_config = load_config(overrides={"model": "tiny", "stream": str(root / "stream"),
                                         "evaluation": {"progress": False}})
    results = evaluate_model(eval_config, checkpoint=root / "state")
    assert len(results["accuracy_matrix"][0]) == 2 and results["canary"] is not None


def test_a_second_call_on_a_held_state_is_refused(setup):
    root, config = setup
    with state_lock(root / "state"), pytest.raises(StateLocked, match="in use by another `lifelong learn`"):
        learn([root / "docs"], root / "state", config)
    with state_lock(root / "state"):
        pass  # released with its holder


def test_cli_refuses_a_held_state_with_one_line(setup):
    root, _ = setup
    with state_lock(root / "state"):
        result = CliRunner().invoke(app, ["learn", "--docs", str(root / "docs"), "--state", str(root / "state")])
    assert isinstance(result.exception, StateLocked)


def test_an_interrupted_call_loses_nothing(setup, monkeypatch):
    root, config = setup
    learn([root / "docs" / "plinth.txt"], root / "state", config)
    before = read_state(root / "state")
    weights = (root / "state" / before["checkpoint"] / "model.safetensors").read_bytes()

    def killed(self):
        raise KeyboardInterrupt

    original = learn_module.ContinualLearner._save
    monkeypatch.setattr(learn_module.ContinualLearner, "_save", killed)
    with pytest.raises(KeyboardInterrupt):
        learn([root / "docs" / "quarn.md"], root / "state", None)
    assert read_state(root / "state") == before
    assert (root / "state" / before["checkpoint"] / "model.safetensors").read_bytes() == weights
    monkeypatch.setattr(learn_module.ContinualLearner, "_save", original)
    entry = learn([root / "docs" / "quarn.md"], root / "state", None)
    assert entry["episode"] == 2 and len(read_state(root / "state")["history"]) == 2


def test_a_later_call_cannot_change_the_model(setup):
    root, config = setup
    learn([root / "docs" / "plinth.txt"], root / "state", config)
    with pytest.raises(ConfigError, match="a later call takes no CONFIG or --model"):
        learn([root / "docs" / "quarn.md"], root / "state", None, {"model": "smollm2-135m"})


def test_default_pieces_add_the_installed_self_teaching_and_self_test(monkeypatch):
    monkeypatch.setattr(learn_module, "PIECES", {"study_notes": object, "self_test": object})
    assert default_pieces() == ["study_notes", "fast_adapters", "replay", "practice", "distill", "self_test",
                                "consolidation"]
    monkeypatch.setattr(learn_module, "PIECES", {})
    assert default_pieces() == ["fast_adapters", "replay", "practice", "distill", "consolidation"]


def test_a_state_config_from_an_older_version_drops_the_keys_it_no_longer_knows(tmp_path):
    import yaml

    from lifelong.config import save_config
    from lifelong.learn import learn_config

    save_config(load_config(overrides={"model": "tiny", "condition": "f"}), tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    data["replay"]["retired_option"], data["retired_section"] = 1, {"x": 1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    config = learn_config(tmp_path, None, {})
    assert config.model == "tiny"
    assert config.pieces == ["fast_adapters", "replay", "practice", "distill", "consolidation"]
