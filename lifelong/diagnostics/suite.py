"""The six measurements together: a snapshot before a round (or of a reference model), measurements after.

`Diagnoser.before(model, sources)` records what the round will change (weights, probe features, the
scores of earlier domains and the canary, free generations) and measures the gradient conflict at
the starting weights; `Diagnoser.after(model, snapshot, sources)` measures drift, CKA, rotation,
sharpness, collapse and layer attribution against it and returns one JSON-ready dict, with the
seconds each measurement took. The `diagnostics` piece calls both around every round;
`compare_models` runs the same measurements on two models (`lifelong eval --diagnose-against`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from lifelong.config import DiagnosticsConfig, PromptConfig
from lifelong.data.records import Domain, Item
from lifelong.diagnostics import attribution, collapse, drift, gradient_conflict, rotation, sharpness
from lifelong.diagnostics.groups import LayerGroups, snapshot_weights
from lifelong.examples import plain_examples, question_example
from lifelong.training import Example

CANARY = "canary"


@dataclass
class Sources:
    """What a round is measured against: the new domain, the earlier domains, the canary."""

    new: Domain | None
    earlier: list[Domain] = field(default_factory=list)
    canary: Domain | None = None

    def scored(self) -> dict[str, Domain]:
        """The sources whose scores can regress: earlier domains and the canary, by name."""
        out = {d.name: d for d in self.earlier}
        if self.canary is not None:
            out[CANARY] = self.canary
        return out


@dataclass
class Snapshot:
    """What `before` recorded."""

    groups: LayerGroups
    weights: dict[str, torch.Tensor] | None = None
    features: drift.Features | None = None
    scores: dict[str, float] = field(default_factory=dict)
    conflicts: dict[str, dict] = field(default_factory=dict)
    collapse: dict | None = None
    cost_s: dict[str, float] = field(default_factory=dict)


def rounded(value, digits: int = 6):
    """Floats rounded (non-finite ones to None) throughout a JSON-ready structure."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def question_examples(items: Sequence[Item], prompt: PromptConfig) -> list[Example]:
    """Questions as prompt/answer training examples (the loss on the answer), as the learner makes them."""
    return [example for item in items if (example := question_example(item, prompt)) is not None]


def domain_examples(domain: Domain, prompt: PromptConfig, with_questions: bool = True) -> list[Example]:
    """A domain's training examples (documents + split=train questions); a canary's are its eval questions."""
    examples = plain_examples(domain, prompt, with_questions)
    return examples or question_examples(domain.eval_items, prompt)


def _subset(values: Sequence, n: int | None, seed: str) -> list:
    values = list(values)
    if n is None or len(values) <= n:
        return values
    return random.Random(seed).sample(values, n)


def probe_texts(domains: Sequence[Domain], canary: Domain | None, core: Domain | None, n: int,
                prompt: PromptConfig) -> list[str]:
    """A fixed probe set: documents of every domain, the core set and canary questions, taken in turn."""
    pools: list[list[str]] = []
    for domain in [*domains, core]:
        if domain is not None:
            pools.append([doc.text for doc in domain.documents]
                         or [e.prompt + e.text for e in question_examples(domain.eval_items, prompt)])
    if canary is not None:
        pools.append([e.prompt + e.text for e in question_examples(canary.eval_items, prompt)])
    texts: list[str] = []
    depth = 0
    while len(texts) < n and any(depth < len(pool) for pool in pools):
        texts += [pool[depth] for pool in pools if depth < len(pool)]
        depth += 1
    return texts[:n]


