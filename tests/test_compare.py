import json

from lifelong.compare import rebuild_report, run_compare


def test_compare_runs_each_condition_and_writes_one_report(user_stream, tmp_path):
    out = tmp_path / "cmp"
    overrides = {"model": "tiny", "stream": str(user_stream), "training": {"epochs": 1},
                 "evaluation": {"progress": False}}
    results = run_compare(None, ["a", "c"], out, overrides)
    assert set(results) == {"a", "c"}
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary) == {"a", "c"}
    for condition in ("a", "c"):
        run = json.loads((out / condition / "results.json").read_text())
        assert run["condition"] == condition
        assert summary[condition]["metrics"] == run["metrics"]
    assert json.loads((out / "c" / "results.json").read_text())["pieces"] == ["lora", "replay"]
    page = (out / "report.html").read_text()
    assert page.count("lifelong-plot") >= 3 and ">a<" in page and ">c<" in page
    (out / "report.html").unlink()
    assert rebuild_report(out).is_file()


def test_a_run_made_into_the_compare_folder_later_joins_the_report(user_stream, tmp_path):
    from lifelong.config import load_config
    from lifelong.experiment import Experiment

    out = tmp_path / "cmp"
    overrides = {"model": "tiny", "stream": str(user_stream), "training": {"epochs": 1},
                 "evaluation": {"progress": False}}
    run_compare(None, ["a"], out, overrides)
    Experiment(load_config(overrides={**overrides, "condition": "b", "out": str(out / "b")})).run()
    (out / "unfinished").mkdir()
    (out / "unfinished" / "results.json").write_text(json.dumps({"complete": False}))
    rebuild_report(out)
    assert set(json.loads((out / "compare.json").read_text())) == {"a", "b"}
    page = (out / "report.html").read_text()
    assert ">a<" in page and ">b<" in page and "unfinished" not in page


def test_a_broken_results_file_in_a_comparison_is_named(tmp_path):
    import pytest

    from lifelong.errors import InputError

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text('{"complete": tr')
    with pytest.raises(InputError, match="results.json"):
        rebuild_report(tmp_path)


def test_ablate_runs_the_condition_and_one_row_per_piece_left_out(user_stream, tmp_path):
    out = tmp_path / "ablation"
    overrides = {"model": "tiny", "stream": str(user_stream), "training": {"epochs": 1},
                 "evaluation": {"progress": False}}
    results = run_compare(None, [], out, overrides, ablate="c")
    assert set(results) == {"c", "c-no-lora", "c-no-replay"}
    assert results["c-no-replay"]["pieces"] == ["lora"] and results["c-no-lora"]["pieces"] == ["replay"]
    assert set(json.loads((out / "compare.json").read_text())) == set(results)
    assert json.loads((out / "c-no-lora" / "results.json").read_text())["condition"] == "c"


def test_ablate_needs_two_pieces(tmp_path):
    import pytest

    from lifelong.errors import LifelongError

    with pytest.raises(LifelongError, match="--ablate a"):
        run_compare(None, [], tmp_path / "x", {"model": "tiny", "stream": "example"}, ablate="a")
