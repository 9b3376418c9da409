"""Scoring prompts (DESIGN §3): a few-shot completion prompt by default, or the chat template."""

from __future__ import annotations

import re
import string

from lifelong.config import PromptConfig

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def few_shot_prefix(prompt: PromptConfig) -> str:
    shots = [prompt.template.format(question=q) + " " + a for q, a in prompt.examples]
    return "".join(shot + prompt.separator for shot in shots)


def completion_prompt(prompt: PromptConfig, question: str) -> str:
    """The text whose continuation is the answer: few-shot examples, then the question."""
    return few_shot_prefix(prompt) + prompt.template.format(question=question)


def answer_continuation(answer: str) -> str:
    """What follows the prompt when the model answers: a space, the answer, then the line ends."""
    return " " + answer.strip()


def chat_prompt(tokenizer, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def scoring_context(prompt: PromptConfig, tokenizer, question: str) -> str:
    """The text a question is scored after: the completion prompt, or the chat template in chat mode."""
    if prompt.mode == "chat":
        return chat_prompt(tokenizer, question)
    return completion_prompt(prompt, question)


def describe(prompt: PromptConfig) -> dict:
    """What results.json records about the prompts used for scoring."""
    example = completion_prompt(prompt, "{question}") if prompt.mode == "few_shot" else "<chat template>"
    return {"mode": prompt.mode, "template": prompt.template, "few_shot_examples": prompt.examples,
            "qa_prompt": example}
