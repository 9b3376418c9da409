"""Self-testing: the regression rule, the trend test, lm-eval task files, and the guard on a real regression."""

from __future__ import annotations

import json

import pytest

from lifelong.data.records import MCItem, QAItem
from lifelong.errors import InputError
from lifelong.selftest.lmeval_tasks import load_lmeval_task, load_lmeval_tasks
from lifelong.selftest.regression import check_drop, drop_interval, trend, wilson_interval, z_value

from conftest import write_jsonl

# ---- the regression rule ------------------------------------------------------------------------


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(38, 40, z_value(0.975))  # two-sided 95%
    assert lo == pytest.approx(0.8348, abs=1e-3) and hi == pytest.approx(0.9862, abs=1e-3)
    assert wilson_interval(0, 0, 1.96) == (0.0, 1.0)
    lo, hi = wilson_interval(40, 40, 1.96)
    assert hi == 1.0 and 0.9 < lo < 0.92  # a perfect score still has an interval


def test_drop_interval_contains_the_drop_and_narrows_with_more_items():
    z = z_value(0.95)
    lo40, hi40 = drop_interval(0.8, 40, 0.7, 40, z)
    lo400, hi400 = drop_interval(0.8, 400, 0.7, 400, z)
    assert lo40 < 0.1 < hi40 and lo400 < 0.1 < hi400
    assert hi400 - lo400 < hi40 - lo40


def test_a_drop_below_the_threshold_is_not_a_regression():
    verdict = check_drop(1.0, 0.95, 40)  # 2 of 40 items: 5 points, not above max(2, 5% of 100) points
    assert not verdict.regressed and "within tolerance" in verdict.reason
    assert not check_drop(0.30, 0.29, 10_000).regressed  # 1 point: below the 2-point floor, however many items


def test_a_drop_beyond_the_threshold_but_within_noise_is_not_a_regression():
    verdict = check_drop(1.0, 0.925, 40)  # 3 of 40: material, but 40 items cannot tell it from noise
    assert not verdict.regressed and "within noise" in verdict.reason
    assert verdict.drop > verdict.tolerance and verdict.lower <= 0
    assert not check_drop(0.5, 0.3, 8).regressed  # 20 points on 8 items is noise


def test_a_drop_beyond_threshold_and_noise_is_a_regression():
    verdict = check_drop(1.0, 0.9, 40)  # 4 of 40
    assert verdict.regressed and verdict.lower > 0 and "beyond noise" in verdict.reason
    assert check_drop(0.5, 0.44, 1000).regressed  # 6 points on 1000 items
    assert not check_drop(0.5, 0.44, 40).regressed  # the same drop on 40 items is noise


def test_thresholds_and_confidence_are_configurable():
    assert not check_drop(0.8, 0.7, 400, abs_drop=0.15).regressed
    assert check_drop(0.8, 0.7, 400).regressed
    assert check_drop(1.0, 0.925, 40, confidence=0.8).regressed  # less confidence: smaller drops count
    assert not check_drop(1.0, 0.9, 40, confidence=0.99).regressed


# ---- the trend test ---------------------------------------------------------------------------------


def test_trend_catches_many_small_drops_that_no_single_check_does():
    history = [1.0, 0.975, 0.95, 0.925, 0.9, 0.875]
    steps = zip(history, history[1:], strict=False)
    assert not any(check_drop(a, b, 40).regressed for a, b in steps)  # each step alone is noise
    result = trend(history, 40)
    assert result.drifting and result.slope == pytest.approx(-0.025) and result.upper < 0
    assert "declining" in result.reason


def test_trend_ignores_noise_flat_histories_and_short_ones():
    assert not trend([1.0, 0.975, 0.975, 1.0, 0.975, 0.95], 40).drifting  # wobbles within noise
    assert not trend([0.8, 0.8, 0.8, 0.8], 40).drifting
    assert not trend([1.0, 0.7, 0.4], 40).drifting  # three points: below min_points
    assert trend([1.0, 0.7, 0.4], 40, min_points=3).drifting
    assert not trend([0.5, 0.495, 0.49, 0.485], 100_000).drifting  # significant, but 1.5 points is not material
    assert not trend([1.0, 0.975, 0.95, 0.925, 0.9, 0.875], [40] * 6, window=2).drifting


def test_trend_weighs_points_by_their_item_counts():
    scores = [0.9, 0.88, 0.86, 0.84, 0.82]
    assert not trend(scores, 20).drifting
    assert trend(scores, 2000).drifting
    with pytest.raises(ValueError, match="item counts"):
        trend(scores, [40, 40])


# ---- lm-eval task files ------------------------------------------------------------------------------


def write_task(folder, text, records=None, name="task.yaml", data="data.jsonl"):
    if records is not None:
        write_jsonl(folder / data, records)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


MC_RECORDS = [{"q": "Which is a fruit?", "options": ["stone", "apple", "chair"], "label": 1},
              {"q": "Which is a color?", "options": ["blue", "seven"], "label": 0}]


