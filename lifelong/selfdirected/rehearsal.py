"""Self-synthesized rehearsal: the model writes replay text for the domains it learned earlier.

At the start of each round (replay's `before_round`, with `replay.synthetic: N`), for every
earlier domain the teacher is shown a few of that domain's texts kept in the replay buffer (a
seeded sample of `replay.synthetic_examples`) and asked for N more (`replay.synthetic_prompt`,
sampled). The texts pass the filters (length, on topic with the shown texts, ROUGE-L dedup
among themselves and against the shown texts) and become replay examples (`source:
"rehearsal"`), replacing the previous round's. They are drawn beside the core set and the
buffer; they never enter the buffer. With an empty buffer (buffer_size 0) the prompt shows only
the domain's name.

Source: Huang et al. 2024, "Mitigating Catastrophic Forgetting in Large Language Models with
Self-Synthesized Rehearsal" (SSR: the model generates rehearsal instances from a few
demonstrations of earlier tasks).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

from lifelong.files import write_json
from lifelong.generation import Generated, derive_seed, teacher_generator
from lifelong.selfdirected import filters

PROMPT_NAME = "rehearsal"


def rehearsal_prompt(template: str, domain: str, shown: Sequence[str]) -> str:
    examples = "\n".join(f"- {text}" for text in shown) or f"(notes about {domain})"
    return template.format(examples=examples, domain=domain)


def write_rehearsal(replay, current: str) -> list[tuple[str, object]]:
    """(domain, Example) rehearsal pairs for every domain seen before `current`; logs one self_teach event."""
    from lifelong.training import Example  # lazy: the loop imports the pieces

    context, options = replay.context, replay.options
    started = time.perf_counter()
    earlier = [d for d in replay.seen_per_domain if d != current]
    if not earlier or options.synthetic <= 0:
        return []
    out_dir = getattr(context, "out_dir", None)
    path = Path(out_dir) / "generated" / f"{current}.replay.json" if out_dir else None
    if path is not None and path.is_file():  # a round run again trains on the same rehearsal
        data = json.loads(path.read_text(encoding="utf-8"))
        context.log({**data["event"], "cached": True})
        return [(item["domain"], Example(text=item["text"], source="rehearsal")) for item in data["kept"]]
    seed = context.config.seed
    prompts, shown_by_domain = [], []
    for domain in earlier:
        texts = [e.text for d, e in replay.buffer if d == domain]
        rng = random.Random(derive_seed(seed, "rehearsal", current, domain))
        shown = rng.sample(texts, min(options.synthetic_examples, len(texts)))
        shown_by_domain.append(shown)
        prompts.append(rehearsal_prompt(options.synthetic_prompt, domain, shown))
    generated = teacher_generator(context).generate(prompts, PROMPT_NAME, n=options.synthetic,
                                                   sample=options.synthetic > 1 or None,
                                                   sources=["\n".join(shown) for shown in shown_by_domain])
    pairs, kept_texts, kept_records = [], [], []
    totals = {"generated": 0, "kept": 0, "dropped_duplicates": 0, "dropped_length": 0, "dropped_overlap": 0}
    for domain, shown, records in zip(earlier, shown_by_domain, generated, strict=True):
        records: list[Generated]
        report = filters.filter_texts([r.text for r in records], [r.source for r in records],
                                      context.config.self_directed, real=shown)
        totals["generated"] += len(records)
        for key, value in report.counts().items():
            totals[key] += value
        for i in report.kept:
            pairs.append((domain, Example(text=records[i].text, source="rehearsal")))
            kept_texts.append(records[i].text)
            kept_records.append({"domain": domain, **records[i].to_dict()})
    config = context.config
    event = {"event": "self_teach", "domain": current, "piece": "replay", **totals, "gap_rate": None,
             **filters.diversity(kept_texts), "teacher": config.teacher or config.model,
             "rehearsed": earlier, "seconds": round(time.perf_counter() - started, 2)}
    context.log(event)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        everything = [{"domain": d, **r.to_dict()} for d, rs in zip(earlier, generated, strict=True) for r in rs]
        write_json(path, {"event": event, "kept": kept_records, "records": everything})
    return pairs
