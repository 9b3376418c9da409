"""The canary with each episode adapter of a `lifelong learn` state applied to every input (no routing).

    python bench/adapter_canary.py runs/sleep/merge-s0

Routing sends general questions to the base, so a routed learner's canary does not show what an adapter does
to them; a sleep folds the adapters into every input, so this is the harm a merge starts from (docs/sleep.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from lifelong.config import load_saved_config
    from lifelong.learn import ContinualLearner

    state = Path((argv or sys.argv[1:])[0])
    config = load_saved_config(state / "config.yaml")
    learner = ContinualLearner(state, config)
    fast = learner.piece("fast_adapters")
    model, evaluator, canary = learner.learner.model, learner.learner.evaluator, learner.stream.canary
    if fast is None or canary is None:
        sys.exit(f"{state}: needs a fast_adapters piece and a stream with a canary")
    scores = {}
    with model.disable_adapter():
        scores["base"] = evaluator.score_domain(model, canary, desc="canary").score
    for name in [*fast.adapters, None]:
        fast.activate([name] if name else list(fast.adapters))
        with fast.unrouted():
            scores[name or "all stacked"] = evaluator.score_domain(model, canary, desc="canary").score
    fast.activate(list(fast.adapters))
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
