"""Share of padding tokens in training batches, random against length-grouped (training.group_by_length).

For each domain of the example stream: its training examples (documents and practice questions, as
the learner makes them), tokenised with the embedded model's tokenizer, cut into batches of 4 for 6
epochs by `default_batches`; padding = sum over batches of (longest * size - real tokens) over the
padded total. Prints the ratio grouped / random last.

    python bench/padding.py
"""

from __future__ import annotations

import random

from lifelong.config import PromptConfig
from lifelong.data.stream import load_stream
from lifelong.learner import plain_examples
from lifelong.models import load_tokenizer
from lifelong.training import Example, default_batches


def padding_share(lengths: dict[Example, int], grouped: bool, batch_size: int = 4, epochs: int = 6) -> float:
    total = padding = 0
    for epoch in range(epochs):
        for batch in default_batches(list(lengths), batch_size, random.Random(epoch), group_by_length=grouped):
            longest = max(lengths[e] for e in batch)
            total += longest * len(batch)
            padding += longest * len(batch) - sum(lengths[e] for e in batch)
    return padding / total


def main() -> None:
    tokenizer = load_tokenizer("smollm2-135m")
    shares = {False: [], True: []}
    for domain in load_stream("example").domains:
        examples = plain_examples(domain, PromptConfig(), with_questions=True)
        lengths = {e: len(tokenizer(e.prompt + e.text)["input_ids"]) for e in examples}
        plain, grouped = padding_share(lengths, False), padding_share(lengths, True)
        shares[False].append(plain)
        shares[True].append(grouped)
        print(f"{domain.name}: {len(examples)} examples, padding share random {plain:.3f}, grouped {grouped:.3f}")
    print(f"ratio grouped/random padding: {sum(shares[True]) / sum(shares[False]):.2f}")


if __name__ == "__main__":
    main()
