"""Selective freezing, gradual unfreezing and LoRA's per-layer rank pattern."""

import torch

from lifelong.config import load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.learner import Learner
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.base import Piece
from lifelong.pieces.layerwise_lr import layer_index

DOMAIN = Domain("zorb", documents=[Document("The zorb of Plinth is blue."), Document("Marn quells are green."),
                                   Document("Quarn ships sail at dawn."), Document("Tel lamps burn red oil.")],
                items=[QAItem("What color is the zorb of Plinth?", "blue", split="train"),
                       QAItem("When do Quarn ships sail?", "dawn", split="train"),
                       QAItem("What color are Marn quells?", "green", split="train")])


def make_learner(tokenizer, pieces, layers=3, training=None, **sections):
    config = load_config(overrides={"model": "tiny", "pieces": pieces, "evaluation": {"progress": False},
                                    "training": {"epochs": 1, "batch_size": 2, "lr": 1e-3, **(training or {})},
                                    **sections})
    model = tiny_model(tokenizer, layers=layers, seed=0)
    return Learner(model, tokenizer, build_pieces(config.pieces, config), config), config


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before, after):
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_frozen_parameters_do_not_move_while_the_others_do(tiny):
    patterns = ["layers.2.mlp.down_proj", r".*\.1\.self_attn\.q_proj\..*"]  # a substring, a full-name regex
    learner, _ = make_learner(tiny[1], ["full_finetune", "freezing"], freezing={"bottom_n": 1, "names": patterns})
    before = snapshot(learner.model)
    learner.learn(DOMAIN, seed=0)
    moved = changed(before, snapshot(learner.model))
    frozen = {n for n in before if layer_index(n) == 0 or "layers.2.mlp.down_proj" in n
              or "layers.1.self_attn.q_proj" in n}
    assert frozen and not frozen & moved
    assert moved == set(before) - frozen  # every other parameter trained (embeddings and final norm too)


def test_embeddings_can_be_frozen(tiny):
    learner, _ = make_learner(tiny[1], ["full_finetune", "freezing"], freezing={"embeddings": True})
    before = snapshot(learner.model)
    learner.learn(DOMAIN, seed=0)
    moved = changed(before, snapshot(learner.model))
    assert "model.embed_tokens.weight" not in moved and "model.layers.0.mlp.up_proj.weight" in moved


def test_freezing_a_layer_under_lora_freezes_its_adapters(tiny):
    learner, config = make_learner(tiny[1], ["lora", "freezing"], freezing={"bottom_n": 2},
                                   lora={"after_domain": "continue"})
    before = snapshot(learner.model)
    learner.learn(DOMAIN, seed=0)
    moved = changed(before, snapshot(learner.model))
    adapters = {n for n in before if "lora_" in n}
    assert moved and moved <= adapters
    assert all(layer_index(n) == 2 for n in moved)
    assert {n for n in adapters if layer_index(n) == 2 and "lora_B" in n} <= moved


def test_freezing_also_covers_the_fresh_adapter_after_a_merge(tiny):
    learner, _ = make_learner(tiny[1], ["lora", "freezing"], freezing={"bottom_n": 1})
    learner.learn(DOMAIN, seed=0)  # merge + fresh adapter
    before = snapshot(learner.model)
    learner.pieces[0].options = learner.pieces[0].options.model_copy(update={"after_domain": "continue"})
    learner.learn(DOMAIN, seed=1)
    moved = changed(before, snapshot(learner.model))
    assert moved and all(layer_index(n) != 0 for n in moved)


class Probe(Piece):
    """Snapshots the weights before every step, after the pieces before it ran their before_step."""

    name = "probe"

    def __init__(self):
        super().__init__()
        self.snapshots = []

    def before_step(self, step):
        self.snapshots.append(snapshot(self.learner.model))

    def after_round(self, domain):
        self.snapshots.append(snapshot(self.learner.model))


