"""Reliability (docs/reliability.md): bad input, interruption, determinism, numerical faults, disk.

Every run here uses the tiny model; the whole file takes well under a minute and a half.
"""

import copy
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lifelong import checkpoint, training
from lifelong.cli import main
from lifelong.config import deep_merge, load_config
from lifelong.data.records import Document, Domain, QAItem
from lifelong.experiment import Experiment
from lifelong.faults import LastGood
from lifelong.learner import Learner
from lifelong.models import hub_reachable, tiny_model
from lifelong.pieces import PIECES, build_pieces
from lifelong.pieces.base import Piece, trainable_parameters
from lifelong.training import TrainingFault

from conftest import interrupt_before_domain, write_jsonl, write_user_stream

FAST = {"model": "tiny", "condition": "a", "training": {"epochs": 2, "batch_size": 2},
        "evaluation": {"progress": False}}
FAST_FLAGS = ["--model", "tiny", "--condition", "a", "--set", "training.epochs=2", "--set", "training.batch_size=2",
              "--set", "evaluation.progress=false"]


# ---------------------------------------------------------------- helpers

def run_experiment(stream: Path, out: Path, **extra) -> dict:
    config = load_config(overrides=deep_merge(FAST, {"stream": str(stream), "out": str(out), **extra}))
    return Experiment(config).run()


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / checkpoint.read_state(out)["checkpoint"] / "model.safetensors")


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_same_results(results: dict, reference: dict) -> None:
    for key in ("accuracy_matrix", "canary", "metrics", "steps"):
        assert results[key] == reference[key], key


def read_log(out: Path) -> list[dict]:
    path = out / "log.jsonl"
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line a killed run was writing
    return records


