import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lifelong.cli import app, main

from conftest import write_jsonl

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["eval"], ["report"], ["data"], ["data", "prepare"],
                                     ["data", "show"], ["learn"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def invoke_main(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["lifelong", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize("make_args, fragment", [
    (lambda tmp: ["run", str(tmp / "missing.yaml")], "config file not found"),
    (lambda tmp: ["run", "--condition", "z", "--out", str(tmp / "o")], "unknown condition 'z'"),
    (lambda tmp: ["run", "--stream", "no-such-stream", "--out", str(tmp / "o")], "no such stream"),
    (lambda tmp: ["run", "--set", "training.lr=-3", "--out", str(tmp / "o")], "key 'training.lr'"),
    (lambda tmp: ["run", "--model", "no/such-model-xyz", "--stream", "example", "--out", str(tmp / "o")],
     "no/such-model-xyz"),
])
def test_bad_input_is_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path, make_args, fragment):
    code, err = invoke_main(monkeypatch, capsys, *make_args(tmp_path))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]


def test_output_folder_that_is_a_file(monkeypatch, capsys, tmp_path, user_stream):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    code, err = invoke_main(monkeypatch, capsys, "run", "--model", "tiny", "--stream", str(user_stream),
                            "--out", str(target))
    assert code == 2 and "output folder is a file" in err
    assert target.read_text() == "not a folder"


def test_bad_yaml_config_names_file_and_line(monkeypatch, capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model: tiny\ntraining:\n  lr: 1e-4\n  batch_sise: 3\n")
    code, err = invoke_main(monkeypatch, capsys, "run", str(config), "--out", str(tmp_path / "o"))
    assert code == 2
    assert f"{config}:4: key 'training.batch_sise': unknown key" in err
    assert not (tmp_path / "o").exists()


def test_data_show_prints_each_domain_of_a_stream_folder(tmp_path):
    folder = tmp_path / "mine"
    write_jsonl(folder / "alpha.jsonl", [
        {"kind": "document", "text": "The zorb of Plinth is blue, " + "and very blue indeed " * 20},
        {"kind": "document", "text": "The quell of Marn is green."},
        {"kind": "qa", "question": "What color is the zorb of Plinth?", "answer": "blue"},
        {"kind": "qa", "question": "What color is the quell of Marn?", "answer": "green"},
        {"kind": "qa", "split": "train", "question": "Where is the zorb?", "answer": "Plinth"},
    ])
    write_jsonl(folder / "beta.jsonl", [  # only a multiple-choice question: shown with its right choice
        {"kind": "document", "text": "Quarn ships sail at dawn."},
        {"kind": "mc", "question": "When do Quarn ships sail?", "choices": ["dusk", "dawn"], "answer": 1},
    ])
    write_jsonl(folder / "exam" / "alpha.jsonl", [{"kind": "mc", "question": "Zorbs are?", "choices": ["a", "b"],
                                                    "answer": 0}])
    write_jsonl(folder / "canary.jsonl", [{"kind": "qa", "question": "What is the capital of France?",
                                           "answer": "Paris"}])
    (folder / "stream.yaml").write_text("domains: [alpha.jsonl, beta.jsonl]\ncanary: canary.jsonl\n")
    result = runner.invoke(app, ["data", "show", str(folder), "--width", "40"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("stream mine: 2 domains (alpha, beta)")
    assert "== alpha: 2 documents, median 46 words, 2 eval + 1 practice questions (1 exam)" in out
    assert "The zorb of Plinth is blue, and very blu [...]" in out and "very blue indeed very" not in out
    assert "Q: What color is the zorb of Plinth?\nA: blue" in out
    assert "== beta: 1 documents, median 5 words, 1 eval + 0 practice questions\n" in out
    assert "Q: When do Quarn ships sail? (dusk / dawn)\nA: dawn" in out
    assert out.rstrip().endswith("canary: 1 eval questions")


@pytest.mark.parametrize("name, fragment", [
    ("five-domains", "stream 'five-domains' is not prepared in "),
    ("five-domains-medium", "run `lifelong data prepare --size medium` first"),
    ("no-such-stream", "no-such-stream: no such stream"),
])
def test_data_show_of_a_stream_that_is_not_there_is_one_line(monkeypatch, capsys, tmp_path, name, fragment):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))  # an empty cache: nothing prepared
    code, err = invoke_main(monkeypatch, capsys, "data", "show", name)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (tmp_path / "cache" / "streams").exists()  # nothing was prepared


def test_run_then_eval_then_report_on_a_user_folder(tmp_path, user_stream):
    """The installed console command end to end on a folder of user JSONL files (tiny model)."""
    out = tmp_path / "run"
    common = ["--set", "training.epochs=1", "--set", "evaluation.progress=false"]
    done = subprocess.run(["lifelong", "run", "--model", "tiny", "--condition", "b", "--stream", str(user_stream),
                           "--out", str(out), "--seed", "3", *common], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "average_accuracy" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["condition"] == "b" and results["config"]["seed"] == 3

    scored = subprocess.run(["lifelong", "eval", "--checkpoint", str(out), "--stream", str(user_stream),
                             "--out", str(tmp_path / "eval"), *common], capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr[-2000:]
    row = json.loads((tmp_path / "eval" / "results.json").read_text())["accuracy_matrix"]
    assert row == [results["accuracy_matrix"][-1]]  # the checkpoint is the model after the last domain

    (out / "report.html").unlink()
    rebuilt = subprocess.run(["lifelong", "report", str(out)], capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0 and (out / "report.html").is_file()
