"""Training examples: what a round learns, and how an example becomes token ids and a batch.

An `Example` is `text` to learn with an optional `prompt` whose tokens the loss ignores. A domain as it
comes (`plain_examples`) is its documents plus its practice questions (`question_example`); the pieces
add or replace examples (lifelong/pieces/), the training loop (lifelong/training.py) tokenises them
(`tokenize_examples`), pads them into batches (`collate`) and, with several processes, gives each its
part of every batch (`shard_batch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lifelong.config import PromptConfig
from lifelong.data.records import Domain, Item, MCItem, QAItem
from lifelong.evaluation import prompts

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """A training example: `prompt` is context the loss ignores, `text` is what is learned."""

    text: str
    prompt: str = ""
    source: str = "document"

    @property
    def length(self) -> int:
        """Characters, prompt and text: the cheap length that length grouping sorts by."""
        return len(self.prompt) + len(self.text)


def tokenize_examples(tokenizer, examples: Sequence[Example], max_length: int,
                      keep_empty: bool = False) -> list[dict]:
    """Token ids and labels for each example; prompt tokens are masked out of the loss.

    An example with nothing left to learn after truncation is dropped, or kept as {} with keep_empty.
    """
    features = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for example in examples:
        prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"] if example.prompt else []
        text_ids = tokenizer(example.text, add_special_tokens=False)["input_ids"] + eos
        input_ids = (prompt_ids + text_ids)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + text_ids)[:max_length]
        if any(label != IGNORE_INDEX for label in labels):
            features.append({"input_ids": input_ids, "labels": labels})
        elif keep_empty:
            features.append({})
    return features


def fit_to_length(tokenizer, examples: Sequence[Example], max_length: int) -> list[Example]:
    """The examples with each prompt-less one that is longer than `max_length` tokens (its end-of-sequence
    token included) cut into consecutive pieces that fit, at a line's or sentence's end where one falls in
    the window's second half: `tokenize_examples` would otherwise learn only a long document's first window."""
    out: list[Example] = []
    for example in examples:
        out += [example] if example.prompt else [Example(text=piece, source=example.source)
                                                 for piece in _pieces(tokenizer, example.text, max_length)]
    return out


def _pieces(tokenizer, text: str, max_length: int) -> list[str]:
    if not getattr(tokenizer, "is_fast", False):  # no character offsets: truncated as before
        return [text]
    starts = [start for start, _ in tokenizer(text, add_special_tokens=False,
                                              return_offsets_mapping=True)["offset_mapping"]]
    if len(starts) + 1 <= max_length:
        return [text]
    budget = max(4, max_length - 1 - max_length // 16)  # room for the eos and for a re-tokenised cut
    pieces, first = [], 0
    while len(starts) - first > budget:
        cut = _cut(text, starts, first, first + budget)
        pieces.append(text[starts[first]:starts[cut]])
        first = cut
    pieces.append(text[starts[first]:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _cut(text: str, starts: list[int], first: int, limit: int) -> int:
    """The token, after `first` and at most `limit`, that begins the next piece: the last in the window's
    second half that begins a line, else the last that follows a sentence's end, else `limit`."""
    window = range(limit, (first + limit) // 2, -1)
    line = next((t for t in window if text[:starts[t]].endswith("\n") or text.startswith("\n", starts[t])), None)
    if line is not None:
        return line
    return next((t for t in window if text[:starts[t]].rstrip(" ").endswith((".", "!", "?", ";"))), limit)


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f["input_ids"]) for f in features)
    batch = {
        "input_ids": torch.full((len(features), width), pad_id, dtype=torch.long),
        "labels": torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long),
        "attention_mask": torch.zeros((len(features), width), dtype=torch.long),
    }
    for row, feature in enumerate(features):
        n = len(feature["input_ids"])
        batch["input_ids"][row, :n] = torch.tensor(feature["input_ids"])
        batch["labels"][row, :n] = torch.tensor(feature["labels"])
        batch["attention_mask"][row, :n] = 1
    return batch


LOSS_SCALE = "loss_scale"


def _targets(feature: dict) -> int:
    """Tokens whose loss a causal LM counts: labels after the first position that are not ignored."""
    return sum(label != IGNORE_INDEX for label in feature["labels"][1:])


def shard_batch(batch: list[dict], rank: int, world: int) -> tuple[list[dict], float | None]:
    """This process's part of a batch and the weight of its mean loss; (batch, None) for one process.

    Process `rank` takes examples rank, rank + world, ...; its mean token loss is weighted by
    world * its tokens / the batch's tokens, so that the average over processes of the weighted
    gradients (what DDP computes) is the gradient of the whole batch's mean token loss, as in one
    process. A process left without an example (a batch smaller than the number of processes)
    runs the batch's first one with weight 0: every process must take part in every step.
    """
    if world == 1:
        return batch, None
    mine = batch[rank::world]
    if not mine:
        return batch[:1], 0.0
    total = sum(_targets(f) for f in batch)
    return mine, (world * sum(_targets(f) for f in mine) / total) if total else 0.0


def collate_shard(shard: tuple[list[dict], float | None], pad_id: int) -> dict[str, torch.Tensor]:
    features, scale = shard
    batch = collate(features, pad_id)
    if scale is not None:
        batch[LOSS_SCALE] = torch.tensor(scale)
    return batch


def question_example(item: Item, prompt: PromptConfig) -> Example | None:
    """A question as a prompt/answer training example (the loss on the answer; mc: the right choice)."""
    answer = item.answer if isinstance(item, QAItem) else item.choices[item.answer] if isinstance(item, MCItem) \
        else None
    if answer is None:
        return None
    return Example(prompt=prompt.template.format(question=item.question),
                   text=prompts.answer_continuation(answer) + "\n", source="question")


def plain_examples(domain: Domain, prompt: PromptConfig, with_questions: bool) -> list[Example]:
    """The domain as it comes: its documents, plus its practice (split=train) questions."""
    examples = [Example(text=doc.text, source="document") for doc in domain.documents]
    if with_questions:
        examples += [question_example(item, prompt) for item in domain.train_items if isinstance(item, QAItem)]
    return examples
