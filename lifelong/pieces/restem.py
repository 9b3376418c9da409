"""ReSTEM: the learner learns how to write study notes that work (SEAL's outer loop).

Before each round, for a seeded sample of the domain's documents (`documents_per_round`), the note
writer samples `k` candidate note sets per document; each candidate trains a fresh LoRA adapter on
a copy of the learner's current model for `candidate_steps` steps and is quizzed closed-book on the
document's questions (`quiz_split`, by default the practice questions, so the eval questions stay
unseen). The best `top_n` per document are kept and the writer is fine-tuned on them; this repeats
for `rounds` rounds, each logged as a `restem` event (mean and best candidate score, the spread
between candidates and between repeated evaluations of the same candidate). The last round's kept
notes join the domain's training examples (`add_notes`), and `writer` is the trained note writer
for pieces that write notes (study notes).

The writer is the teacher (`teacher` in config), by default a copy of the learner's model as it was
when attached (SEAL: the model writes its own self-edits), with its own LoRA adapter kept across
domains and saved in checkpoints.

Sources: Zweiger et al. 2025, "Self-Adapting Language Models" (SEAL: self-edits, ReSTEM, 5
candidates per passage, 2 rounds); Singh et al. 2023, "Beyond Human Data: Scaling Self-Training
for Problem-Solving with Language Models" (ReST-EM: sample, keep what the reward accepts, fine-tune).
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

from peft import PeftModel

from lifelong.config import RestemConfig
from lifelong.data.records import Document, Domain
from lifelong.evaluation.evaluator import Evaluator
from lifelong.files import write_json
from lifelong.models import load_model
from lifelong.pieces.base import Piece
from lifelong.restem.quiz import questions_by_document
from lifelong.restem.stats import derive_seed


def plain_copy(model):
    """A frozen copy of a model's current weights, with any PEFT adapter merged in."""
    model = copy.deepcopy(model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


class Restem(Piece):
    name = "restem"
    options: RestemConfig

    def __init__(self, options: RestemConfig | None = None):
        super().__init__(options or RestemConfig())
        self.writer = None  # a NoteWriter once attached
        self.kept_notes: list[str] = []
        self.history: list[dict] = []

    def attach(self, context) -> None:
        from lifelong.restem.writer import NoteWriter  # lazy: it trains through the loop, which imports the pieces

        super().attach(context)
        cfg = context.config
        if cfg.teacher:
            model, tokenizer = load_model(cfg.teacher, dtype=cfg.dtype, device=cfg.device, seed=cfg.seed)
        else:
            model, tokenizer = plain_copy(context.accelerator.unwrap_model(context.model)), context.tokenizer
        self.writer = NoteWriter(model, tokenizer, self.options, prompt=cfg.study_notes.prompt,
                                 name=cfg.teacher or cfg.model, accelerator=context.accelerator)

    @property
    def generator(self):
        """The trained writer as a lifelong.generation.Generator (the study-notes piece writes with it)."""
        return self.writer.generator

    # ---- the outer loop, before the round's examples are built ---------------------------------
    def before_round(self, domain: Domain) -> None:
        from lifelong.restem.fanout import make_scorer  # lazy: the loop imports the pieces
        from lifelong.restem.outer import run_rounds

        self.kept_notes = []
        if getattr(self.context, "reference", False):
            return  # the documents-only reference round behind self_teaching_quality
        documents, quizzes = self._study_set(domain)
        if not documents or not self.options.rounds:
            return
        context = self.context
        student = plain_copy(context.accelerator.unwrap_model(context.model))
        scorer = make_scorer(student, context.tokenizer, self._quiz_evaluator(), self.options,
                             progress=context.config.evaluation.progress, parallel=context.config.parallel)
        texts = [d.text for d in documents]
        try:
            rounds = run_rounds(self.writer, scorer, texts, quizzes, self.options, seed=context.config.seed,
                                log=self._log, domain=domain.name)
        finally:
            close = getattr(scorer, "close", None)
            if close:
                close()
        self.kept_notes = [line for _, lines in rounds[-1].kept_notes() for line in lines]
        self._write_record(domain, [result.record(texts) for result in rounds])

    def _write_record(self, domain: Domain, rounds: list) -> None:
        """Every round's candidates, rewards and kept notes, and who wrote them, beside the run's results."""
        out_dir = getattr(self.context, "out_dir", None)
        if out_dir:
            write_json(Path(out_dir) / "generated" / f"{domain.name}.restem.json",
                       {"writer": self.generator.name, "rounds": rounds})

    def examples(self, domain: Domain, examples: list) -> list:
        from lifelong.training import Example  # lazy: the loop imports the pieces

        if not self.options.add_notes:
            return examples
        return examples + [Example(text=line, source="notes") for line in self.kept_notes]

    def _study_set(self, domain: Domain) -> tuple[list[Document], list[list]]:
        """A seeded sample of the documents that have quiz questions, with their (capped) quizzes."""
        split = self.options.quiz_split
        items = domain.items if split == "all" else domain.questions(split)
        quizzes = questions_by_document(domain.documents, items)
        pairs = [(doc, quiz[:self.options.questions_per_document]) for doc, quiz in zip(domain.documents, quizzes,
                                                                                        strict=True) if quiz]
        cap = self.options.documents_per_round
        if cap is not None and len(pairs) > cap:
            chosen = sorted(random.Random(derive_seed(self.context.config.seed, domain.name)).sample(
                range(len(pairs)), cap))
            pairs = [pairs[i] for i in chosen]
        return [doc for doc, _ in pairs], [quiz for _, quiz in pairs]

    def _quiz_evaluator(self) -> Evaluator:
        context = self.context
        base = context.evaluator.config if context.evaluator is not None else context.config.evaluation
        return Evaluator(base.model_copy(update={"progress": False}), context.tokenizer, seed=context.config.seed)

    def _log(self, event: dict) -> None:
        self.history.append(event)
        self.context.log(event)

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"writer": self.writer.state_dict() if self.writer else {}, "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        if self.writer and state.get("writer"):
            self.writer.load_state_dict(state["writer"])
        self.history = list(state.get("history", []))

