"""Every piece is selectable in config, its options are validated, and presets c and d resolve."""

import pytest

from lifelong import config as config_module
from lifelong.config import load_config
from lifelong.errors import ConfigError
from lifelong.pieces import PIECES, build_pieces
from lifelong.pieces.replay import Replay

NEW = ["layerwise_lr", "unfreezing", "freezing", "ewc", "replay", "sam"]


@pytest.mark.parametrize("name", NEW)
def test_each_piece_is_selectable_with_its_own_section(name, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"model: tiny\npieces: [full_finetune, {name}]\n")
    config = load_config(path)
    full, piece = build_pieces(config.pieces, config)
    assert isinstance(piece, PIECES[name]) and piece.name == name
    assert piece.options is getattr(config, name)
    assert type(piece.options).__name__.endswith("Config")
    assert PIECES[name].__doc__ and __import__(PIECES[name].__module__, fromlist=["_"]).__doc__


@pytest.mark.parametrize("name", NEW)
def test_an_unknown_option_is_a_config_error_naming_the_key(name, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"pieces: [{name}]\n{name}:\n  no_such_option: 1\n")
    with pytest.raises(ConfigError, match=rf"run.yaml:3: key '{name}\.no_such_option': unknown key"):
        load_config(path)


@pytest.mark.parametrize("assignment, key", [
    ({"layerwise_lr": {"xi": 0}}, "layerwise_lr.xi"),
    ({"layerwise_lr": {"xi": 1.5}}, "layerwise_lr.xi"),
    ({"unfreezing": {"every": "fortnight"}}, "unfreezing.every"),
    ({"freezing": {"names": ["layers.(0"]}}, "freezing.names"),
    ({"freezing": {"bottom_n": -1}}, "freezing.bottom_n"),
    ({"ewc": {"ewc_lambda": -1}}, "ewc.ewc_lambda"),
    ({"replay": {"ratio": 1.0}}, "replay.ratio"),
    ({"replay": {"policy": "fifo"}}, "replay.policy"),
    ({"sam": {"rho": -0.1}}, "sam.rho"),
])
def test_bad_option_values_name_the_key(assignment, key):
    with pytest.raises(ConfigError, match=rf"key '{key}'"):
        load_config(overrides=assignment)


def test_literature_defaults():
    config = load_config()
    assert config.layerwise_lr.xi == 0.9
    assert config.replay.ratio == 0.2 and config.replay.buffer_size == 200 and config.replay.policy == "reservoir"
    assert config.ewc.gamma == 1.0 and config.ewc.fisher_samples == 64
    assert config.sam.rho == 0.05


def test_presets_c_and_d_resolve_to_their_pieces():
    assert {"a", "b", "c", "d", "f"} <= set(config_module.CONDITIONS)
    c = load_config(overrides={"condition": "c"})
    assert c.pieces == ["lora", "replay"] and c.training.lr == 3e-3 and c.lora.after_domain == "merge"
    assert (c.training.epochs, c.training.batch_size, c.replay.ratio, c.replay.buffer_size) == (4, 5, 0.4, 400)
    assert Replay(c.replay).old_per_batch(c.training.batch_size) == 2  # 3 new and 2 old in every batch
    d = load_config(overrides={"condition": "d"})
    assert d.pieces == ["lora", "replay", "layerwise_lr"] and d.layerwise_lr.xi == 0.9
    assert [p.name for p in build_pieces(d.pieces, d)] == d.pieces


def test_preset_e_is_routed_episode_adapters_with_practice_and_the_recovering_self_test():
    e = load_config(overrides={"condition": "e"})
    assert e.pieces == ["fast_adapters", "layerwise_lr", "practice", "self_test"]
    assert e.fast_adapters.inference == "route" and e.fast_adapters.lr is None and e.training.lr == 3e-3
    assert e.self_test.repair.mode == "recover"
    assert [p.name for p in build_pieces(e.pieces, e)] == e.pieces
