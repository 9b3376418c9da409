"""Diagnostics: measure why the model forgot, after every round (lifelong/diagnostics/).

Changes nothing in training. `before_round` snapshots what the round will change (the weights, the
features of a fixed probe set, the scores of earlier domains and the canary on a bounded sample of
their eval items, free generations) and measures the gradient conflict between the new domain and
each earlier domain and the canary at the starting weights; `after_round` measures representational
drift and CKA per layer, attention-output drift (lower against upper layers), sharpness, feature
rotation (Procrustes), output collapse, and, for every score that dropped, how much of it returns
when one layer group is put back to its pre-round weights. One `{"event": "diagnostics", ...}` line
per round goes to log.jsonl, with the seconds each measurement cost; the report's "why" section
sets them beside the round's forgetting.

Its place in `pieces` matters only with LoRA: put it before `lora`, so its `after_round` sees the
trained adapter before the merge (sharpness perturbs the trainable weights, and a freshly renewed
adapter has none that act). A round continued from a mid-domain checkpoint is measured from the
checkpoint's weights, not the round's start. Sources: docs/architecture.md, "Forgetting diagnostics".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifelong.config import DiagnosticsConfig
from lifelong.pieces.base import Piece

if TYPE_CHECKING:  # the measurements import the training loop, which imports the pieces
    from lifelong.diagnostics.suite import Diagnoser, Snapshot, Sources


class Diagnostics(Piece):
    name = "diagnostics"
    options: DiagnosticsConfig

    def __init__(self, options: DiagnosticsConfig | None = None):
        super().__init__(options or DiagnosticsConfig())
        self.diagnoser: Diagnoser | None = None
        self.seen: list = []  # domains learned so far, when no stream is known
        self._snapshot: Snapshot | None = None
        self._sources: Sources | None = None

    def _model(self):
        context = self.context
        return context.accelerator.unwrap_model(context.model)

    def _ready(self, domain) -> Diagnoser:
        context = self.context
        if self.diagnoser is None:
            from lifelong.diagnostics.suite import Diagnoser, probe_texts

            evaluator = context.evaluator
            if evaluator is None:
                from lifelong.evaluation.evaluator import Evaluator

                evaluator = context.evaluator = Evaluator(context.config.evaluation, context.tokenizer,
                                                          seed=context.config.seed)
            cfg = context.config
            self.diagnoser = Diagnoser(self.options, context.tokenizer, evaluator, cfg.evaluation.prompt,
                                       max_length=cfg.training.max_length, seed=cfg.seed,
                                       with_questions=cfg.training.train_questions)
            stream = context.stream
            domains = stream.domains if stream is not None else [domain]
            self.diagnoser.texts = probe_texts(domains, stream.canary if stream else None,
                                               stream.core if stream else context.core, self.options.probe_texts,
                                               cfg.evaluation.prompt)
        return self.diagnoser

    def sources(self, domain) -> Sources:
        from lifelong.diagnostics.suite import Sources

        stream = self.context.stream
        if stream is not None and domain.name in stream.domain_names:
            earlier = stream.domains[:stream.domain_names.index(domain.name)]
        else:
            earlier = [d for d in self.seen if d.name != domain.name]
        return Sources(new=domain, earlier=earlier, canary=stream.canary if stream is not None else None)

    def before_round(self, domain) -> None:
        diagnoser = self._ready(domain)
        self._sources = self.sources(domain)
        self._snapshot = diagnoser.before(self._model(), self._sources)

    def after_round(self, domain) -> None:
        if self._snapshot is None or self.diagnoser is None:
            return
        body = self.diagnoser.after(self._model(), self._snapshot, self._sources)
        self._snapshot = None  # frees the pre-round weights
        names = [d.name for d in self._sources.earlier]
        self.context.log({"event": "diagnostics", "domain": domain.name, "round": len(names) + 1,
                          "earlier": names, **body})
        if all(d.name != domain.name for d in self.seen):
            self.seen.append(domain)
