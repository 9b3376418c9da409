"""Replay: the share of old examples in every batch, the storage policies, the core set, resume."""

import json
import random
from collections import Counter

import pytest

from lifelong.config import ReplayConfig, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.data.stream import load_stream
from lifelong.experiment import Experiment
from lifelong.learner import Learner, plain_examples
from lifelong.models import tiny_model
from lifelong.pieces import build_pieces
from lifelong.pieces.replay import Replay
from lifelong.training import Example, plan_epochs

from conftest import interrupt_before_domain, write_jsonl

CORE = Domain("core", documents=[Document("Water boils at 100 degrees Celsius at sea level.")],
              items=[QAItem("What is the capital of France?", "Paris", split="train"),
                     QAItem("How many legs does a spider have?", "eight", split="eval")])


def make_replay(tokenizer=None, core_domain=None, **options):
    config = load_config(overrides={"model": "tiny", "pieces": ["lora", "replay"], "replay": options,
                                    "evaluation": {"progress": False},
                                    "training": {"epochs": 1, "batch_size": 8}})
    learner = Learner(tiny_model(tokenizer, seed=0), tokenizer, build_pieces(config.pieces, config), config)
    learner.core = core_domain
    return learner, learner.pieces[1]


def new_examples(n, tag="new"):
    return [Example(f"{tag} example {i}.") for i in range(n)]


@pytest.mark.parametrize("ratio, batch_size, n_old", [(0.2, 8, 2), (0.25, 8, 2), (0.5, 4, 2), (0.1, 4, 1),
                                                     (0.05, 8, 1)])
def test_every_batch_holds_the_configured_share_of_old_examples(tiny, ratio, batch_size, n_old):
    learner, replay = make_replay(tiny[1], core_domain=CORE, ratio=ratio)
    for example in new_examples(5, "earlier"):
        replay.add("earlier", example)
    new = new_examples(23)
    plans = plan_epochs(new, learner.pieces, batch_size, epochs=2, seed=0)
    old_pool = set(replay.pool())
    assert len(old_pool) == 5 + 2  # buffer + core document + core split=train question
    for plan in plans:
        assert all(sum(e in old_pool for e in batch) == n_old for batch in plan)
        assert all(len(batch) <= batch_size for batch in plan)
        assert sorted(e.text for b in plan for e in b if e not in old_pool) == sorted(e.text for e in new)


def test_core_share_draws_that_share_of_old_examples_from_the_core_whatever_the_sizes(tiny):
    big_core = Domain("core", items=[QAItem(f"General question {i}?", f"answer {i}", split="train")
                                     for i in range(200)])
    counts = {}
    for share in (None, 0.5):
        learner, replay = make_replay(tiny[1], core_domain=big_core, ratio=0.5, core_share=share)
        for example in new_examples(10, "earlier"):
            replay.add("earlier", example)
        core = set(replay.core_examples())
        new = new_examples(400)
        plans = plan_epochs(new, learner.pieces, 4, epochs=1, seed=0)
        old = [e for batch in plans[0] for e in batch if e not in set(new)]
        counts[share] = sum(e in core for e in old) / len(old)
    assert counts[None] > 0.9  # one pool: 200 core examples crowd out 10 buffered ones
    assert 0.4 < counts[0.5] < 0.6


def test_grouped_batches_get_old_examples_of_like_length_and_the_same_share(tiny):
    """Under group_by_length the epoch's old examples are dealt by length: long with long, short with short."""
    def padded(plan):
        return sum(len(b) * max(len(e.text) for e in b) for b in plan)

    plans = {}
    for grouped in (False, True):
        config = load_config(overrides={"model": "tiny", "pieces": ["lora", "replay"], "replay": {"ratio": 0.25},
                                        "evaluation": {"progress": False},
                                        "training": {"epochs": 1, "batch_size": 4, "group_by_length": grouped}})
        learner = Learner(tiny_model(tiny[1], seed=0), tiny[1], build_pieces(config.pieces, config), config)
        replay = learner.pieces[1]
        for i in range(12):  # old: half one-liners, half long documents
            replay.add("earlier", Example(f"old {i}." if i % 2 else f"old document {i}. " + "words " * 60))
        new = [Example(f"q {i}?" if i % 2 else f"new document {i}. " + "text " * 60) for i in range(24)]
        [plan] = plan_epochs(new, learner.pieces, 4, epochs=1, seed=0, group_by_length=grouped)
        old_pool = set(replay.pool())
        assert all(sum(e in old_pool for e in batch) == 1 for batch in plan)
        plans[grouped] = plan
    assert padded(plans[True]) < 0.75 * padded(plans[False])


def test_no_old_examples_means_default_batches(tiny):
    learner, replay = make_replay(tiny[1])
    assert replay.batches(new_examples(4), 2, random.Random(0)) is None  # nothing old yet, no core
    _, no_share = make_replay(tiny[1], core_domain=CORE, ratio=0.0)
    assert no_share.batches(new_examples(4), 2, random.Random(0)) is None


