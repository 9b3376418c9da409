"""The Learner: a model, its tokenizer, and the pieces that decide how it learns (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from accelerate import Accelerator

from lifelong.config import RunConfig
from lifelong.data.records import Domain
from lifelong.data.stream_spec import Stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.examples import Example, plain_examples, question_example  # noqa: F401  (question_example: old home)
from lifelong.pieces.base import Piece, PieceContext, trainable_parameters
from lifelong.training import Checkpointing, RoundStats, TrainingLoop


class Learner:
    """Owns the model; `learn(domain)` runs one learning round through the pieces' hooks.

    Its state is the `PieceContext` the pieces are attached with (model, tokenizer, config, accelerator,
    log, the run's core/stream/evaluator/output folder, `reference`, the shared cache) and its training
    loop. The run's parts are given here (`core`, `stream`, `evaluator`, `out_dir`; the output folder only
    on the main process: the others regenerate the same seeded material rather than race for the files);
    the properties below read and write the context, so a piece and the Learner always see one model.
    """

    def __init__(self, model, tokenizer, pieces: Sequence[Piece], config: RunConfig,
                 accelerator: Accelerator | None = None, log: Callable[[dict], None] = lambda event: None, *,
                 core: Domain | None = None, stream: Stream | None = None, evaluator: Evaluator | None = None,
                 out_dir: Path | None = None):
        self.pieces: list[Piece] = list(pieces)
        accelerator = accelerator or Accelerator(cpu=str(model.device) == "cpu",
                                                 gradient_accumulation_steps=config.training.grad_accum)
        self.context = PieceContext(
            model=model, tokenizer=tokenizer, config=config, accelerator=accelerator, log=log, pieces=self.pieces,
            examples=self.examples, run_round=self.run_round, train_on=self.train_on, core=core, stream=stream,
            evaluator=evaluator,
            out_dir=out_dir if accelerator.is_main_process else None)
        self.loop = TrainingLoop(config.training, accelerator, log, progress=config.evaluation.progress)
        for piece in self.pieces:
            piece.attach(self.context)

    # ---- the context's fields, read and written through the Learner ------------------------------
    @property
    def model(self):
        return self.context.model

    @model.setter
    def model(self, model) -> None:
        self.context.model = model

    @property
    def tokenizer(self):
        return self.context.tokenizer

    @property
    def config(self) -> RunConfig:
        return self.context.config

    @property
    def accelerator(self) -> Accelerator:
        return self.context.accelerator

    @property
    def log(self) -> Callable[[dict], None]:
        return self.context.log

    @log.setter
    def log(self, log: Callable[[dict], None]) -> None:
        self.context.log = log

    @property
    def core(self) -> Domain | None:
        """The stream's core (replay) set."""
        return self.context.core

    @core.setter
    def core(self, core: Domain | None) -> None:
        self.context.core = core

    @property
    def stream(self) -> Stream | None:
        """The Stream being learned (self-test, diagnostics)."""
        return self.context.stream

    @stream.setter
    def stream(self, stream: Stream | None) -> None:
        self.context.stream = stream

    @property
    def evaluator(self) -> Evaluator | None:
        """The run's Evaluator, for pieces that score the model."""
        return self.context.evaluator

    @evaluator.setter
    def evaluator(self, evaluator: Evaluator | None) -> None:
        self.context.evaluator = evaluator

    @property
    def out_dir(self) -> Path | None:
        """The run's output folder (generated material is kept there); None off the main process."""
        return self.context.out_dir

    @out_dir.setter
    def out_dir(self, out_dir: Path | None) -> None:
        self.context.out_dir = out_dir

    @property
    def reference(self) -> bool:
        """True during a documents-only reference round (self_teaching_quality)."""
        return self.context.reference

    # ---- learning --------------------------------------------------------------------------------
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

    def train_on(self, examples: Sequence[Example], seed: int, name: str, steps: int) -> RoundStats:
        """At most `steps` optimizer steps on `examples` alone, every piece's loop hooks on (penalties, step
        checks); no before_round, after_round or review (the self-test's recovery)."""
        try:
            return self.loop.run(self.model, self.tokenizer, examples, self.param_groups(), self.pieces,
                                 seed=seed, domain=name, steps=steps, final_point=False)
        finally:
            self.model = self.accelerator.unwrap_model(self.model)

    def learn_reference(self, domain: Domain, seed: int, steps: int) -> RoundStats:
        """A reference round for self_teaching_quality: exactly `steps` optimizer steps on the domain's own
        material, the self-directed pieces generating nothing (`reference` is True); no after_round and no
        review: the caller restores the learner's state afterwards (lifelong/selfdirected/quality.py)."""
        self.context.reference = True
        try:
            for piece in self.pieces:
                piece.before_round(domain)
            examples = self.examples(domain)
            stats = self.loop.run(self.model, self.tokenizer, examples, self.param_groups(), self.pieces,
                                  seed=seed, domain=f"{domain.name} (reference)", steps=steps)
        finally:
            self.context.reference = False
            self.model = self.accelerator.unwrap_model(self.model)
        return stats

    def pieces_state(self) -> dict:
        return {piece.name: piece.state_dict() for piece in self.pieces}

    def load_pieces_state(self, state: dict) -> None:
        for piece in self.pieces:
            if piece.name in state:
                piece.load_state_dict(state[piece.name])
