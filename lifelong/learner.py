"""The Learner: a model, its tokenizer, and the pieces that decide how it learns (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from accelerate import Accelerator

from lifelong.config import RunConfig
from lifelong.data.records import Domain
from lifelong.examples import Example, plain_examples, question_example  # noqa: F401  (question_example: old home)
from lifelong.pieces.base import Piece, trainable_parameters
from lifelong.training import Checkpointing, RoundStats, TrainingLoop


class Learner:
    """Owns the model; `learn(domain)` runs one learning round through the pieces' hooks."""

    def __init__(self, model, tokenizer, pieces: Sequence[Piece], config: RunConfig,
                 accelerator: Accelerator | None = None, log: Callable[[dict], None] = lambda event: None):
        self.model = model
        self.tokenizer = tokenizer
        self.pieces = list(pieces)
        self.config = config
        self.accelerator = accelerator or Accelerator(cpu=str(model.device) == "cpu",
                                                      gradient_accumulation_steps=config.training.grad_accum)
        self.log = log
        self.core: Domain | None = None  # the stream's core (replay) set, set by the Experiment
        self.stream = None  # the Stream being learned, set by the Experiment (self-test, diagnostics)
        self.evaluator = None  # the Experiment's Evaluator, for pieces that score the model
        self.out_dir = None  # the run's output folder, set by the Experiment (generated material is kept there)
        self.reference = False  # True during a documents-only reference round (self_teaching_quality)
        self.loop = TrainingLoop(config.training, self.accelerator, log, progress=config.evaluation.progress)
        for piece in self.pieces:
            piece.attach(self)

    def examples(self, domain: Domain) -> list[Example]:
        examples = plain_examples(domain, self.config.evaluation.prompt, self.config.training.train_questions)
        for piece in self.pieces:
            examples = piece.examples(domain, examples)
        return examples

    def param_groups(self) -> list[dict]:
        params = [p for _, p in trainable_parameters(self.model)]
        groups = [{"params": params, "lr": self.config.training.lr}]
        for piece in self.pieces:
            groups = piece.param_groups(self.model, groups)
        return [group for group in groups if group["params"]]

    def learn(self, domain: Domain, seed: int, on_checkpoint: Callable[[int], None] | None = None,
              checkpoints: Checkpointing | None = None, final_point: bool = True) -> RoundStats:
        """One learning round on `domain` (DESIGN §4 steps 1-4), then every piece's `review` (the self-test).

        `checkpoints` saves the loop's state mid-round, or continues a round from a saved state;
        the pieces must then hold their state from the round's start, the model the saved weights.
        `on_checkpoint` and `final_point` are the training loop's (TrainingLoop.run).
        """
        stats = self.run_round(domain, seed, on_checkpoint=on_checkpoint, checkpoints=checkpoints,
                               final_point=final_point)
        for piece in self.pieces:
            kept = piece.review(domain)
            if isinstance(kept, RoundStats):  # a repair round that was kept replaces the round's stats
                stats = kept
        return stats

    def run_round(self, domain: Domain, seed: int, extra: Sequence[Example] = (),
                  on_checkpoint: Callable[[int], None] | None = None, checkpoints: Checkpointing | None = None,
                  epochs: int | None = None, final_point: bool = True) -> RoundStats:
        """Steps 1-4 without the review: before_round, examples (+ `extra`, added after the pieces' chain),
        the training loop (`epochs` overrides training.epochs), after_round. A repair round calls this again."""
        for piece in self.pieces:
            piece.before_round(domain)
        examples = self.examples(domain) + list(extra)
        loop = self.loop
        if epochs is not None and epochs != self.config.training.epochs:
            loop = TrainingLoop(self.config.training.model_copy(update={"epochs": epochs}), self.accelerator,
                                self.log, progress=self.config.evaluation.progress)
        stats = loop.run(self.model, self.tokenizer, examples, self.param_groups(), self.pieces,
                         seed=seed, domain=domain.name, on_checkpoint=on_checkpoint, checkpoints=checkpoints,
                         final_point=final_point)
        self.model = self.accelerator.unwrap_model(self.model)
        for piece in self.pieces:
            piece.after_round(domain)
        return stats

    def learn_reference(self, domain: Domain, seed: int, steps: int) -> RoundStats:
        """A reference round for self_teaching_quality: exactly `steps` optimizer steps on the domain's own
        material, the self-directed pieces generating nothing (`reference` is True); no after_round and no
        review: the caller restores the learner's state afterwards (lifelong/selfdirected/quality.py)."""
        self.reference = True
        try:
            for piece in self.pieces:
                piece.before_round(domain)
            examples = self.examples(domain)
            stats = self.loop.run(self.model, self.tokenizer, examples, self.param_groups(), self.pieces,
                                  seed=seed, domain=f"{domain.name} (reference)", steps=steps)
        finally:
            self.reference = False
            self.model = self.accelerator.unwrap_model(self.model)
        return stats

    def pieces_state(self) -> dict:
        return {piece.name: piece.state_dict() for piece in self.pieces}

    def load_pieces_state(self, state: dict) -> None:
        for piece in self.pieces:
            if piece.name in state:
                piece.load_state_dict(state[piece.name])
