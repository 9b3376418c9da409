import pytest

from lifelong.config import load_config
from lifelong.data.stream import load_stream
from lifelong.errors import InputError, LifelongError

from conftest import write_jsonl


def test_folder_takes_domains_in_name_order_with_core_and_canary(user_stream):
    stream = load_stream(user_stream)
    assert stream.domain_names == ["a_colors", "b_ships"]
    assert stream.canary is not None and len(stream.canary.eval_items) == 1
    assert stream.core is None


def test_stream_yaml_sets_order_and_paths(user_stream):
    (user_stream / "order.yaml").write_text("domains: [b_ships.jsonl, a_colors.jsonl]\n")
    stream = load_stream(user_stream / "order.yaml")
    assert stream.domain_names == ["b_ships", "a_colors"]
    assert stream.canary is None


def test_folder_prefers_its_stream_yaml(user_stream):
    (user_stream / "stream.yaml").write_text("domains: [b_ships.jsonl]\ncanary: canary.jsonl\n")
    stream = load_stream(user_stream)
    assert stream.domain_names == ["b_ships"]
    assert stream.canary is not None


def test_builtin_example_stream_loads():
    stream = load_stream("example")
    assert len(stream.domains) == 3
    assert stream.canary is not None and stream.core is not None


@pytest.mark.parametrize("yaml_text, fragment", [
    ("domains: [missing.jsonl]\n", "not found"),
    ("domains: []\n", "field 'domains'"),
    ("domain: [a_colors.jsonl]\n", "unknown key"),
    ("domains: [a_colors.jsonl, a_colors.jsonl]\n", "appears twice"),
    ("domains: [a_colors.jsonl\n", "not valid YAML"),
])
def test_bad_stream_yaml(user_stream, yaml_text, fragment):
    (user_stream / "stream.yaml").write_text(yaml_text)
    with pytest.raises(InputError, match=fragment):
        load_stream(user_stream)


def test_unknown_names_and_empty_folders(tmp_path):
    with pytest.raises(InputError, match="no such stream"):
        load_stream("no-such-stream")
    with pytest.raises(InputError, match="no domain files"):
        load_stream(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_stream(tmp_path / "missing" / "stream.yaml")


def test_domain_without_eval_questions_is_refused(tmp_path):
    write_jsonl(tmp_path / "s" / "only_docs.jsonl", [{"kind": "document", "text": "x"}])
    with pytest.raises(InputError, match="no eval questions"):
        load_stream(tmp_path / "s")


def test_exam_files_beside_the_domains_are_attached(user_stream):
    write_jsonl(user_stream / "exam" / "b_ships.jsonl", [
        {"kind": "mc", "question": "Ships?", "choices": ["sail", "fly"], "answer": 0}])
    stream = load_stream(user_stream)
    assert set(stream.exams) == {"b_ships"}
    assert stream.domain_names == ["a_colors", "b_ships"]  # exam files are not domains


SETTINGS_YAML = """domains: [a_colors.jsonl, b_ships.jsonl]
settings:
  training:
    epochs: 2
    lr: 1.0e-5
    warmup_ratio: 0.1
  evaluation:
    max_items: 7
"""


def test_stream_settings_rank_above_defaults_and_below_preset_file_and_flags(user_stream, tmp_path):
    (user_stream / "stream.yaml").write_text(SETTINGS_YAML)
    config = load_config(overrides={"stream": str(user_stream), "condition": "b"})
    assert (config.training.epochs, config.training.warmup_ratio, config.evaluation.max_items) == (2, 0.1, 7)
    assert config.training.lr == 1.0e-3  # the preset's
    user = tmp_path / "config.yaml"
    user.write_text(f"stream: {user_stream}\ntraining:\n  epochs: 4\n")
    assert load_config(user).training.epochs == 4
    assert load_config(user, {"training": {"epochs": 5}}).training.epochs == 5
    assert load_stream(user_stream).domain_names == ["a_colors", "b_ships"]  # settings do not disturb loading


def test_a_stream_can_size_one_condition_above_its_preset(user_stream):
    (user_stream / "stream.yaml").write_text(SETTINGS_YAML + "  by_condition:\n    e:\n      training:\n"
                                             "        epochs: 1\n")
    e = load_config(overrides={"stream": str(user_stream), "condition": "e"})
    assert e.training.epochs == 1 and e.training.lr == 3.0e-3  # above e's preset (3 epochs), the rest its own
    assert load_config(overrides={"stream": str(user_stream), "condition": "b"}).training.epochs == 2
    assert load_config(overrides={"stream": str(user_stream), "condition": "e",
                                  "training": {"epochs": 4}}).training.epochs == 4  # flags still win


@pytest.mark.parametrize(("settings", "fragment"), [
    ("settings:\n  by_condition:\n    e:\n      training:\n        epochs: none\n",
     r"stream\.yaml:6: key 'settings\.by_condition\.e\.training\.epochs'"),
    ("settings:\n  by_condition:\n    g: {}\n",
     r"stream\.yaml: key 'settings\.by_condition': unknown condition\(s\) g"),
    ("settings:\n  by_condition: [e]\n", r"field 'settings\.by_condition': must map a condition"),
    ("settings:\n  training:\n    epocs: 2\n", r"stream\.yaml:4: key 'settings\.training\.epocs': unknown key"),
    ("settings:\n  training:\n    epochs: none\n", r"stream\.yaml:4: key 'settings\.training\.epochs'"),
    ("settings:\n  stream: example\n", r"stream\.yaml: field 'settings\.stream': a stream cannot choose"),
    ("settings: 3\n", r"field 'settings': must be a mapping"),
])
def test_bad_stream_settings_name_the_file_and_key(user_stream, settings, fragment):
    (user_stream / "stream.yaml").write_text("domains: [a_colors.jsonl]\n" + settings)
    with pytest.raises(LifelongError, match=fragment):
        load_config(overrides={"stream": str(user_stream)})
