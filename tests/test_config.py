import pytest

from lifelong.config import load_config, parse_assignment, save_config
from lifelong.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_use_the_condition_preset():
    assert load_config(overrides={"condition": "a"}).pieces == ["full_finetune"]
    config = load_config(overrides={"condition": "b"})
    assert config.pieces == ["lora"]
    assert config.lora.r == 16


def test_precedence_preset_then_file_then_flags(tmp_path):
    path = write(tmp_path, "condition: a\ntraining:\n  lr: 7.0e-4\n  epochs: 2\nseed: 5\n")
    config = load_config(path, {"seed": 9, "training": {"epochs": 4}})
    assert config.training.lr == 7e-4  # file beats preset
    assert config.training.epochs == 4  # flag beats file
    assert config.seed == 9
    assert config.pieces == ["full_finetune"]


@pytest.mark.parametrize("text, fragment", [
    ("training:\n  lr: 1e-4\n  epocs: 3\n", ":3: key 'training.epocs': unknown key"),
    ("seed: many\n", ":1: key 'seed':"),
    ("model: tiny\ntraining:\n  lr: -1\n", ":3: key 'training.lr': Input should be greater than 0"),
    ("condition: z\n", "unknown condition 'z'"),
    ("training: [1, 2\n", "not valid YAML"),
    ("- a list\n", "must be a mapping"),
])
def test_bad_config_names_file_line_and_key(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_set_assignments_parse_yaml_values():
    assert parse_assignment("training.lr=1e-4") == {"training": {"lr": 1e-4}}
    assert parse_assignment("lora.target_modules=[q_proj]") == {"lora": {"target_modules": ["q_proj"]}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("training.lr")


def test_resolved_config_round_trips(tmp_path):
    config = load_config(overrides={"condition": "a", "seed": 3})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
