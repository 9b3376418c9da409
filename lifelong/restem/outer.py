"""The ReSTEM outer loop of SEAL: write k candidate note sets per document, score each, keep the best,
fine-tune the writer on the kept ones, repeat for R rounds (Zweiger et al. 2025, §3; Singh et al. 2023).

Scoring goes through a `Scorer`: `evaluate_many(jobs)` takes (notes, quiz, seed) jobs and returns
one Reward each, in order; a job with no notes scores the student as it is (the baseline). The
in-process scorer is a CandidateEvaluator; the Ray scorer (lifelong/restem/fanout.py) sends the
same jobs to workers and returns the same rewards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from lifelong.config import RestemConfig
from lifelong.data.records import QAItem
from lifelong.restem.candidates import Reward, note_lines
from lifelong.restem.stats import DocumentOutcome, derive_seed, keep, ranking, summarize

Job = tuple[Sequence[str], Sequence[QAItem], int]


class Scorer(Protocol):
    def evaluate_many(self, jobs: Sequence[Job]) -> list[Reward]: ...


class NoteWriterLike(Protocol):
    def __call__(self, document: str, k: int, seed: int) -> list[str]: ...

    def train(self, pairs: Sequence[tuple[str, str]], seed: int): ...


@dataclass
class RoundResult:
    outcomes: list[DocumentOutcome]
    candidates: list[list[list[str]]]  # per document, per candidate: its note lines
    summary: dict

    def kept_notes(self) -> list[tuple[int, list[str]]]:
        """(document index, note lines) of every kept candidate."""
        return [(d, self.candidates[d][i]) for d, o in enumerate(self.outcomes) for i in o.kept]

    def record(self, documents: Sequence[str]) -> list[dict]:
        """What was written and how it scored, per document (for generated/<domain>.restem.json)."""
        return [{"document": documents[d], "baseline": asdict(o.baseline),
                 "candidates": [{"notes": notes, **asdict(reward), "kept": i in o.kept}
                                for i, (notes, reward) in enumerate(zip(self.candidates[d], o.rewards, strict=True))],
                 "repeats": [asdict(r) for r in o.repeats]} for d, o in enumerate(self.outcomes)]


def score_round(writer: NoteWriterLike, scorer: Scorer, documents: Sequence[str],
                quizzes: Sequence[Sequence[QAItem]], options: RestemConfig, seed: object) -> RoundResult:
    """One E-step: candidates for every document, scored in two fan-outs (all candidates and
    baselines, then the repeats of each document's best)."""
    written = [writer(doc, options.k, derive_seed(seed, d, "write")) for d, doc in enumerate(documents)]
    candidates = [[note_lines(text)[:options.max_notes] for text in texts] for texts in written]
    jobs: list[Job] = []
    for d, quiz in enumerate(quizzes):
        eval_seed = derive_seed(seed, d, "eval")
        jobs += [(notes, quiz, eval_seed) for notes in candidates[d]] + [((), quiz, eval_seed)]
    rewards = scorer.evaluate_many(jobs)
    per_doc = [rewards[d * (options.k + 1):(d + 1) * (options.k + 1)] for d in range(len(documents))]
    best = [ranking(r[:-1])[0] for r in per_doc]
    repeat_jobs = [(candidates[d][best[d]], quiz, derive_seed(seed, d, "repeat", j))
                   for d, quiz in enumerate(quizzes) for j in range(options.repeats)]
    repeats = scorer.evaluate_many(repeat_jobs)
    outcomes = []
    for d, scored in enumerate(per_doc):
        again = repeats[d * options.repeats:(d + 1) * options.repeats]
        baseline = scored[-1]
        kept = keep(scored[:-1], options.top_n, baseline if options.require_gain else None)
        outcomes.append(DocumentOutcome(tuple(scored[:-1]), tuple(kept), baseline, (scored[best[d]], *again)))
    return RoundResult(outcomes, candidates, summarize(outcomes))


def run_rounds(writer: NoteWriterLike, scorer: Scorer, documents: Sequence[str],
               quizzes: Sequence[Sequence[QAItem]], options: RestemConfig, seed: object,
               log: Callable[[dict], None], domain: str = "") -> list[RoundResult]:
    """R rounds of ReSTEM; each logs a `restem` event, then fine-tunes the writer on its kept notes.
    Returns every round; the last one's kept notes are the ones the learner studies."""
    results = []
    timing = getattr(scorer, "timing", None)
    for round_index in range(options.rounds):
        started = time.perf_counter()
        timing_before = timing.as_dict() if timing is not None else {}
        result = score_round(writer, scorer, documents, quizzes, options, (seed, domain, round_index))
        pairs = [(documents[d], "\n".join(lines)) for d, lines in result.kept_notes()]
        stats = writer.train(pairs, derive_seed(seed, domain, round_index, "writer"))
        losses = getattr(stats, "losses", None) or []
        event = {"event": "restem", "domain": domain, "round": round_index + 1, "k": options.k, **result.summary,
                 "writer_steps": getattr(stats, "steps", 0),
                 "writer_loss": round(float(sum(losses) / len(losses)), 5) if losses else None,
                 "seconds": round(time.perf_counter() - started, 2)}
        if timing is not None:  # this round's share of the scorer's running totals
            event["timing"] = {key: round(value - timing_before[key], 3) for key, value in timing.as_dict().items()}
        log(event)
        results.append(result)
    return results