class Diagnoser:
    """Runs the configured measurements; see the module docstring."""

    def __init__(self, options: DiagnosticsConfig, tokenizer, evaluator, prompt: PromptConfig,
                 max_length: int = 256, seed: int = 0, with_questions: bool = True):
        self.options = options
        self.tokenizer = tokenizer
        self.evaluator = evaluator
        self.prompt = prompt
        self.max_length = max_length
        self.seed = seed
        self.with_questions = with_questions
        self.texts: list[str] = []  # the probe set, fixed by the caller (probe_texts)
        self._last: dict | None = None  # what `after` measured, reused by the next `before` at the same weights

    def on(self, name: str) -> bool:
        return name in self.options.measurements

    # ---- inputs -----------------------------------------------------------------------------------
    def examples(self, domain: Domain) -> list[Example]:
        return _subset(domain_examples(domain, self.prompt, self.with_questions), self.options.grad_examples,
                       f"diagnostics-{self.seed}-{domain.name}")

    def items(self, domain: Domain) -> list[Item]:
        return _subset(self.evaluator.sample(domain.eval_items), self.options.score_items,
                       f"diagnostics-{self.seed}-{domain.name}")

    def scores(self, model, sources: dict[str, Domain]) -> dict[str, float]:
        return {name: self.evaluator.score_items(model, self.items(domain), desc=f"diagnose {name}").score
                for name, domain in sources.items()}

    def features(self, model) -> drift.Features:
        o = self.options
        return drift.probe_features(model, self.tokenizer, self.texts, max_tokens=o.probe_tokens,
                                    max_length=o.probe_length, batch_size=o.batch_size)

    def collapse(self, model) -> dict:
        o = self.options
        return collapse.measure_collapse(model, self.tokenizer, o.generation_prompts or collapse.DEFAULT_PROMPTS,
                                         o.generation_tokens, o.generation_sample, self.seed)

    def _loss(self, model, examples: list[Example], backward: bool = False) -> float:
        return gradient_conflict.mean_loss(model, self.tokenizer, examples, self.max_length, self.options.batch_size,
                                           backward=backward)

    def sharpness(self, model, examples: list[Example]) -> dict:
        o = self.options
        was_training = model.training
        model.eval()
        try:
            return sharpness.sharpness(model, lambda: self._loss(model, examples),
                                       radii=o.sharpness_radii, samples=o.sharpness_samples,
                                       gradient_fn=lambda: self._loss(model, examples, backward=True),
                                       gradient_radii=o.sharpness_gradient_radii, seed=self.seed)
        finally:
            model.train(was_training)

    # ---- the two halves -----------------------------------------------------------------------------
    def before(self, model, sources: Sources) -> Snapshot:
        snap = Snapshot(groups=LayerGroups.of(model, self.options.layer_groups))
        timer = _Timer(snap.cost_s)
        scored = sources.scored()
        last = self._last if self._last and self._last["fingerprint"] == fingerprint(model) else {}
        self._last = None
        if self.on("attribution"):
            with timer("attribution"):
                snap.weights = snapshot_weights(model)
        if self.on("drift") or self.on("rotation"):
            with timer("features"):
                snap.features = last.get("features") or self.features(model)
        if scored and (self.on("attribution") or self.on("gradient_conflict")):
            with timer("scores"):
                known = last.get("scores") or {}
                fresh = self.scores(model, {name: d for name, d in scored.items() if name not in known})
                snap.scores = {name: known[name] if name in known else fresh[name] for name in scored}
        if self.on("gradient_conflict") and sources.new is not None and scored:
            with timer("gradient_conflict"):
                others = {name: self.examples(domain) for name, domain in scored.items()}
                snap.conflicts = gradient_conflict.conflicts(model, self.tokenizer, self.examples(sources.new), others,
                                                             snap.groups.of_param, self.max_length,
                                                             self.options.batch_size)
        if self.on("collapse"):
            with timer("collapse"):
                snap.collapse = last.get("collapse") or self.collapse(model)
        return snap

    def after(self, model, snap: Snapshot, sources: Sources) -> dict:
        timer = _Timer(snap.cost_s)
        groups = snap.groups
        event: dict = {"groups": groups.names}
        scored = sources.scored()
        after_scores: dict[str, float] = {}
        if snap.scores:
            with timer("scores"):
                after_scores = self.scores(model, scored)
            event["scores"] = {name: {"before": snap.scores[name], "after": after_scores[name],
                                      "drop": snap.scores[name] - after_scores[name]} for name in snap.scores}
        if self.on("gradient_conflict"):
            event["gradient_conflict"] = {
                name: {"cosine": cosines, "drop": event.get("scores", {}).get(name, {}).get("drop")}
                for name, cosines in snap.conflicts.items()}
        if snap.features is not None:
            with timer("features"):
                now = self.features(model)
            if self.on("drift"):
                with timer("drift"):
                    lower, upper = groups.spans[0][1], groups.spans[-1][1]
                    event["drift"] = drift.drift_summary(snap.features, now, lower, upper)
                    event["drift"]["lower_group"], event["drift"]["upper_group"] = groups.lower_upper()
            if self.on("rotation"):
                with timer("rotation"):
                    event["rotation"] = rotation.rotation_summary(snap.features.hidden, now.hidden,
                                                                  self.options.rotation_holdout)
        if self.on("sharpness") and sources.new is not None:
            with timer("sharpness"):
                event["sharpness"] = self.sharpness(model, self.examples(sources.new))
        if self.on("collapse"):
            with timer("collapse"):
                now_collapse = self.collapse(model)
            event["collapse"] = {"before": snap.collapse, "after": now_collapse}
        if self.on("attribution") and snap.weights is not None:
            with timer("attribution"):
                event["attribution"] = attribution.attribute(
                    model, snap.weights, groups,
                    lambda name: self.evaluator.score_items(model, self.items(scored[name]),
                                                            desc=f"attribute {name}").score,
                    snap.scores, after_scores)
        with timer("fingerprint"):
            self._last = {"fingerprint": fingerprint(model), "features": now if snap.features is not None else None,
                          "scores": after_scores, "collapse": (event.get("collapse") or {}).get("after")}
        event["cost_s"] = {**snap.cost_s, "total": sum(snap.cost_s.values())}
        return rounded(event)


