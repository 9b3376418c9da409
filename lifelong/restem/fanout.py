"""Where candidates are scored: in this process (default), or on Ray workers (`restem.workers` > 1).

Every job is independent and seeded (the adapter is re-initialised from the job's seed, the loop
seeds everything from it), so a worker returns exactly the reward this process would: the Ray path
gives the serial path's results. The jobs are cut into one contiguous slice per worker; each task
carries the student and builds its CandidateEvaluator once for its slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lifelong.config import EvaluationConfig, ParallelConfig, RestemConfig
from lifelong.evaluation.evaluator import Evaluator
from lifelong.restem.candidates import CandidateEvaluator, Reward


def make_scorer(student, tokenizer, evaluator: Evaluator, options: RestemConfig, progress: bool = False,
                parallel: ParallelConfig | None = None):
    """The in-process CandidateEvaluator, or a RayScorer when more than one worker is configured."""
    if options.workers > 1:
        return RayScorer(student, tokenizer, evaluator.config, options, parallel or ParallelConfig())
    return CandidateEvaluator(student, tokenizer, evaluator, options, progress=progress)


def _slices(count: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, stop) ranges covering range(count), sizes differing by at most one."""
    parts = max(1, min(parts, count))
    bounds = [count * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def score_slice(task: tuple[dict, Sequence]) -> list[Reward]:
    """Runs on a worker: build the student's evaluator from the payload, score the jobs in order."""
    payload, jobs = task
    torch.set_num_threads(payload["threads"])  # the parent's, so float sums run in the same order
    evaluator = Evaluator(payload["evaluation"], payload["tokenizer"])
    scorer = CandidateEvaluator(payload["student"], payload["tokenizer"], evaluator, payload["options"])
    return scorer.evaluate_many(jobs)


class RayScorer:
    """Scores jobs on Ray workers through lifelong.parallel, in the order given."""

    def __init__(self, student, tokenizer, evaluation: EvaluationConfig, options: RestemConfig,
                 parallel: ParallelConfig):
        self.options = options
        self.parallel = parallel
        self.payload = {"student": student, "tokenizer": tokenizer, "options": options,
                        "threads": torch.get_num_threads(),
                        "evaluation": evaluation.model_copy(update={"progress": False})}

    def evaluate_many(self, jobs: Sequence) -> list[Reward]:
        from lifelong.parallel import map_tasks

        slices = _slices(len(jobs), self.options.workers)
        chunks = [list(jobs[start:stop]) for start, stop in slices]
        # One slice per worker, each with the student: a worker builds it once and scores its whole slice.
        tasks = [(self.payload, chunk) for chunk in chunks]
        results = map_tasks(score_slice, tasks, workers=self.options.workers, address=self.parallel.address,
                            gpus_per_task=self.parallel.gpus_per_task)
        return [reward for chunk in results for reward in chunk]