def test_multiple_choice_task_with_jinja_templates(tmp_path):
    path = write_task(tmp_path, """
task: fruit_quiz
dataset_path: json
dataset_kwargs:
  data_files: {test: data.jsonl, train: practice.jsonl}
test_split: test
training_split: train
output_type: multiple_choice
doc_to_text: "Question: {{q}}\\nAnswer:"
doc_to_target: label
doc_to_choice: "{{options}}"
metric_list: [{metric: acc_norm}]
""", MC_RECORDS)
    write_jsonl(tmp_path / "practice.jsonl", [{"q": "Which is a tree?", "options": ["oak", "car"], "label": 0}])
    domain = load_lmeval_task(path)
    assert domain.name == "fruit_quiz"
    assert domain.eval_items == [MCItem("Which is a fruit?", ("stone", "apple", "chair"), 1),
                                 MCItem("Which is a color?", ("blue", "seven"), 0)]  # the Question/Answer frame dropped
    assert domain.train_items == [MCItem("Which is a tree?", ("oak", "car"), 0, split="train")]


def test_generate_until_task_with_field_names_and_aliases(tmp_path):
    path = write_task(tmp_path, """
dataset_path: data.jsonl
output_type: generate_until
doc_to_text: question
doc_to_target: "{{answers}}"
generation_kwargs: {until: ["\\n"]}
""", [{"question": "Capital of France?", "answers": "Paris"}])
    domain = load_lmeval_task(path)
    assert domain.name == "task" and domain.eval_items == [QAItem("Capital of France?", "Paris")]
    path = write_task(tmp_path, """
dataset_path: json
dataset_kwargs: {data_files: list.json}
doc_to_text: "{{question}}"
doc_to_target: answers
""", name="aliases.yaml")
    (tmp_path / "list.json").write_text(json.dumps([{"question": "Two plus two?", "answers": ["4", "four"]}]))
    assert load_lmeval_task(path).eval_items == [QAItem("Two plus two?", "4", ("four",))]


def test_fixed_choices_target_by_text_and_include(tmp_path):
    write_task(tmp_path, """
dataset_path: json
dataset_kwargs: {data_files: {test: data.jsonl}}
output_type: multiple_choice
doc_to_choice: ["no", "yes"]
""", [{"claim": "Snow is white.", "truth": "yes"}], name="_base.yaml")
    path = write_task(tmp_path, """
include: _base.yaml
task: claims
doc_to_text: "Is it true? {{claim}}"
doc_to_target: "{{truth}}"
""")
    domain = load_lmeval_task(path)
    assert domain.name == "claims" and domain.eval_items == [MCItem("Is it true? Snow is white.", ("no", "yes"), 1)]


@pytest.mark.parametrize("body, field, message", [
    ("dataset_path: json\ndoc_to_text: q\ndoc_to_target: a\n", "dataset_kwargs.data_files", "missing"),
    ("dataset_path: hellaswag\ndoc_to_text: q\ndoc_to_target: a\n", "dataset_path", "only local JSON"),
    ("dataset_path: data.jsonl\ndoc_to_target: a\n", "doc_to_text", "missing"),
    ("dataset_path: data.jsonl\noutput_type: loglikelihood\ndoc_to_text: q\ndoc_to_target: a\n", "output_type",
     "must be one of"),
    ("dataset_path: data.jsonl\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: a\n", "doc_to_choice",
     "missing"),
    ("dataset_path: data.jsonl\ndoc_to_text: !function utils.doc_to_text\ndoc_to_target: a\n", "doc_to_text",
     "not supported"),
    ("dataset_path: data.jsonl\nprocess_docs: !function utils.process\ndoc_to_text: q\ndoc_to_target: a\n",
     "process_docs", "not supported"),
    ("dataset_path: data.jsonl\ndoc_to_text: '{{missing_field}}'\ndoc_to_target: a\n", "doc_to_text",
     "record 1 of data.jsonl: template failed"),
    ("dataset_path: data.jsonl\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: 5\n"
     "doc_to_choice: [x, y]\n", "doc_to_target", "out of range"),
    ("dataset_path: json\ndataset_kwargs: {data_files: {test: nowhere.jsonl}}\ndoc_to_text: q\ndoc_to_target: a\n",
     "dataset_kwargs.data_files", "not found"),
    ("dataset_path: json\ndataset_kwargs: {data_files: {train: data.jsonl}}\ntest_split: test\ndoc_to_text: q\n"
     "doc_to_target: a\n", "test_split", "no data files"),
])
def test_errors_name_the_file_and_the_key(tmp_path, body, field, message):
    path = write_task(tmp_path, body, [{"q": "Q?", "a": "A"}])
    with pytest.raises(InputError, match=message) as error:
        load_lmeval_task(path)
    assert error.value.path == str(path) and error.value.field == field


def test_bad_yaml_missing_file_and_duplicate_names(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_lmeval_task(tmp_path / "nope.yaml")
    bad = write_task(tmp_path, "task: [unclosed\n", name="bad.yaml")
    with pytest.raises(InputError, match="not valid YAML") as error:
        load_lmeval_task(bad)
    assert error.value.line is not None
    one = write_task(tmp_path, "task: same\ndataset_path: data.jsonl\ndoc_to_text: q\ndoc_to_target: a\n",
                     [{"q": "Q?", "a": "A"}], name="one.yaml")
    two = write_task(tmp_path, one.read_text(), name="two.yaml")
    with pytest.raises(InputError, match="two diagnostic tasks"):
        load_lmeval_tasks([str(one), str(two)])
