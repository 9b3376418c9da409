"""ReSTEM candidate evaluation in process against SEAL's way, same candidates, in one process.

Ours (lifelong/restem/candidates.py): one model in memory with one LoRA adapter re-initialised from
the seed per candidate, a fresh optimizer, N steps on the notes, the quiz scored in one batched
teacher-forced pass. SEAL's way: per candidate, load the model from disk and attach a fresh adapter
(the same seeded init), the same N steps (the same `train_notes`), save the adapter and load model +
adapter back for serving, answer each quiz question by greedy generation of up to 32 tokens and
check the answer. The two ways alternate candidate by candidate after one untimed warm-up each.

The k candidates are note sets for one document of the example stream: k - 1 written by the note
writer (sampled, seeded) and the document's own sentences (so the ranking is not all ties). The
quiz is every question whose answer the document holds. Asserts both ways rank the candidates the
same (equal accuracies rank as ties), prints the time split, and the speed-up last.

    OMP_NUM_THREADS=1 python bench/candidate_eval.py                 # embedded model
    OMP_NUM_THREADS=1 python bench/candidate_eval.py --model tiny    # quick check
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict

from peft import PeftModel, get_peft_model

from lifelong.config import EvaluationConfig, RestemConfig
from lifelong.data.stream import load_stream
from lifelong.evaluation.evaluator import Evaluator
from lifelong.models import is_tiny_spec, load_model
from lifelong.pieces.restem import plain_copy
from lifelong.restem.candidates import CandidateEvaluator, candidate_lora, note_lines, reset_adapter, train_notes
from lifelong.restem.quiz import questions_by_document
from lifelong.restem.writer import NoteWriter

GENERATED_TOKENS = 32


def same_ranking(a: list[float], b: list[float]) -> bool:
    """Every pair of candidates is ordered the same way (or tied in both)."""
    def sign(x: float) -> int:
        return (x > 0) - (x < 0)
    return all(sign(a[i] - a[j]) == sign(b[i] - b[j]) for i in range(len(a)) for j in range(i + 1, len(a)))


def candidates_for(args, model, tokenizer, options: RestemConfig, document: str) -> list[list[str]]:
    writer = NoteWriter(plain_copy(model), tokenizer, options)
    written = [note_lines(text)[:options.max_notes] for text in writer(document, args.k - 1, seed=args.seed)]
    own = [s.strip() for s in re.split(r"(?<=[.!?])\s+", document) if s.strip()]
    return [*written, own]


class Ours:
    """One model in memory; each candidate: adapter reset, training, teacher-forced quiz."""

    def __init__(self, args, options, evaluation, timing):
        started = time.perf_counter()
        model, tokenizer = load_model(args.model, seed=args.seed, device=args.device)
        timing["load"] += time.perf_counter() - started
        self.scorer = CandidateEvaluator(model, tokenizer, Evaluator(evaluation, tokenizer), options)
        self.seed, self.timing = args.seed, timing

    def accuracy(self, notes, quiz) -> float:
        before = self.scorer.timing.as_dict()
        accuracy = self.scorer.evaluate(notes, quiz, self.seed).accuracy
        after = self.scorer.timing
        self.timing["reset"] += after.reset_s - before["reset_s"]
        self.timing["train"] += after.train_s - before["train_s"]
        self.timing["quiz"] += after.quiz_s - before["quiz_s"]
        return accuracy


class SealWay:
    """Each candidate: load the model, attach a fresh adapter, train, save it, load both back, generate answers."""

    def __init__(self, args, options, evaluation, timing):
        self.args, self.options, self.timing = args, options, timing
        self.evaluation = evaluation.model_copy(update={"max_new_tokens": GENERATED_TOKENS})
        self.evaluator = None

    def accuracy(self, notes, quiz) -> float:
        args, options, timing = self.args, self.options, self.timing
        started = time.perf_counter()
        model, tokenizer = load_model(args.model, seed=args.seed, device=args.device)
        student = get_peft_model(model, candidate_lora(options))
        reset_adapter(student, args.seed)
        attached = time.perf_counter()
        train_notes(student, tokenizer, notes, options, args.seed)
        trained = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            student.save_pretrained(folder)
            del student, model
            base, tokenizer = load_model(args.model, seed=args.seed, device=args.device)
            served = PeftModel.from_pretrained(base, folder).eval()
        loaded = time.perf_counter()
        if self.evaluator is None:  # built once: its line-ending token table takes a pass over the vocabulary
            self.evaluator = Evaluator(self.evaluation, tokenizer)
        verdicts = self.evaluator.generated_verdicts(served, quiz)
        timing["load"] += attached - started
        timing["train"] += trained - attached
        timing["serve"] += loaded - trained
        timing["quiz"] += time.perf_counter() - loaded
        return sum(verdicts) / len(verdicts)


def report(name: str, timing: dict, k: int) -> float:
    total = sum(timing.values())
    parts = ", ".join(f"{part} {seconds:.1f} s ({seconds / total:.0%})" for part, seconds in timing.items())
    print(f"{name}: {total:.1f} s for {k} candidates ({total / k:.1f} s each): {parts}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--stream", default="example")
    parser.add_argument("--domain", type=int, default=0, help="index of the domain in the stream")
    parser.add_argument("--document", type=int, default=0, help="index of the document in the domain")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--steps", type=int, default=RestemConfig().candidate_steps,
                        help="optimizer steps per candidate")
    parser.add_argument("--lr", type=float, default=RestemConfig().candidate_lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    spec, saved = args.model, tempfile.TemporaryDirectory()
    if is_tiny_spec(spec):  # saved once, so SEAL's way really loads it from disk, as any real model
        model, tokenizer = load_model(spec, seed=args.seed)
        model.save_pretrained(saved.name)
        tokenizer.save_pretrained(saved.name)
        args.model = saved.name

    domain = load_stream(args.stream).domains[args.domain]
    document = domain.documents[args.document].text
    quiz = questions_by_document(domain.documents, domain.items)[args.document]
    options = RestemConfig(k=args.k, candidate_steps=args.steps, candidate_lr=args.lr)
    evaluation = EvaluationConfig(progress=False)
    model, tokenizer = load_model(args.model, seed=args.seed, device=args.device)
    candidates = candidates_for(args, model, tokenizer, options, document)
    del model
    print(f"model {spec} on {args.device}; document {args.domain}/{args.document} of {args.stream}; "
          f"{len(quiz)} questions; {args.k} candidates of {[len(c) for c in candidates]} note lines; "
          f"{args.steps} steps each")

    timings = {"ours": defaultdict(float), "seal": defaultdict(float)}
    ours, seal = Ours(args, options, evaluation, timings["ours"]), SealWay(args, options, evaluation, timings["seal"])
    ours.accuracy(candidates[0], quiz)  # warm-up, not timed: first kernels, allocator, caches
    seal.accuracy(candidates[0], quiz)
    for way, timing in timings.items():
        for part in timing:
            timing[part] = timing[part] if (way, part) == ("ours", "load") else 0.0
    ours_acc, seal_acc = [], []
    for notes in candidates:  # alternating, so load on the shared machine hits both ways alike
        ours_acc.append(ours.accuracy(notes, quiz))
        seal_acc.append(seal.accuracy(notes, quiz))
    print(f"accuracies, ours (teacher-forced): {ours_acc}")
    print(f"accuracies, SEAL's way (generated): {seal_acc}")
    assert same_ranking(ours_acc, seal_acc), "the two ways rank the candidates differently"
    print("same ranking: yes")
    ours_total = report("ours (one model, adapter reset, teacher-forced quiz)", timings["ours"], args.k)
    seal_total = report("SEAL's way (reload, save/load adapter, generated answers)", timings["seal"], args.k)
    print(f"speed-up: {seal_total / ours_total:.2f}x")


if __name__ == "__main__":
    main()
