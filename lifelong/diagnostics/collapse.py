"""Output collapse: how varied the model's free generations are.

After training on a narrow domain a model may lose the variety of its outputs (repetition loops, the
same few phrases everywhere). On fixed open prompts the model continues freely (greedy by default, so
the measure is deterministic and a repetition loop shows), and three numbers are taken:
- distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation
  Models"): distinct n-grams / all n-grams of the generated words, pooled over the prompts;
- word entropy: Shannon entropy (bits) of the generated words' unigram distribution;
- predictive entropy: the mean entropy (nats) of the model's next-token distribution at every
  generated step (the raw logits, before any sampling settings), which falls as outputs sharpen.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from transformers import GenerationConfig

DEFAULT_PROMPTS = [
    "Once upon a time,",
    "The best way to learn a new language is",
    "Here is a short description of the ocean:",
    "My favourite meal is",
    "In the history of science,",
    "The city was quiet in the morning, and",
    "A good friend is someone who",
    "The weather today",
]


def _words(text: str) -> list[str]:
    return text.lower().split()


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct n-grams over all n-grams of the texts' words (pooled); None when there is no n-gram."""
    grams = [tuple(words[i:i + n]) for words in map(_words, texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def word_entropy(texts: Sequence[str]) -> float | None:
    """Shannon entropy in bits of the unigram distribution of the texts' words."""
    counts = Counter(w for text in texts for w in _words(text))
    total = sum(counts.values())
    if not total:
        return None
    return -sum(c / total * math.log2(c / total) for c in counts.values()) + 0.0


def predictive_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) over the last dimension."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


@torch.no_grad()
def generate_free(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, sample: bool = False,
                  seed: int = 0) -> tuple[list[str], float | None]:
    """Continuations of the prompts and the mean predictive entropy over the generated steps."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    try:
        batch = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        sampling = {"temperature": 1.0, "top_k": 0, "top_p": 1.0} if sample else {}
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sample, output_logits=True,
                                  return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, **sampling)
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = model.generate(**batch, generation_config=config)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    new = out.sequences[:, batch["input_ids"].shape[1]:]
    # a step counts for a row until (and including) the row's end-of-sequence token
    alive = torch.ones(new.shape, dtype=torch.bool, device=new.device)
    if tokenizer.eos_token_id is not None:
        ended = (new == tokenizer.eos_token_id).long().cumsum(dim=1)
        alive = (ended - (new == tokenizer.eos_token_id).long()) == 0
    entropies = torch.stack([predictive_entropy(step) for step in out.logits], dim=1)  # rows x steps
    mask = alive[:, :entropies.shape[1]]
    mean = float(entropies[mask].mean()) if mask.any() else None
    return tokenizer.batch_decode(new, skip_special_tokens=True), mean


def collapse_stats(texts: Sequence[str], entropy: float | None = None) -> dict:
    """distinct-1/2/3, word entropy, predictive entropy and mean length (words) of generations."""
    return {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "word_entropy": word_entropy(texts),
        "predictive_entropy": entropy,
        "mean_words": sum(len(_words(t)) for t in texts) / len(texts) if texts else None,
    }


def measure_collapse(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, sample: bool = False,
                     seed: int = 0, keep_texts: int = 2) -> dict:
    """collapse_stats of the model's free generations, with the first `keep_texts` generations as examples."""
    texts, entropy = generate_free(model, tokenizer, prompts, max_new_tokens, sample, seed)
    return {**collapse_stats(texts, entropy), "examples": [t[:200] for t in texts[:keep_texts]]}
