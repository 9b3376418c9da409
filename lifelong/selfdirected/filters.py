"""Filters against model collapse on everything generated, and diversity measures (DESIGN §5).

- ROUGE-L deduplication as in Self-Instruct (Wang et al. 2023): a text whose ROUGE-L F-measure
  with an already kept text (or a real text it is checked against) is 0.7 or above is dropped.
  Tokens as the `rouge-score` package makes them without stemming: lower case, runs of letters
  and digits; the longest common subsequence comes from rapidfuzz (C++), so ROUGE-L here needs
  neither rouge-score's nltk dependency nor a Python LCS loop.
- length: fewer than `min_words` or more than `max_words` words is dropped;
- overlap with the source: a text sharing too few of its words with its source document is off
  topic (invented), one whose ROUGE-L with the source is near 1 is a copy that adds nothing.
- diversity, logged per round: distinct-n (Li et al. 2016, distinct n-grams over all n-grams)
  and self-ROUGE (mean pairwise ROUGE-L among the texts; 1 means they are all the same).

All are pure functions of strings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import LCSseq

from lifelong.config import SelfDirectedConfig

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """ROUGE tokens: lower-cased runs of letters and digits (rouge-score's tokenizer without stemming)."""
    return _TOKEN.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (rapidfuzz's C++ LCS)."""
    return int(LCSseq.similarity(a, b))


def rouge_l_tokens(a: Sequence[str], b: Sequence[str]) -> float:
    if not a or not b:
        return 0.0
    lcs = lcs_length(a, b)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts (symmetric)."""
    return rouge_l_tokens(tokens(a), tokens(b))


def _could_reach(a: Sequence[str], b: Sequence[str], threshold: float) -> bool:
    """ROUGE-L F <= 2 min / (len a + len b): skip the LCS when even that is below the threshold."""
    return bool(a and b) and 2 * min(len(a), len(b)) / (len(a) + len(b)) >= threshold


def near_duplicate(candidate: Sequence[str], others: Sequence[Sequence[str]], threshold: float) -> bool:
    return any(_could_reach(candidate, other, threshold) and rouge_l_tokens(candidate, other) >= threshold
               for other in others)


def deduplicate(texts: Sequence[str], threshold: float = 0.7,
                against: Sequence[str] = ()) -> tuple[list[int], list[int]]:
    """(kept, dropped) indices: in order, a text is kept unless its ROUGE-L with a kept text or with
    one of `against` is at or above `threshold`."""
    kept_tokens = [tokens(text) for text in against]
    kept, dropped = [], []
    for index, text in enumerate(texts):
        candidate = tokens(text)
        if near_duplicate(candidate, kept_tokens, threshold):
            dropped.append(index)
        else:
            kept.append(index)
            kept_tokens.append(candidate)
    return kept, dropped


def word_count(text: str) -> int:
    return len(text.split())


def length_ok(text: str, min_words: int, max_words: int) -> bool:
    return min_words <= word_count(text) <= max_words


def source_overlap(text: str, source: str) -> float:
    """Share of the text's distinct tokens that occur in the source."""
    words = set(tokens(text))
    return len(words & set(tokens(source))) / len(words) if words else 0.0


def overlap_ok(text: str, source: str, min_overlap: float, max_rouge: float) -> bool:
    """On topic (enough of its words come from the source) and not a copy of it."""
    if not source:
        return True
    if min_overlap > 0 and source_overlap(text, source) < min_overlap:
        return False
    return rouge_l(text, source) < max_rouge


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams, pooled over the texts (None when there is no n-gram)."""
    grams = [tuple(words[i:i + n]) for words in map(tokens, texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def self_rouge(texts: Sequence[str], max_pairs: int = 2000, seed: int = 0) -> float | None:
    """Mean ROUGE-L over pairs of texts (a seeded sample of `max_pairs` when there are more)."""
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    if not pairs:
        return None
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    words = [tokens(text) for text in texts]
    return sum(rouge_l_tokens(words[i], words[j]) for i, j in pairs) / len(pairs)


def diversity(texts: Sequence[str]) -> dict[str, float | None]:
    """What the self_teach log event records about a round's generated texts."""
    rounded = lambda value: None if value is None else round(value, 4)  # noqa: E731
    return {"distinct_1": rounded(distinct_n(texts, 1)), "distinct_2": rounded(distinct_n(texts, 2)),
            "self_rouge": rounded(self_rouge(texts))}


@dataclass
class FilterReport:
    """Which generated texts survived, and why the others did not."""

    kept: list[int] = field(default_factory=list)
    too_short_or_long: list[int] = field(default_factory=list)
    off_source: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "dropped_length": len(self.too_short_or_long),
                "dropped_overlap": len(self.off_source), "dropped_duplicates": len(self.duplicates)}


def filter_texts(texts: Sequence[str], sources: Sequence[str], options: SelfDirectedConfig,
                 real: Sequence[str] = (), check_overlap: bool = True) -> FilterReport:
    """Length, then overlap with each text's source, then ROUGE-L dedup among the survivors and
    against the `real` texts; returns the indices kept (in order) and those dropped per reason."""
    report = FilterReport()
    candidates = []
    for index, (text, source) in enumerate(zip(texts, sources, strict=True)):
        if not length_ok(text, options.min_words, options.max_words):
            report.too_short_or_long.append(index)
        elif check_overlap and not overlap_ok(text, source, options.min_source_overlap, options.max_source_rouge):
            report.off_source.append(index)
        else:
            candidates.append(index)
    kept, dropped = deduplicate([texts[i] for i in candidates], options.dedup_threshold, against=real)
    report.kept = [candidates[i] for i in kept]
    report.duplicates = [candidates[i] for i in dropped]
    return report
