"""Scale (docs/scale.md): batches split across processes, two Accelerate processes against one, Ray fan-out."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from lifelong.compare import run_compare
from lifelong.config import load_config
from lifelong.experiment import Experiment
from lifelong.parallel import map_tasks
from lifelong.training import Example, collate, shard_batch, tokenize_examples

RUN_RAY = os.environ.get("LIFELONG_TEST_RAY", "1") != "0"


def _square(x: int) -> int:
    return x * x


def test_map_tasks_in_order_without_ray_for_one_worker(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # the serial path never imports Ray
    assert map_tasks(_square, [3, 1, 2], workers=1) == [9, 1, 4]
    assert map_tasks(_square, [5], workers=4) == [25]  # one item: no fan-out either


def test_shards_average_to_the_whole_batch_gradient(tiny):
    """What DDP averages over two processes, each on its weighted part, is the one-process gradient."""
    model, tokenizer = tiny
    texts = ["The zorb of Plinth is blue.", "Quarn ships sail at dawn, always.", "Marn."]
    features = tokenize_examples(tokenizer, [Example(text=t) for t in texts], 64)
    pad = tokenizer.pad_token_id

    def grads(batch, scale=1.0):
        model.zero_grad()
        (model(**collate(batch, pad)).loss * scale).backward()
        return [p.grad.clone() for p in model.parameters()]

    whole = grads(features)
    parts = [shard_batch(features, rank, 2) for rank in range(2)]
    assert [len(part) for part, _ in parts] == [2, 1]
    averaged = [sum(g) / 2 for g in zip(*(grads(part, scale) for part, scale in parts), strict=True)]
    assert all(torch.allclose(a, w, atol=1e-6) for a, w in zip(averaged, whole, strict=True))
    part, scale = shard_batch(features[:1], 1, 2)  # nothing left for rank 1: it runs one example with weight 0
    assert len(part) == 1 and scale == 0.0
    assert shard_batch(features, 0, 1) == (features, None)
    model.zero_grad()


def _train_losses(out) -> list[float]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [event["loss"] for event in map(json.loads, lines) if event["event"] == "train"]


def test_two_processes_match_one(user_stream, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): the same losses, weights and scores as one process."""
    args = ["--model", "tiny", "--stream", str(user_stream), "--condition", "a", "--set", "training.epochs=2",
            "--set", "training.batch_size=3", "--set", "training.log_every=1", "--set", "evaluation.progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    started = time.perf_counter()
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "lifelong", "run", *args, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    print(f"two processes: {time.perf_counter() - started:.1f} s")
    assert two.stdout.count("average_accuracy") == 1  # one process prints
    one = subprocess.run([sys.executable, "-m", "lifelong", "run", *args, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]

    results = {n: json.loads((tmp_path / n / "results.json").read_text()) for n in ("one", "two")}
    assert results["two"]["accuracy_matrix"] == results["one"]["accuracy_matrix"]
    assert results["two"]["canary"] == results["one"]["canary"]
    assert results["two"]["metrics"] == results["one"]["metrics"]
    assert results["two"]["steps"] == results["one"]["steps"] == [2, 2]
    assert _train_losses(tmp_path / "two") == pytest.approx(_train_losses(tmp_path / "one"), abs=1e-4)
    weights = {n: load_file(tmp_path / n / "checkpoints" / "row-2" / "model.safetensors") for n in ("one", "two")}
    assert max((weights["one"][k] - weights["two"][k]).abs().max().item() for k in weights["one"]) < 1e-4
    events = [json.loads(line)["event"] for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and events.count("done") == 1  # only the main process writes


def test_compare_workers_is_a_config_key_outside_the_fingerprint(tmp_path):
    from lifelong.experiment import config_fingerprint

    serial, fanned = load_config(), load_config(overrides={"parallel": {"workers": 4}})
    assert fanned.parallel.workers == 4
    assert config_fingerprint(serial) == config_fingerprint(fanned)  # a resume may change it


needs_ray = pytest.mark.skipif(not RUN_RAY, reason="LIFELONG_TEST_RAY=0: skips the Ray fan-out tests (they start a "
                               "local Ray instance and two worker processes, about 60 s on 2 cores)")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module's Ray tests (map_tasks uses a running one and leaves it running)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@needs_ray
def test_compare_through_ray_gives_the_serial_results(local_ray, user_stream, tmp_path):
    overrides = {"model": "tiny", "stream": str(user_stream), "training": {"epochs": 1},
                 "evaluation": {"progress": False}}
    serial = run_compare(None, ["a", "b"], tmp_path / "serial", overrides)
    started = time.perf_counter()
    fanned = run_compare(None, ["a", "b"], tmp_path / "ray", {**overrides, "parallel": {"workers": 2}})
    print(f"ray fan-out: {time.perf_counter() - started:.1f} s")
    for condition in ("a", "b"):
        for key in ("accuracy_matrix", "canary", "metrics", "steps"):
            assert fanned[condition][key] == serial[condition][key], (condition, key)
        assert (tmp_path / "ray" / condition / "results.json").is_file()
    assert json.loads((tmp_path / "ray" / "compare.json").read_text()).keys() == {"a", "b"}


@needs_ray
def test_a_failing_task_raises_its_own_error(local_ray, tmp_path):
    from lifelong.compare import run_experiment
    from lifelong.errors import LifelongError

    configs = [load_config(overrides={"model": "tiny", "stream": str(tmp_path / name)}) for name in ("x", "y")]
    with pytest.raises(LifelongError, match="x|y"):
        map_tasks(run_experiment, configs, workers=2)


def test_experiment_writes_from_the_main_process_only(user_stream, tmp_path, monkeypatch):
    """A process that is not the main one of a multi-process run trains and scores but writes nothing."""
    config = load_config(overrides={"model": "tiny", "stream": str(user_stream), "condition": "a",
                                    "training": {"epochs": 1}, "evaluation": {"progress": False}})
    experiment = Experiment(config, out_dir=tmp_path / "out")
    monkeypatch.setattr(Experiment, "_set_main", lambda self, learner: (
        setattr(self, "main", False), setattr(self.log, "enabled", False)))
    results = experiment.run()
    assert len(results["accuracy_matrix"]) == 3
    assert not (tmp_path / "out").exists()


def test_the_hot_path_syncs_once_per_step_twice_with_the_snapshot(tiny, monkeypatch):
    """Reads of device values (item, tolist, bool, float, int) made by lifelong's own code during a round."""
    from accelerate import Accelerator

    from lifelong.config import TrainingConfig
    from lifelong.models import tiny_model
    from lifelong.training import TrainingLoop

    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "/lifelong/" in caller.replace("\\", "/"):
                reads.append(caller)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    examples = [Example(text=f"Fact {i}: the glim of Vorn {i} is blue.") for i in range(8)]
    counts = {}
    for snapshot in (True, False):
        model = tiny_model(tiny[1], seed=0)
        params = [p for p in model.parameters() if p.requires_grad]
        cfg = TrainingConfig(epochs=1, batch_size=2, log_every=100, fault_snapshot=snapshot)
        loop = TrainingLoop(cfg, Accelerator(cpu=True), log=lambda event: None, progress=False)
        reads.clear()
        stats = loop.run(model, tiny[1], examples, [{"params": params}], [], seed=0, domain="d")
        counts[snapshot] = len(reads)
        assert stats.steps == 4
    # per step: the fault checks' one read (+ the snapshot's weight check); per round: one log point, the tokens
    assert 4 <= counts[False] <= 4 * 1 + 3, counts
    assert counts[True] <= 4 * 2 + 3, counts