@torch.no_grad()
def fingerprint(model) -> tuple:
    """The sum of every parameter tensor: equal for the same weights, so measurements at them can be reused."""
    return tuple(float(p.detach().float().sum()) for p in model.parameters())


class _Timer:
    """Adds the seconds spent in each `with timer(name)` block to costs[name]."""

    def __init__(self, costs: dict[str, float]):
        self.costs = costs

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.costs[name] = self.costs.get(name, 0.0) + time.perf_counter() - started


def compare_models(reference, model, diagnoser: Diagnoser, domains: Sequence[Domain],
                   canary: Domain | None = None) -> dict:
    """The measurements between two models of one architecture: `reference` as before, `model` as after.

    Scores are taken on every domain and the canary; sharpness (both models) on examples of every
    domain; the gradient conflict needs a new domain and a starting point, so it is not measured here.
    """
    options = diagnoser.options.model_copy(update={
        "measurements": [m for m in diagnoser.options.measurements if m != "gradient_conflict"]})
    inner = Diagnoser(options, diagnoser.tokenizer, diagnoser.evaluator, diagnoser.prompt, diagnoser.max_length,
                      diagnoser.seed, diagnoser.with_questions)
    inner.texts = diagnoser.texts
    sources = Sources(new=None, earlier=list(domains), canary=canary)
    snap = inner.before(reference, sources)
    event = inner.after(model, snap, sources)
    if inner.on("sharpness"):
        per_domain = max(1, options.grad_examples // max(len(domains), 1))
        examples = [e for d in domains for e in _subset(domain_examples(d, inner.prompt), per_domain, d.name)]
        started = time.perf_counter()
        event["sharpness"] = rounded({"reference": inner.sharpness(reference, examples),
                                      "model": inner.sharpness(model, examples)})
        event["cost_s"]["sharpness"] = round(time.perf_counter() - started, 6)
    return event


