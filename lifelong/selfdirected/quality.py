"""Self-teaching quality (DESIGN §3): did the self-generated material teach more than the documents?

For each domain, with `evaluation.self_teaching_quality: true`, the Experiment
1. snapshots the learner (weights, which parameters train, every piece's state, random states)
   before the round;
2. runs the real round (the self-directed pieces write and train on their material, S steps);
3. snapshots the result, restores the first snapshot, and runs a reference round of exactly S
   optimizer steps on the domain's own examples (documents and practice questions, through the
   same non-generating pieces: the same LoRA, replay, layer-wise rates), scores the domain, and
   restores the result of step 2, random states included, so the run goes on exactly as it
   would have without the measurement.

self_teaching_quality[j] = R[j][j] (after the self-taught round) / the reference score. Above 1:
the self-written material beat the documents at the same number of steps. The measurement
doubles training and holds two copies of the weights in CPU memory while it runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from lifelong.training import rng_state, set_rng_state


@dataclass
class Snapshot:
    weights: dict[str, torch.Tensor]
    trainable: dict[str, bool]
    pieces: dict
    rng: dict


def snapshot(learner) -> Snapshot:
    model = learner.accelerator.unwrap_model(learner.model)
    return Snapshot(weights={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                    trainable={name: p.requires_grad for name, p in model.named_parameters()},
                    pieces=copy.deepcopy(learner.pieces_state()), rng=rng_state())


def restore(learner, saved: Snapshot) -> None:
    model = learner.accelerator.unwrap_model(learner.model)
    model.load_state_dict(saved.weights)
    for name, param in model.named_parameters():
        if name in saved.trainable:
            param.requires_grad_(saved.trainable[name])
    learner.load_pieces_state(copy.deepcopy(saved.pieces))
    set_rng_state(saved.rng)


def reference_score(learner, evaluator, domain, seed: int, steps: int, before: Snapshot) -> float | None:
    """The in-domain score after `steps` steps on the domain's own material from `before`; the learner
    ends as it was when called."""
    if steps <= 0:
        return None
    after = snapshot(learner)
    try:
        restore(learner, before)
        learner.learn_reference(domain, seed=seed, steps=steps)
        model = learner.accelerator.unwrap_model(learner.model)
        return evaluator.score_domain(model, domain, desc=f"reference {domain.name}").score
    finally:
        restore(learner, after)
