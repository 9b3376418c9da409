"""The built-in `example` stream: loads, and its questions are answerable from its documents."""

from __future__ import annotations

import pytest

from lifelong.data.records import MCItem, QAItem
from lifelong.data.stream import load_stream


@pytest.fixture(scope="module")
def stream():
    return load_stream("example")


def _corpus(domain) -> str:
    return " ".join(doc.text for doc in domain.documents).lower()


def test_example_stream_loads(stream):
    assert stream.name == "example"
    assert stream.domain_names == ["zorvian_medicine", "keldari_law", "glimmer_code"]
    assert stream.core is not None and stream.core.documents and stream.core.train_items
    assert stream.canary is not None and len(stream.canary.eval_items) >= 30
    assert all(isinstance(item, QAItem) for item in stream.canary.eval_items)


@pytest.mark.parametrize("index", range(3))
def test_domain_shape(stream, index):
    domain = stream.domains[index]
    qa_eval = [i for i in domain.eval_items if isinstance(i, QAItem)]
    mc_eval = [i for i in domain.eval_items if isinstance(i, MCItem)]
    assert len(domain.documents) >= 10
    assert len(qa_eval) >= 20
    assert len(domain.train_items) >= 10
    assert len(mc_eval) >= 5


@pytest.mark.parametrize("index", range(3))
def test_eval_answers_appear_in_documents(stream, index):
    domain = stream.domains[index]
    corpus = _corpus(domain)
    for item in domain.items:
        if isinstance(item, QAItem):
            assert any(a.lower() in corpus for a in item.answers), (domain.name, item.question)
        else:
            assert item.choices[item.answer].lower() in corpus, (domain.name, item.question)


@pytest.mark.parametrize("index", range(3))
def test_no_eval_question_is_a_train_question(stream, index):
    domain = stream.domains[index]
    train = {item.question.strip().lower() for item in domain.train_items}
    evals = [item.question.strip().lower() for item in domain.eval_items]
    assert not train & set(evals)
    assert len(evals) == len(set(evals))


def test_canary_is_distinct_from_core(stream):
    core = {item.question.strip().lower() for item in stream.core.items}
    canary = [item.question.strip().lower() for item in stream.canary.eval_items]
    assert not core & set(canary)
    assert len(canary) == len(set(canary))
