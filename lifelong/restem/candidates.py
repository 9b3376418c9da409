"""In-process evaluation of candidate study notes: the inner loop of ReSTEM (SEAL, Zweiger et al. 2025).

SEAL scores a candidate note set by loading the model, training a fresh LoRA adapter on the notes,
saving it, serving it and answering the document's questions by generation. Here one student
model stays in memory with one LoRA adapter: before each candidate the adapter is re-initialised
from the evaluation seed (A as PEFT draws it, B = 0, so the model starts as the base), a fresh
optimizer trains it for `candidate_steps` steps (`train_notes`: the learner's loop's math on the
same tokenisation and collate, without its per-round machinery), and the quiz is scored in one
batched teacher-forced pass (Evaluator.answer_likelihoods). The base weights are frozen and never
change; nothing is reloaded or written to disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from tqdm.auto import tqdm

from lifelong.config import RestemConfig
from lifelong.data.records import QAItem
from lifelong.evaluation.evaluator import Evaluator
from lifelong.restem.stats import Reward
from lifelong.training import Example, collate, seed_everything, tokenize_examples

ADAPTER = "default"


@dataclass
class Timing:
    """Seconds spent per part of candidate evaluation, summed over candidates."""

    reset_s: float = 0.0
    train_s: float = 0.0
    quiz_s: float = 0.0
    candidates: int = 0

    def as_dict(self) -> dict:
        return {"reset_s": round(self.reset_s, 3), "train_s": round(self.train_s, 3),
                "quiz_s": round(self.quiz_s, 3), "candidates": self.candidates}


def note_lines(notes: str) -> list[str]:
    """A note set's training examples: its non-empty lines, without list markers ("1.", "-", "*")."""
    lines = []
    for line in notes.splitlines():
        text = line.strip().lstrip("-*•").strip()
        head, dot, rest = text.partition(".")
        if dot and head.isdigit() and rest[:1] in ("", " "):  # "1. fact", not "1.5 litres"
            text = rest.strip()
        if text:
            lines.append(text)
    return lines


def candidate_lora(options: RestemConfig) -> LoraConfig:
    return LoraConfig(r=options.candidate_r, lora_alpha=options.candidate_alpha, lora_dropout=0.0,
                      target_modules=options.target_modules, task_type="CAUSAL_LM")


def reset_adapter(model: torch.nn.Module, seed: int, adapter: str = ADAPTER) -> None:
    """Re-initialise every LoRA layer of `adapter` as PEFT does (A: kaiming uniform, B: zero), drawn from `seed`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, LoraLayer) and adapter in module.lora_A:
                module.reset_lora_parameters(adapter, init_lora_weights=True)


def quiz_reward(evaluator: Evaluator, model, quiz: Sequence[QAItem]) -> Reward:
    if not quiz:
        return Reward(0.0, -math.inf)
    scored = evaluator.answer_likelihoods(model, quiz, desc="restem quiz")
    return Reward(accuracy=sum(right for right, _ in scored) / len(scored),
                  likelihood=sum(mean for _, mean in scored) / len(scored))


def train_notes(model: torch.nn.Module, tokenizer, notes: Sequence[str], options: RestemConfig, seed: int) -> int:
    """`candidate_steps` AdamW steps on the adapter, each on all the note lines in one batch; returns the steps.

    The learner's TrainingLoop math (the same tokenisation and collate, labels on every note token, AdamW
    without weight decay at a constant LR, gradients clipped to norm 1) without its per-round machinery:
    Accelerate's prepare and free_memory (a full gc.collect, 1.5 s here) would cost more than a candidate's
    few steps. A step whose loss is not finite ends the training (the reward then shows it).
    """
    examples = [Example(text=line, source="notes") for line in notes[:options.max_notes]]
    features = tokenize_examples(tokenizer, examples, options.candidate_max_length)
    if not features:
        return 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = {key: value.to(model.device) for key, value in collate(features, pad).items()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.candidate_lr, weight_decay=0.0)
    seed_everything(seed)
    model.train()
    steps = 0
    for _ in range(options.candidate_steps):
        loss = model(**batch).loss
        if not torch.isfinite(loss.detach()):
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
    model.eval()
    return steps


class CandidateEvaluator:
    """One student model with one LoRA adapter, reset between candidates; `evaluate` trains and quizzes."""

    def __init__(self, base_model: torch.nn.Module, tokenizer, evaluator: Evaluator, options: RestemConfig,
                 progress: bool = False):
        self.options = options
        self.progress = progress
        self.tokenizer = tokenizer
        self.evaluator = evaluator
        self.model = get_peft_model(base_model, candidate_lora(options))
        self.timing = Timing()

    def evaluate(self, notes: Sequence[str], quiz: Sequence[QAItem], seed: int) -> Reward:
        """Fresh adapter from `seed`, `candidate_steps` steps on the notes (lines), then the closed-book quiz."""
        started = time.perf_counter()
        reset_adapter(self.model, seed)
        trained = time.perf_counter()
        train_notes(self.model, self.tokenizer, notes, self.options, seed)
        quizzed = time.perf_counter()
        reward = quiz_reward(self.evaluator, self.model, quiz)
        done = time.perf_counter()
        self.timing.reset_s += trained - started
        self.timing.train_s += quizzed - trained
        self.timing.quiz_s += done - quizzed
        self.timing.candidates += 1
        return reward

    def evaluate_many(self, jobs: Sequence[tuple[Sequence[str], Sequence[QAItem], int]]) -> list[Reward]:
        """(notes, quiz, seed) jobs in order; a job without notes scores the untrained student (the baseline)."""
        bar = tqdm(jobs, desc="restem candidates", disable=not self.progress, leave=False)
        return [self.evaluate(notes, quiz, seed) for notes, quiz, seed in bar]