def invoke_main(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["lifelong", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def final_error_line(err: str) -> str:
    """The one error line that ends a run which had started (its progress went to stderr before it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and sum(line.startswith("error") for line in lines) == 1, err
    assert "Traceback" not in err, err
    return lines[-1]


def tree(path: Path):
    """Everything under a path (None when it does not exist), to show that nothing was written."""
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else "dir" for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    return write_user_stream(tmp_path_factory.mktemp("stream"))


@pytest.fixture(scope="module")
def reference(stream, tmp_path_factory) -> tuple[dict, Path]:
    """One uninterrupted run (seed 0) that the other runs here must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return run_experiment(stream, out), out


# ---------------------------------------------------------------- 1. bad input

GOOD_DOMAIN = [{"kind": "document", "text": "The zorb is blue."},
               {"kind": "qa", "question": "What color is the zorb?", "answer": "blue"}]


def config_case(text: str, line: int, *fragments: str):
    def build(tmp: Path, stream: Path):
        path = tmp / "config.yaml"
        path.write_text(f"model: tiny\nstream: {stream}\n{text}")
        return ["run", path, "--out", tmp / "out"], [f"{path}:{line}", *fragments], tmp / "out"
    return build


def domain_case(line_text: str | None, *fragments: str, line: int | None = 2):
    """A stream folder whose second domain file b.jsonl holds a good line, then `line_text`."""
    def build(tmp: Path, stream: Path):
        folder = tmp / "bad"
        write_jsonl(folder / "a.jsonl", GOOD_DOMAIN)
        bad = folder / "b.jsonl"
        bad.write_text("" if line_text is None else json.dumps(GOOD_DOMAIN[0]) + "\n" + line_text + "\n")
        where = f"{bad}:{line}" if line else str(bad)
        return ["run", "--model", "tiny", "--stream", folder, "--out", tmp / "out"], [where, *fragments], tmp / "out"
    return build


def stream_yaml_case(domains: list[str], *fragments: str):
    def build(tmp: Path, stream: Path):
        folder = tmp / "bad"
        write_jsonl(folder / "a.jsonl", GOOD_DOMAIN)
        write_jsonl(folder / "sub" / "a.jsonl", GOOD_DOMAIN)
        spec = folder / "stream.yaml"
        spec.write_text(f"domains: {json.dumps(domains)}\n")
        return ["run", "--model", "tiny", "--stream", spec, "--out", tmp / "out"], [str(spec), *fragments], tmp / "out"
    return build


def flags_case(*flags: str, fragments: tuple[str, ...]):
    def build(tmp: Path, stream: Path):
        return ["run", "--stream", stream, "--out", tmp / "out", *flags], list(fragments), tmp / "out"
    return build


def out_is_a_file(tmp: Path, stream: Path):
    target = tmp / "taken"
    target.write_text("not a folder")
    args = ["run", "--model", "tiny", "--stream", stream, "--out", target]
    return args, [str(target), "output folder is a file"], target


def out_holds_another_run(tmp: Path, stream: Path):
    target = tmp / "other"
    target.mkdir()
    (target / "state.json").write_text(json.dumps({"fingerprint": "0" * 16, "progress": {}, "checkpoint": "x"}))
    (target / "results.json").write_text("{}")
    return ["run", "--model", "tiny", "--stream", stream, "--out", target], [str(target), "different config"], target


MC_OUT_OF_RANGE = json.dumps({"kind": "mc", "question": "Which?", "choices": ["x", "y"], "answer": 2})
BAD_INPUTS = {
    "malformed_yaml": config_case("training: [1, 2\n", 4, "not valid YAML"),
    "unknown_key": config_case("training:\n  batch_sise: 3\n", 4, "key 'training.batch_sise'", "unknown key"),
    "wrong_type": config_case("training:\n  epochs: many\n", 4, "key 'training.epochs'", "integer"),
    "out_of_range": config_case("training:\n  lr: -1\n", 4, "key 'training.lr'", "greater than 0"),
    "missing_domain_file": stream_yaml_case(["a.jsonl", "missing.jsonl"], "field 'domains'", "missing.jsonl",
                                            "not found"),
    "empty_domain_file": domain_case(None, "domain file is empty", line=None),
    "line_not_json": domain_case("{oops", "not valid JSON"),
    "mc_answer_out_of_range": domain_case(MC_OUT_OF_RANGE, "field 'answer'", "out of range"),
    "empty_question": domain_case(json.dumps({"kind": "qa", "question": " ", "answer": "a"}), "field 'question'",
                                  "must not be empty"),
    "empty_answer": domain_case(json.dumps({"kind": "qa", "question": "Q?", "answer": ""}), "field 'answer'",
                                "must not be empty"),
    "unknown_model": flags_case("--model", "no-such-model-xyz", fragments=("model 'no-such-model-xyz'", "not found")),
    "unknown_condition": flags_case("--model", "tiny", "--condition", "z",
                                   fragments=("key 'condition'", "unknown condition 'z'")),
    "unknown_piece": flags_case("--model", "tiny", "--set", "pieces=[lora,ewc2]", fragments=("key 'pieces'", "ewc2")),
    "output_folder_is_a_file": out_is_a_file,
    "output_folder_holds_another_run": out_holds_another_run,
    "duplicate_domain_names": stream_yaml_case(["a.jsonl", "sub/a.jsonl"], "field 'domains'", "'a' appears twice"),
}


@pytest.fixture
def offline(monkeypatch):
    """Unknown model names fail at once instead of asking the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    yield
    hub_reachable.cache_clear()


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, stream, tmp_path, monkeypatch, capsys, offline):
    args, fragments, out = case(tmp_path, stream)
    before = tree(out)
    code, err = invoke_main(monkeypatch, capsys, *args)
    assert code == 2, err
    line = one_error_line(err)
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert tree(out) == before, "the output folder must not be created or changed"


# ---------------------------------------------------------------- 2. interruption

def write_long_stream(folder: Path) -> Path:
    """A first domain long enough (26 steps at batch size 1) to be killed in the middle of."""
    colors = ["blue", "green", "red", "amber", "violet", "grey"]
    documents = [{"kind": "document", "text": f"The glim of Vorn number {i} is {colors[i % 6]}."} for i in range(12)]
    questions = [{"kind": "qa", "question": f"What color is the glim of Vorn number {i}?", "answer": colors[i % 6]}
                 for i in range(3)]
    write_jsonl(folder / "a_long.jsonl", [*documents, *questions,
                                          {"kind": "qa", "split": "train", "question": "What color is glim 0?",
                                           "answer": "blue"}])
    write_jsonl(folder / "b_short.jsonl", [{"kind": "document", "text": "Quarn ships sail at dawn."},
                                           {"kind": "qa", "question": "When do Quarn ships sail?", "answer": "dawn"}])
    write_jsonl(folder / "canary.jsonl", [{"kind": "qa", "question": "What is the capital of France?",
                                           "answer": "Paris"}])
    return folder


# LoRA with dropout, so that the resumed run must also continue the random state.
KILL_SETTINGS = {"model": "tiny", "condition": "b", "seed": 5, "evaluation": {"progress": False},
                 "training": {"epochs": 2, "batch_size": 1, "lr": 3e-3, "curve_every": 5},
                 "lora": {"lora_dropout": 0.1}}
KILL_FLAGS = ["--model", "tiny", "--condition", "b", "--seed", "5", "--set", "evaluation.progress=false",
              "--set", "training.epochs=2", "--set", "training.batch_size=1", "--set", "training.lr=3e-3",
              "--set", "training.curve_every=5", "--set", "lora.lora_dropout=0.1", "--set", "checkpoint_every=2"]


def test_sigkill_in_the_middle_of_a_domain_then_resume_matches_an_uninterrupted_run(tmp_path):
    stream = write_long_stream(tmp_path / "stream")
    torch.rand(7)  # what this process drew before must not matter: a run seeds everything it draws from
    reference = Experiment(load_config(overrides={**KILL_SETTINGS, "stream": str(stream),
                                                  "out": str(tmp_path / "straight")})).run()
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "lifelong", "run", *KILL_FLAGS, "--stream", str(stream), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "TOKENIZERS_PARALLELISM": "false"}
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 300
        while not any(e.get("event") == "checkpoint" and e.get("domain") == "a_long" and e["step"] >= 6
                      for e in read_log(out)):
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, "no mid-domain checkpoint appeared"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    state = checkpoint.read_state(out)
    assert state["round"]["domain"] == 0 and state["round"]["step"] >= 6, "killed in the middle of the first domain"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert_same_results(results, reference)
    assert same_tensors(final_weights(out), final_weights(tmp_path / "straight"))
    [resume] = [e for e in read_log(out) if e["event"] == "resume"]
    assert resume["domains_done"] == 0 and resume["step"] >= 6


def test_a_partial_checkpoint_is_never_read(stream, reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    resume = interrupt_before_domain(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(stream, out)
    resume()
    named = out / checkpoint.read_state(out)["checkpoint"]
    root = out / "checkpoints"
    # A temporary folder left by a killed write, and a folder with a truncated file state.json does not name.
    for folder in (root / ".row-2.0123abcd.tmp", root / "row-2"):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes((named / "model.safetensors").read_bytes()[:1000])
        (folder / "pieces.pt").write_bytes(b"truncated")
    loaded = []
    real_load = checkpoint.load_model

    def spy(model, filename, *args, **kwargs):
        loaded.append(Path(filename))
        return real_load(model, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "load_model", spy)
    results = run_experiment(stream, out)
    assert loaded == [named / "model.safetensors"]
    assert_same_results(results, reference[0])
    assert sorted(p.name for p in root.iterdir()) == ["row-2"]  # the stale temp folder is gone


# ---------------------------------------------------------------- 3. determinism

def test_the_same_seed_gives_the_same_results_and_another_seed_another_order(stream, reference, tmp_path,
                                                                              monkeypatch):
    plans: dict[int, list] = {}
    real_plan = training.plan_epochs

    def spy(examples, pieces, batch_size, epochs, seed, group_by_length=False):
        plan = real_plan(examples, pieces, batch_size, epochs, seed, group_by_length)
        plans.setdefault(seed, plan)
        return plan

    monkeypatch.setattr(training, "plan_epochs", spy)
    again = run_experiment(stream, tmp_path / "again")
    assert_same_results(again, reference[0])
    assert same_tensors(final_weights(tmp_path / "again"), final_weights(reference[1]))
    perplexities = [[e.get("perplexity") for e in read_log(out) if e["event"] == "eval"]
                    for out in (tmp_path / "again", reference[1])]
    assert perplexities[0] == perplexities[1]

    run_experiment(stream, tmp_path / "seed1", seed=1)
    first_domain = {seed: plan for seed, plan in plans.items() if seed % 1000 == 1}  # seed * 1000 + 1
    assert set(first_domain) == {1, 1001}
    assert [sorted(e.text for b in epoch for e in b) for epoch in first_domain[1]] == \
           [sorted(e.text for b in epoch for e in b) for epoch in first_domain[1001]]  # the same examples ...
    assert first_domain[1] != first_domain[1001]  # ... in another order


# ---------------------------------------------------------------- 4. numerical faults

FACTS = Domain("facts", documents=[Document(f"Fact {i}: the glim of Vorn {i} is blue.") for i in range(8)],
               items=[QAItem("What color is the glim of Vorn 1?", "blue")])  # 8 documents: 4 steps of 2


class Sabotage(Piece):
    """Test-only: breaks the steps named in `at`, once each: NaN loss, exploding gradients or NaN weights."""

    name = "sabotage"

    def __init__(self, how: str = "nan_loss", at=(2,)):
        super().__init__()
        self.how = how
        self.pending = list(at)
        self.step = -1
        self.weights: dict[int, list[dict]] = {}  # step -> the trainable weights at each before_step(step)

    def before_step(self, step):
        self.step = step
        self.weights.setdefault(step, []).append(
            {n: p.detach().clone() for n, p in trainable_parameters(self.learner.model)})

    def _fire(self, how: str) -> bool:
        if self.how == how and self.step in self.pending:
            self.pending.remove(self.step)
            return True
        return False

    def penalty(self, model):
        return torch.tensor(float("nan")) if self._fire("nan_loss") else None

    @torch.no_grad()
    def adjust_gradients(self, model, closure):
        if self._fire("explode"):
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.mul_(1e9)
        if self._fire("nan_weights"):
            next(p for p in model.parameters() if p.requires_grad).view(-1)[0] = float("nan")


def sabotaged_learner(tiny, sabotage: Sabotage):
    config = load_config(overrides={"model": "tiny", "condition": "a", "evaluation": {"progress": False},
                                    "training": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "log_every": 1}})
    events: list[dict] = []
    model = tiny_model(tiny[1], seed=0)
    learner = Learner(model, tiny[1], [*build_pieces(["full_finetune"], config), sabotage], config, log=events.append)
    return learner, events


@pytest.mark.parametrize("how, kind", [("nan_loss", "non_finite_loss"), ("explode", "grad_norm"),
                                       ("nan_weights", "non_finite_weights")])
def test_a_fault_restores_the_last_good_step_and_halves_the_lr(tiny, how, kind):
    sabotage = Sabotage(how, at=[2])
    learner, events = sabotaged_learner(tiny, sabotage)
    curve: list[int] = []
    stats = learner.learn(FACTS, seed=0, on_checkpoint=curve.append)
    [fault] = [e for e in events if e["event"] == "fault"]
    assert fault["kind"] == kind and fault["step"] == 2 and fault["restored"]
    before, retried = sabotage.weights[2]  # step 2 as first tried, and as tried again after the fault
    assert same_tensors(before, retried)
    assert all(torch.isfinite(p).all() for p in learner.model.parameters())
    lrs = [e["lr"] for e in events if e["event"] == "train"]
    assert lrs[:2] == [1e-3, 1e-3] and lrs[2:] == [pytest.approx(5e-4)] * (len(lrs) - 2)
    assert fault["lr"] == pytest.approx(5e-4)
    assert stats.steps == 3  # 4 planned, the faulty one dropped
    assert curve == [3]  # the round's last curve point is at its last step taken
    if how == "explode":
        assert fault["value"] > 1e4


def test_last_good_restores_weights_and_optimizer_state():
    layer = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)

    def step():
        layer(torch.ones(1, 4)).pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    guard = LastGood(optimizer)
    weights = {n: p.detach().clone() for n, p in layer.named_parameters()}
    state = copy.deepcopy(optimizer.state_dict()["state"])
    step()
    step()
    assert guard.restore()
    assert same_tensors(weights, {n: p.detach() for n, p in layer.named_parameters()})
    restored = optimizer.state_dict()["state"]
    assert all(same_tensors(state[i], restored[i]) for i in state)


def test_a_second_fault_in_a_round_ends_it(tiny):
    learner, events = sabotaged_learner(tiny, Sabotage("nan_loss", at=[2, 2]))
    with pytest.raises(TrainingFault) as caught:
        learner.learn(FACTS, seed=0)
    message = str(caught.value)
    assert "\n" not in message and "domain 'facts'" in message and "second numerical fault" in message
    assert [e["kind"] for e in events if e["event"] == "fault"] == ["non_finite_loss"] * 2


class NanTwice(Sabotage):
    def __init__(self, options=None):
        super().__init__("nan_loss", at=[1, 1])


def test_a_second_fault_is_one_line_and_exit_code_2_leaving_the_last_checkpoint(stream, tmp_path, monkeypatch,
                                                                               capsys):
    monkeypatch.setitem(PIECES, "sabotage", NanTwice)
    out = tmp_path / "out"
    code, err = invoke_main(monkeypatch, capsys, "run", *FAST_FLAGS, "--set", "pieces=[full_finetune,sabotage]",
                            "--stream", stream, "--out", out)
    assert code == 2
    assert "training stopped at step 1" in final_error_line(err)
    assert checkpoint.read_state(out)["checkpoint"] == "checkpoints/row-0"
    assert [e["kind"] for e in read_log(out) if e["event"] == "fault"] == ["non_finite_loss"] * 2


# ---------------------------------------------------------------- 5. disk

def test_checkpoint_keep_bounds_the_folder_with_mid_domain_checkpoints(stream, reference, tmp_path, monkeypatch):
    counts = []
    real_save = checkpoint.save_checkpoint

    def counting(*args, **kwargs):
        path = real_save(*args, **kwargs)
        counts.append(len(list(path.parent.iterdir())))
        return path

    monkeypatch.setattr(checkpoint, "save_checkpoint", counting)
    out = tmp_path / "out"
    results = run_experiment(stream, out, checkpoint_every=1, checkpoint_keep=2)
    assert len(counts) == 3 + 3 + 1  # 3 rows; domain 1: steps 1-3 of 4; domain 2: step 1 of 2
    assert max(counts) <= 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["domain-2-step-1", "row-2"]
    assert checkpoint.read_state(out)["checkpoints"] == ["domain-2-step-1", "row-2"]
    assert_same_results(results, reference[0])  # checkpointing changes nothing


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(stream, reference, tmp_path, monkeypatch, capsys):
    real_save = checkpoint.save_model
    calls = []

    def disk_fills_on_the_third_save(model, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 3:  # row-0, domain-1-step-1, then domain-1-step-2 does not fit
            Path(filename).write_bytes(b"\0" * 64)
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(model, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_model", disk_fills_on_the_third_save)
    out = tmp_path / "out"
    args = ["run", *FAST_FLAGS, "--stream", stream, "--out", out, "--set", "checkpoint_every=1"]
    code, err = invoke_main(monkeypatch, capsys, *args)
    assert code == 2
    line = final_error_line(err)
    assert "disk full" in line and str(out) in line and "domain-1-step-1" in line
    state = checkpoint.read_state(out)
    assert state["checkpoint"] == "checkpoints/domain-1-step-1"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["domain-1-step-1"]  # no partial folder
    model = tiny_model(seed=0)
    checkpoint.load_checkpoint(out, state, model)  # intact and readable

    monkeypatch.setattr(checkpoint, "save_model", real_save)
    code, _ = invoke_main(monkeypatch, capsys, *args)
    assert code == 0
    assert_same_results(json.loads((out / "results.json").read_text()), reference[0])
    assert same_tensors(final_weights(out), final_weights(reference[1]))
    [resume] = [e for e in read_log(out) if e["event"] == "resume"]
    assert resume["step"] == 1
