"""Distillation on the core set: keep the model's answers to general material what they were.

Replaying general facts with their hard labels teaches those facts; it barely protects the other
things the model knew (measured on the example stream's documents with LoRA at lr 3e-3 and 40%
replay, half of it from the general core: the general canary fell from 1.00 to 0.43 after the first
domain, the model answering "What is the capital of Switzerland?" with an invented name). What
protects them is matching the model's whole output distribution on general inputs, as it was before
any training (Dark Experience Replay: Buzzega et al. 2020; Learning without Forgetting: Li & Hoiem
2016).

At the start of the first round the piece reads `examples` examples of the core set (the stream's, or
the general set's: lifelong/stream_defaults.py) and keeps the model's `top_k` most likely next tokens
and their probabilities at the positions it distils (a few MB, kept in its state_dict, so a resumed
run distils towards the same predictions). With `focus: all` (the default) every position of the
examples as they are trained counts, pooled: mostly the documents' positions. With `focus: answers` a
core question is put in the evaluation's prompt, the context its answer is scored in, only the
positions that predict the answer and its line end are kept, and every example weighs the same. That
aims closer at what the canary scores, yet it kept less of it (one domain of example-docs, LoRA lr
1e-3, alpha 10: canary 0.81 against 0.89, and the domain 0.16 against 0.25; docs/documents_only.md):
what protects general answers is the model's whole distribution on general text. At every training step
the penalty is

    alpha * mean over the positions of  KL(p_before || p_now)   (focus all)
    alpha * mean over the examples of  mean over their positions of  KL(p_before || p_now)   (focus answers)

on `batch_size` of those examples, in a seeded shuffled cycle, the KL taken over the stored top-k
tokens plus one bucket for the rest of the vocabulary (so it is zero exactly when nothing changed).
One extra forward and backward of a small batch per step; no second copy of the model.
"""

from __future__ import annotations

import random

import torch

from lifelong.config import DistillConfig
from lifelong.data.records import QAItem
from lifelong.evaluation import prompts
from lifelong.examples import IGNORE_INDEX, Example, plain_examples, tokenize_examples
from lifelong.pieces.base import Piece

PREDICTION_BATCH = 16  # core examples per forward when their predictions are stored


