"""Tests on the embedded SmolLM2-135M-Instruct model (slower: they load 135M parameters)."""

import pytest

from lifelong.config import EvaluationConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def embedded():
    from lifelong.models import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="module")
def example():
    return load_stream("example")


def test_teacher_forced_scoring_agrees_with_greedy_generation(embedded, example):
    """The one-pass exact match gives the verdicts greedy decoding (stopping at the newline) gives."""
    model, tokenizer = embedded
    evaluator = Evaluator(EvaluationConfig(progress=False, max_new_tokens=16), tokenizer)
    items = example.canary.eval_items[:24] + [i for d in example.domains for i in d.eval_items if
                                               hasattr(i, "aliases")][:24]
    forced = evaluator.teacher_forced_verdicts(model, items)
    greedy = evaluator.generated_verdicts(model, items)
    agreement = sum(f == g for f, g in zip(forced, greedy, strict=True)) / len(items)
    assert agreement >= 0.95, list(zip(forced, greedy, strict=True))
    assert sum(forced) >= 20  # the canary half is answered right, so agreement is not all-wrong agreement


def test_example_stream_starts_low_and_canary_starts_high(embedded, example):
    model, tokenizer = embedded
    evaluator = Evaluator(EvaluationConfig(progress=False), tokenizer)
    assert evaluator.score_domain(model, example.canary).score >= 0.9
    for domain in example.domains:
        assert evaluator.score_domain(model, domain).score <= 0.2, domain.name


def test_chat_mode_finds_the_answer_in_a_sentence(embedded):
    from lifelong.config import PromptConfig
    from lifelong.data.records import QAItem

    model, tokenizer = embedded
    evaluator = Evaluator(EvaluationConfig(progress=False, max_new_tokens=24, prompt=PromptConfig(mode="chat")),
                          tokenizer)
    items = [QAItem("What is the capital of France?", "Paris"), QAItem("What is the capital of France?", "Rome")]
    assert evaluator.score_items(model, items).correct == (True, False)
