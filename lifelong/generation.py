"""Text generation for self-directed learning: the teacher that writes questions, notes, rationales (DESIGN §6).

A `Generator` wraps a causal LM and its tokenizer. Every prompt is put through the tokenizer's
chat template (a plain prompt when it has none), batched with left padding, generated with a
cap on new tokens, greedy or sampled. Sampling is reproducible: each batch draws from a torch
random state seeded from the run's seed, the prompt name and the batch's prompts, inside
`torch.random.fork_rng`, so the result depends neither on call order nor on the training
loop's random state, which is left untouched.

Every result is a `Generated` record that keeps the text, which model wrote it, and the prompt
(its name and its full text), so a run can say who wrote its study material.

The teacher is the learner itself by default (as in SEAL): `teacher_generator(learner)` wraps
the learner's current weights; with `teacher: <model spec>` in config that model is loaded once
and kept. `learner_generator(learner)` always wraps the learner (closed-book answers must come
from the model that is learning).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from lifelong.config import SelfDirectedConfig


@dataclass(frozen=True)
class Generated:
    """One generated text and where it came from."""

    text: str
    model: str  # the model spec that wrote it
    prompt_name: str  # which prompt (the piece's name for it)
    prompt: str  # the prompt's full text, before the chat template
    source: str = ""  # the document or question the prompt was about

    def to_dict(self) -> dict:
        return asdict(self)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (stable across processes, unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class Generator:
    """Batched chat-template generation with provenance; `generate` returns one list per prompt."""

    def __init__(self, model, tokenizer, name: str, options: SelfDirectedConfig | None = None, seed: int = 0,
                 progress: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.options = options or SelfDirectedConfig()
        self.seed = seed
        self.progress = progress

    def chat(self, prompt: str) -> str:
        """The prompt as the model sees it: a user turn of its chat template, ready for the reply."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def generate(self, prompts: Sequence[str], prompt_name: str, n: int = 1, *, sample: bool | None = None,
                 max_new_tokens: int | None = None, sources: Sequence[str] | None = None) -> list[list[Generated]]:
        """`n` texts per prompt. Sampled when the configured temperature is above 0 (or `sample` says so)."""
        opts = self.options
        sample = opts.temperature > 0 if sample is None else sample
        if n > 1 and not sample:
            raise ValueError("several texts per prompt need sampling (self_directed.temperature > 0)")
        cap = max_new_tokens or opts.max_new_tokens
        sources = list(sources) if sources is not None else [""] * len(prompts)
        results: list[list[Generated]] = []
        for start in range(0, len(prompts), opts.batch_size):
            batch = list(prompts[start:start + opts.batch_size])
            seed = derive_seed(self.seed, prompt_name, n, cap, *batch)
            texts = self._generate([self.chat(p) for p in batch], n, sample, cap, seed)
            for i, prompt in enumerate(batch):
                results.append([Generated(text, self.name, prompt_name, prompt, sources[start + i])
                                for text in texts[i * n:(i + 1) * n]])
        return results

    @torch.no_grad()
    def _generate(self, texts: list[str], n: int, sample: bool, max_new_tokens: int, seed: int) -> list[str]:
        tokenizer, model = self.tokenizer, self.model
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        was_training = model.training
        model.eval()
        try:
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            settings = {"do_sample": sample, "max_new_tokens": max_new_tokens, "num_return_sequences": n,
                        "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
            if sample:
                settings.update(temperature=self.options.temperature, top_p=self.options.top_p)
            else:
                settings.update(temperature=None, top_p=None, top_k=None)
            devices = [model.device] if model.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                out = model.generate(**batch, **settings)
            return [text.strip() for text in
                    tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]
        finally:
            tokenizer.padding_side = side
            model.train(was_training)


def learner_generator(learner) -> Generator:
    """The learner's current weights as a generator (the model that is learning); `learner` is a piece's
    context (lifelong/pieces/base.py's PieceContext), whose `cache` keeps the generator for the run."""
    model = learner.accelerator.unwrap_model(learner.model)
    cached = learner.cache.get("learner_generator")
    if cached is None:
        cached = Generator(model, learner.tokenizer, learner.config.model, learner.config.self_directed,
                           seed=learner.config.seed)
        learner.cache["learner_generator"] = cached
    cached.model = model  # LoRA's merge replaces the model object between rounds
    return cached


def teacher_generator(learner) -> Generator:
    """The `teacher` of the run: the learner itself (default), or the configured model, loaded once."""
    spec = learner.config.teacher
    if spec is None or spec == learner.config.model:
        return learner_generator(learner)
    cached = learner.cache.get("teacher_generator")
    if cached is None:
        from lifelong.models import load_model

        model, tokenizer = load_model(spec, dtype=learner.config.dtype, device=learner.config.device,
                                      mixed_precision=learner.config.mixed_precision,
                                      seed=learner.config.seed)
        cached = Generator(model, tokenizer, spec, learner.config.self_directed, seed=learner.config.seed)
        learner.cache["teacher_generator"] = cached
    return cached
