"""Which routing thresholds send every question where it belongs, judged on practice items only.

    python bench/routing_margin.py RUN_FOLDER [--stream S]

Reads a finished run of a routed `fast_adapters` condition (preset e or f): its router (the texts of
every episode and the general background, from the run's last checkpoint). For each threshold of
a grid it prints the share of
- the rule-made practice items of each domain's documents routed to that domain's adapter, and the
  general core's questions routed to the base: the two a threshold may be chosen on;
- the stream's eval questions routed to their domain's adapter, and the canary's to the base: shown
  beside them, never used to choose (issue 22: thresholds were once tuned on test questions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lifelong.config import load_saved_config
from lifelong.data import general
from lifelong.data.stream import load_stream
from lifelong.models import load_tokenizer
from lifelong.pieces.fast_adapters import BASE, TfidfRouter, common_word_test
from lifelong.pieces.practice import make_practice

GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def router_of(run: Path, tokenizer) -> tuple[TfidfRouter, dict[str, str]]:
    """The run's router as its last checkpoint saved it, and its adapter -> domain map."""
    checkpoint = max((run / "checkpoints").glob("row-*"), key=lambda p: int(p.name.split("-")[1]))
    state = torch.load(checkpoint / "pieces.pt", weights_only=False)["fast_adapters"]
    router = TfidfRouter(common_word_test(tokenizer))
    router.load_state_dict(state["router"])
    return router, state["domains"]


def share(router: TfidfRouter, questions: list[str], target: str, threshold: float, common: float) -> float:
    return sum(router.route(q, threshold, common) == target for q in questions) / max(1, len(questions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--stream", default=None, help="default: the run's stream")
    args = parser.parse_args()
    config = load_saved_config(args.run / "config.yaml")
    tokenizer = load_tokenizer(config.model)
    router, domains = router_of(args.run, tokenizer)
    adapter = {domain: name for name, domain in domains.items()}
    stream = load_stream(args.stream or config.stream)
    general_set = general.load_general(progress=False)
    core = stream.core or general_set.core
    # a documents-only run's canary is drawn from the general candidates: all of them are asked here
    canary = (stream.canary or general_set.candidates).eval_items
    practice = {d.name: [q.question for doc in d.documents for q in make_practice(doc.text, config.practice).questions]
                for d in stream.domains}
    common = config.fast_adapters.route_threshold_common
    print(f"run {args.run} (route_threshold {config.fast_adapters.route_threshold}, common {common}); "
          f"practice items {sum(map(len, practice.values()))}, core questions {len(core.items)}")
    print("| threshold | practice -> own adapter | core -> base | eval -> own adapter (not used) "
          "| canary (or general candidates) -> base (not used) |")
    print("|---|---|---|---|---|")
    for threshold in GRID:
        own = [share(router, practice[d.name], adapter[d.name], threshold, common) for d in stream.domains]
        evals = [share(router, [q.question for q in d.eval_items], adapter[d.name], threshold, common)
                 for d in stream.domains]
        core_base = share(router, [q.question for q in core.items], BASE, threshold, common)
        canary_base = share(router, [q.question for q in canary], BASE, threshold, common)
        print(f"| {threshold} | {' / '.join(f'{x:.2f}' for x in own)} | {core_base:.2f} | "
              f"{' / '.join(f'{x:.2f}' for x in evals)} | {canary_base:.2f} |")


if __name__ == "__main__":
    main()