class Distill(Piece):
    """Cross-entropy to the first round's top-k predictions on core examples, added to every step's loss."""

    name = "distill"
    options: DistillConfig

    def __init__(self, options: DistillConfig | None = None):
        super().__init__(options or DistillConfig())
        self.targets: list[dict[str, torch.Tensor]] = []  # per example: input_ids, top-k ids and probabilities
        self.rng = random.Random("distill")
        self._cycle: list[int] = []

    def attach(self, context) -> None:
        super().attach(context)
        self.rng = random.Random(f"distill-{context.config.seed}")

    def before_round(self, domain) -> None:
        if self.targets or getattr(self.context, "reference", False):
            return
        core = self.context.core
        if core is None:
            self.context.log({"event": "distill", "examples": 0, "note": "no core set to distil on"})
            return
        self.targets = self._predictions(core)
        self.context.log({"event": "distill", "examples": len(self.targets),
                          "tokens": sum(len(t["input_ids"]) for t in self.targets)})

    def _examples(self, core) -> list:
        """The core examples to distil: its documents, and its questions as scored (focus answers) or as trained."""
        prompt = self.context.config.evaluation.prompt
        if self.options.focus == "all":
            return plain_examples(core, prompt, with_questions=True)
        documents = [Example(text=doc.text, source="document") for doc in core.documents]
        questions = [Example(prompt=prompts.scoring_context(prompt, self.context.tokenizer, item.question),
                             text=prompts.answer_continuation(item.answer) + "\n", source="question")
                     for item in core.train_items if isinstance(item, QAItem)]
        return documents + questions

    def _positions(self, feature: dict) -> list[int]:
        """Positions whose next-token prediction is distilled: every one, or (focus answers) those that
        predict a labelled token, i.e. a question's answer and its line end, or any token of a document."""
        n = len(feature["input_ids"])
        if self.options.focus == "all":
            return list(range(n))
        return [t for t in range(n - 1) if feature["labels"][t + 1] != IGNORE_INDEX]

    @torch.no_grad()
    def _predictions(self, core) -> list[dict[str, torch.Tensor]]:
        examples = self._examples(core)
        examples = random.Random(f"distill-pick-{self.context.config.seed}").sample(
            examples, min(len(examples), self.options.examples))
        features = [f for f in tokenize_examples(self.context.tokenizer, examples, self.options.max_length)
                    if self._positions(f)]
        model = self.context.model
        was_training = model.training
        model.eval()
        # Batches of similar length: one forward per example took a minute for 256 on 2 CPU cores.
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        predicted: dict[int, dict] = {}
        for start in range(0, len(order), PREDICTION_BATCH):
            chunk = order[start:start + PREDICTION_BATCH]
            predicted.update(zip(chunk, self._predict_batch(model, [features[i] for i in chunk]), strict=True))
        model.train(was_training)
        return [predicted[i] for i in range(len(features))]  # the seeded pick's order

    def _predict_batch(self, model, features: list[dict]) -> list[dict[str, torch.Tensor]]:
        ids, mask = self._padded([torch.tensor(f["input_ids"]) for f in features], model)
        logits = model(input_ids=ids, attention_mask=mask).logits
        out = []
        for row, feature in enumerate(features):
            positions = torch.tensor(self._positions(feature), dtype=torch.long)
            probs = torch.softmax(logits[row, positions.to(logits.device)].float(), dim=-1)
            top = probs.topk(self.options.top_k, dim=-1)
            out.append({"input_ids": ids[row, :len(feature["input_ids"])].cpu(), "positions": positions,
                        "ids": top.indices.cpu(), "probs": top.values.half().cpu()})
        return out

    def _padded(self, rows: list[torch.Tensor], model) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and their attention mask (a causal model's predictions before the padding
        do not see it)."""
        width = max(len(r) for r in rows)
        pad = self.context.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
            mask[i, :len(r)] = 1
        device = next(model.parameters()).device
        return ids.to(device), mask.to(device)

    def _next_batch(self) -> list[dict[str, torch.Tensor]]:
        batch = []
        for _ in range(min(self.options.batch_size, len(self.targets))):
            if not self._cycle:
                self._cycle = list(range(len(self.targets)))
                self.rng.shuffle(self._cycle)
            batch.append(self.targets[self._cycle.pop()])
        return batch

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        if not self.targets or self.options.alpha == 0 or getattr(self.context, "reference", False):
            return None
        batch = self._next_batch()
        ids, mask = self._padded([t["input_ids"] for t in batch], model)
        device = ids.device
        log_probs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        per_example = []
        for row, target in enumerate(batch):
            positions = target.get("positions", torch.arange(len(target["input_ids"]))).to(device)
            per_example.append(top_k_kl(target["probs"].to(device).float(), log_probs[row, positions],
                                        target["ids"].to(device)))
        if self.options.focus == "all":
            return self.options.alpha * torch.cat(per_example).mean()
        return self.options.alpha * torch.stack([kl.mean() for kl in per_example]).mean()

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"targets": self.targets, "cycle": list(self._cycle), "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict) -> None:
        self.targets = list(state.get("targets", []))
        self._cycle = list(state.get("cycle", []))
        if "rng" in state:
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))


def top_k_kl(before: torch.Tensor, now_log: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """KL(before || now) per position over the k stored tokens plus one bucket for all the others.

    `before`: the stored probabilities of the top-k tokens `ids`; `now_log`: the model's log-probabilities
    over the whole vocabulary now. Zero exactly when the model predicts what it did, whatever k is.
    The bucket's log-probability now is a log-sum-exp over the other tokens, not log(1 - the top k's
    sum): that difference cancels in float32 once the model is sure of its top tokens (its gradient was
    off by about 2 % of its size; this one by 1e-8, against a float64 reference)."""
    eps = 1e-8
    kept = (before * (before.clamp_min(eps).log() - now_log.gather(-1, ids))).sum(-1)
    rest_before = (1 - before.sum(-1)).clamp_min(eps)
    rest_now_log = now_log.scatter(-1, ids, float("-inf")).logsumexp(-1)
    return kept + rest_before * (rest_before.log() - rest_now_log)
