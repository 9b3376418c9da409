"""Online Elastic Weight Consolidation: a quadratic pull towards the weights earlier domains needed.

After each round the diagonal Fisher information F of the trainable parameters is estimated on
a sample of the round's training examples (`fisher_samples`), as the mean over examples of each
example's squared gradient of its loss (the empirical Fisher; per-example gradients, not the
square of a minibatch's mean gradient). The online version keeps one running Fisher,
F = gamma * F_old + F_new, and one anchor, the weights after the latest round. While learning
the next domains the loss gets

    penalty = ewc_lambda / 2 * sum_i F_i * (theta_i - anchor_i)^2

F and the anchor are stored for trainable parameters only (LoRA: the adapters), keyed by
parameter name, on the model's device: memory is twice the trainable parameters.

Default ewc_lambda = 100. The loss is a per-token mean and F is the Fisher of one example's
mean-token loss, so under the quadratic (Laplace) approximation lambda = 1 would weigh the
earlier domains' loss exactly as much as the new domain's; the diagonal, sampled estimate
underestimates curvature, and EWC is used as a strong protection, so the default weighs the
old domains two orders of magnitude above the new one. Tune it per model (`ewc.ewc_lambda`).

LoRA with `after_domain: merge`: the merged adapter's change is in the base weights and a fresh
adapter trains next, so the anchor must be the fresh adapter. Pieces run after_round in list
order, so `ewc` must come after `lora` in `pieces` (checked when attached), and after
`unfreezing` (which makes every layer trainable again in its after_round). A Fisher entry whose
parameter changed shape starts afresh.

Source: Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural networks" (EWC);
Schwarz et al. 2018, "Progress & Compress: A scalable framework for continual learning"
(online EWC, running Fisher with decay gamma).
"""

from __future__ import annotations

import random

import torch

from lifelong.config import EwcConfig
from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece


class Ewc(Piece):
    """Running diagonal Fisher + anchor after each round; penalty lambda/2 * F * (theta - anchor)^2."""

    name = "ewc"
    options: EwcConfig

    def __init__(self, options: EwcConfig | None = None):
        super().__init__(options or EwcConfig())
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.rounds = 0
        self._examples: list = []
        self._pairs: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] | None = None
        self._pairs_model: torch.nn.Module | None = None

    def attach(self, context) -> None:
        super().attach(context)
        names = [piece.name for piece in context.pieces]
        mine = next((i for i, piece in enumerate(context.pieces) if piece is self), -1)
        merging = [i for i, piece in enumerate(context.pieces)
                   if piece.name == "lora" and getattr(piece.options, "after_domain", None) == "merge"]
        if mine >= 0 and any(i > mine for i in merging):
            raise ConfigError(f"key 'pieces': 'ewc' must come after 'lora' (got {names}): the anchor is "
                              "taken after LoRA merges its adapter")

    def examples(self, domain, examples):
        self._examples = examples  # kept as received, for the Fisher estimate after the round
        return examples

    def before_round(self, domain) -> None:
        self._pairs = self._pairs_model = None

    # ---- the penalty ------------------------------------------------------------------------
    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        if not self.fisher or self.options.ewc_lambda == 0:
            return None
        total = None
        for p, fisher, anchor in self._matched(model):
            if p.requires_grad:
                term = (fisher * (p - anchor).pow(2)).sum()
                total = term if total is None else total + term
        return None if total is None else 0.5 * self.options.ewc_lambda * total

    def _matched(self, model: torch.nn.Module):
        """(parameter, F, anchor) for every stored name that the model still has, with the same shape."""
        if self._pairs is None or self._pairs_model is not model:
            pairs = []
            for name, p in model.named_parameters():
                if name in self.fisher and name in self.anchor and self.fisher[name].shape == p.shape:
                    self.fisher[name] = self.fisher[name].to(p.device)
                    self.anchor[name] = self.anchor[name].to(p.device, p.dtype)
                    pairs.append((p, self.fisher[name], self.anchor[name]))
            self._pairs, self._pairs_model = pairs, model
        return self._pairs

    # ---- after the round: Fisher and anchor ---------------------------------------------------
    def after_round(self, domain) -> None:
        model = self.context.model
        rng = random.Random(f"ewc-{self.context.config.seed}-{self.rounds}")
        sample = rng.sample(list(self._examples), min(self.options.fisher_samples, len(self._examples)))
        new = self.estimate_fisher(model, sample)
        gamma = self.options.gamma
        fisher, anchor = {}, {}
        for name, p in model.named_parameters():
            if name not in new:
                continue
            old = self.fisher.get(name)
            fisher[name] = new[name] if old is None or old.shape != p.shape else gamma * old.to(p.device) + new[name]
            anchor[name] = p.detach().clone()
        self.fisher, self.anchor = fisher, anchor
        self.rounds += 1
        self._pairs = self._pairs_model = None
        self._examples = []

    def estimate_fisher(self, model: torch.nn.Module, examples) -> dict[str, torch.Tensor]:
        """Mean over examples of each example's squared loss gradient, for every trainable parameter."""
        from lifelong.training import collate, tokenize_examples  # lazy: training imports the pieces

        params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
        tokenizer = self.context.tokenizer
        features = tokenize_examples(tokenizer, examples, self.context.config.training.max_length)
        if not features:
            return fisher
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        device = next(iter(params.values())).device if params else torch.device("cpu")
        was_training = model.training
        model.eval()  # no dropout: the Fisher of the model as it is
        try:
            for feature in features:  # batch size 1: one example's own gradient
                for p in params.values():
                    p.grad = None
                batch = {key: value.to(device) for key, value in collate([feature], pad_id).items()}
                model(**batch).loss.backward()
                for name, p in params.items():
                    if p.grad is not None:
                        fisher[name] += p.grad.detach().float().pow(2)
        finally:
            for p in params.values():
                p.grad = None
            model.train(was_training)
        for tensor in fisher.values():
            tensor /= len(features)
        return fisher

    # ---- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"fisher": {n: t.detach().cpu() for n, t in self.fisher.items()},
                "anchor": {n: t.detach().cpu() for n, t in self.anchor.items()},
                "rounds": self.rounds}

    def load_state_dict(self, state: dict) -> None:
        self.fisher = {n: t.clone() for n, t in state.get("fisher", {}).items()}
        self.anchor = {n: t.clone() for n, t in state.get("anchor", {}).items()}
        self.rounds = int(state.get("rounds", 0))
        self._pairs = self._pairs_model = None
