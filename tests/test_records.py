import json

import pytest

from lifelong.data.records import MCItem, QAItem, load_domain, write_domain
from lifelong.errors import InputError


def write_lines(tmp_path, lines):
    path = tmp_path / "dom.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"kind": "document", "text": "A fact."})


@pytest.mark.parametrize("line, field, fragment", [
    ("{not json", None, "not valid JSON"),
    ('["a list"]', None, "JSON object"),
    (json.dumps({"kind": "poem", "text": "x"}), "kind", "got 'poem'"),
    (json.dumps({"kind": "document"}), "text", "must be a string"),
    (json.dumps({"kind": "document", "text": "  "}), "text", "must not be empty"),
    (json.dumps({"kind": "qa", "question": "Q?", "answer": ""}), "answer", "must not be empty"),
    (json.dumps({"kind": "qa", "question": "", "answer": "a"}), "question", "must not be empty"),
    (json.dumps({"kind": "qa", "question": "Q?", "answer": "a", "split": "test"}), "split", "got 'test'"),
    (json.dumps({"kind": "qa", "question": "Q?", "answer": "a", "aliases": "b"}), "aliases", "list"),
    (json.dumps({"kind": "mc", "question": "Q?", "choices": ["a", "b"], "answer": 2}), "answer", "out of range"),
    (json.dumps({"kind": "mc", "question": "Q?", "choices": ["a", "b"], "answer": "1"}), "answer", "integer"),
    (json.dumps({"kind": "mc", "question": "Q?", "choices": ["a"], "answer": 0}), "choices", "at least two"),
])
def test_bad_line_names_file_line_and_field(tmp_path, line, field, fragment):
    path = write_lines(tmp_path, [GOOD, line])
    with pytest.raises(InputError) as caught:
        load_domain(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2")
    assert fragment in message
    if field:
        assert f"field '{field}'" in message
    assert "\n" not in message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_domain(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="empty"):
        load_domain(write_lines(tmp_path, [""]))


def test_round_trip_keeps_every_field(tmp_path):
    records = [QAItem("Q?", "a", ("b",), "train"), MCItem("Which?", ("x", "y", "z"), 2)]
    write_domain(tmp_path / "d.jsonl", records)
    domain = load_domain(tmp_path / "d.jsonl")
    assert domain.items == records
    assert domain.train_items == [records[0]]
    assert domain.eval_items == [records[1]]
    assert records[0].answers == ("a", "b")