def layers_moved_per_step(learner, probe):
    learner.learn(DOMAIN, seed=0)
    steps = []
    for before, after in zip(probe.snapshots, probe.snapshots[1:], strict=False):
        names = changed(before, after)
        steps.append({("embed" if "embed" in n else layer_index(n)) for n in names})
    return steps


def test_gradual_unfreezing_adds_one_layer_every_k_steps(tiny):
    k = 2
    _, config = make_learner(tiny[1], ["full_finetune", "unfreezing"], training={"batch_size": 1},
                             unfreezing={"every": "steps", "every_steps": k})
    probe = Probe()
    model = tiny_model(tiny[1], layers=3, seed=0)
    learner = Learner(model, tiny[1], [*build_pieces(config.pieces, config), probe], config)
    moved = layers_moved_per_step(learner, probe)
    assert len(moved) == 7  # 4 documents + 3 practice questions, batch size 1
    assert moved[0] == {2, None}  # step 0: the top layer and the final norm only
    assert moved[k - 1] == {2, None}
    assert moved[k] == {1, 2, None}  # step k: one layer more
    assert moved[2 * k] == {0, 1, 2, None}  # step 2k: all layers, embeddings still frozen
    assert moved[3 * k] == {0, 1, 2, None, "embed"}  # step 3k: the embeddings (and tied head) last
    assert all(p.requires_grad for p in learner.model.parameters())  # trainable again after the round


def test_gradual_unfreezing_under_lora_walks_the_adapters_down(tiny):
    _, config = make_learner(tiny[1], ["lora", "unfreezing"], training={"batch_size": 1},
                             unfreezing={"every": "steps", "every_steps": 1}, lora={"after_domain": "continue"})
    probe = Probe()
    learner = Learner(tiny_model(tiny[1], layers=3, seed=0), tiny[1], [*build_pieces(config.pieces, config), probe],
                      config)
    moved = layers_moved_per_step(learner, probe)
    assert moved[:4] == [{2}, {1, 2}, {0, 1, 2}, {0, 1, 2}]


def test_unfreezing_every_epoch_uses_the_steps_per_epoch(tiny):
    _, config = make_learner(tiny[1], ["full_finetune", "unfreezing"], training={"batch_size": 4, "epochs": 3})
    assert config.unfreezing.every == "epoch"
    probe = Probe()
    learner = Learner(tiny_model(tiny[1], layers=3, seed=0), tiny[1], [*build_pieces(config.pieces, config), probe],
                      config)
    moved = layers_moved_per_step(learner, probe)
    assert moved == [{2, None}] * 2 + [{1, 2, None}] * 2 + [{0, 1, 2, None}] * 2  # 7 examples: 2 steps an epoch


def test_lora_rank_pattern_sets_the_rank_of_one_layer(tiny):
    learner, _ = make_learner(tiny[1], ["lora"], lora={"r": 8, "rank_pattern": {"layers.0.self_attn.q_proj": 4}})
    shapes = {n: tuple(p.shape) for n, p in learner.model.named_parameters() if "lora_A" in n}
    assert shapes["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"][0] == 4
    assert shapes["base_model.model.model.layers.1.self_attn.q_proj.lora_A.default.weight"][0] == 8
    assert shapes["base_model.model.model.layers.0.self_attn.k_proj.lora_A.default.weight"][0] == 8


def test_a_round_that_ended_early_does_not_leave_layers_frozen(tiny):
    learner, _ = make_learner(tiny[1], ["full_finetune", "unfreezing"], unfreezing={"every": "steps"})
    unfreezing = learner.pieces[1]
    unfreezing.before_round(DOMAIN)
    unfreezing.before_step(0)  # the round starts, then dies before after_round
    assert not all(p.requires_grad for p in learner.model.parameters())
    unfreezing.before_round(DOMAIN)
    assert all(p.requires_grad for p in learner.model.parameters())