def test_core_examples_are_the_core_domains_plain_examples(tiny):
    learner, replay = make_replay(tiny[1], core_domain=CORE)
    assert replay.core_examples() == plain_examples(CORE, learner.config.evaluation.prompt, with_questions=True)
    kinds = Counter(e.source for e in replay.core_examples())
    assert kinds == {"document": 1, "question": 1}  # the eval question is not replayed
    _, switched_off = make_replay(tiny[1], core_domain=CORE, core=False)
    assert switched_off.core_examples() == []
    _, no_core = make_replay(tiny[1])
    assert no_core.core_examples() == []


def test_reservoir_respects_capacity_and_keeps_a_uniform_sample():
    capacity, n, trials = 20, 200, 1500
    hits = Counter()
    for trial in range(trials):
        replay = Replay(ReplayConfig(buffer_size=capacity, policy="reservoir"))
        replay.rng = random.Random(trial)
        for i in range(n):
            replay.add(f"d{i // 50}", Example(f"x{i}"))
            assert len(replay.buffer) <= capacity
        assert len(replay.buffer) == capacity
        hits.update(e.text for _, e in replay.buffer)
    rate = capacity / n
    first = sum(hits[f"x{i}"] for i in range(50)) / (50 * trials)
    last = sum(hits[f"x{i}"] for i in range(150, 200)) / (50 * trials)
    assert first == pytest.approx(rate, rel=0.05) and last == pytest.approx(rate, rel=0.05)


def test_balanced_keeps_an_equal_share_per_domain():
    replay = Replay(ReplayConfig(buffer_size=30, policy="balanced"))
    for domain, size in (("medical", 100), ("legal", 40), ("code", 70)):
        for i in range(size):
            replay.add(domain, Example(f"{domain} {i}"))
    counts = Counter(d for d, _ in replay.buffer)
    assert len(replay.buffer) == 30 and counts == {"medical": 10, "legal": 10, "code": 10}
    assert all(e.text.startswith(d) for d, e in replay.buffer)
    small = Replay(ReplayConfig(buffer_size=30, policy="balanced"))
    for domain, size in (("a", 5), ("b", 100)):
        for i in range(size):
            small.add(domain, Example(f"{domain} {i}"))
    assert Counter(d for d, _ in small.buffer) == {"a": 5, "b": 25}  # a domain with fewer keeps all it has


def test_reservoir_over_domains_is_proportional_not_balanced():
    replay = Replay(ReplayConfig(buffer_size=30, policy="reservoir"))
    for domain, size in (("big", 270), ("small", 30)):
        for i in range(size):
            replay.add(domain, Example(f"{domain} {i}"))
    assert Counter(d for d, _ in replay.buffer)["big"] > 20


def test_state_round_trips_and_the_sampling_continues_identically():
    replay = Replay(ReplayConfig(buffer_size=10))
    for i in range(40):
        replay.add("a", Example(f"a{i}", prompt="Q:" if i % 2 else ""))
    state = json.loads(json.dumps(replay.state_dict()))  # plain data only
    restored = Replay(ReplayConfig(buffer_size=10))
    restored.load_state_dict(state)
    assert restored.buffer == replay.buffer and restored.seen == 40
    for i in range(40, 80):
        replay.add("b", Example(f"b{i}"))
        restored.add("b", Example(f"b{i}"))
    assert restored.buffer == replay.buffer


def test_the_rounds_examples_enter_the_buffer_after_the_round(tiny):
    learner, replay = make_replay(tiny[1], core_domain=CORE)
    domain = Domain("zorb", documents=[Document("The zorb of Plinth is blue.")],
                    items=[QAItem("What color is the zorb?", "blue", split="train")])
    learner.learn(domain, seed=0)
    assert [d for d, _ in replay.buffer] == ["zorb", "zorb"]
    assert [e for _, e in replay.buffer] == learner.examples(domain)


@pytest.mark.parametrize("condition", ["c", "d"])
def test_conditions_c_and_d_run_resume_and_replay_the_core_set(user_stream, tmp_path, monkeypatch, condition):
    write_jsonl(user_stream / "core.jsonl", [
        {"kind": "document", "text": "Water boils at 100 degrees Celsius."},
        {"kind": "qa", "split": "train", "question": "What is the capital of France?", "answer": "Paris"},
    ])
    overrides = {"model": "tiny", "condition": condition, "stream": str(user_stream),
                 "training": {"epochs": 1, "batch_size": 4}, "evaluation": {"progress": False}}
    pools = []
    original_batches = Replay.batches

    def spy(self, examples, batch_size, rng):
        pools.append((len(self.core_examples()), sorted(e.text for _, e in self.buffer)))
        return original_batches(self, examples, batch_size, rng)

    monkeypatch.setattr(Replay, "batches", spy)
    reference = Experiment(load_config(overrides={**overrides, "out": str(tmp_path / "straight")})).run()
    config = load_config(overrides=overrides)
    first = load_stream(str(user_stream)).domains[0]
    colors = sorted(e.text for e in plain_examples(first, config.evaluation.prompt, with_questions=True))
    assert pools == [(2, []), (2, colors)]  # the core set from the start; a_colors' examples for b_ships

    resume = interrupt_before_domain(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        Experiment(load_config(overrides={**overrides, "out": str(tmp_path / "killed")})).run()
    resume()
    pools.clear()
    resumed = Experiment(load_config(overrides={**overrides, "out": str(tmp_path / "killed")})).run()
    assert pools == [(2, colors)]  # the buffer came back from the checkpoint
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]
    assert resumed["condition"] == condition
