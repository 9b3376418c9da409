"""Replay: every batch mixes in old examples from a core set and a buffer of earlier domains.

The old pool is the stream's core set (its documents, and its split=train questions as
prompt/answer examples, exactly as a domain's own are made) plus a buffer of earlier domains'
training examples. Each batch holds round(ratio * batch_size) examples drawn from that pool (at
least one when ratio > 0 and the pool is not empty; at least one new example too, so at batch
size 1 a batch holds two), the rest new. The pool is walked in a shuffled cycle, so every old
example comes back before any repeats.

After each round the round's examples enter the buffer (capacity `buffer_size`) under a
storage policy:
- `reservoir`: reservoir sampling (Vitter 1985, algorithm R): every example seen so far is in
  the buffer with the same probability capacity / seen;
- `balanced`: an equal share per domain (class-balanced reservoir sampling, Chrysakis & Moens
  2020): while full, a new example evicts a random one of the largest domain, or, when its own
  domain is the largest, replaces one of its own with reservoir probability.

Put `replay` after any piece that creates the round's examples: it keeps the list its
`examples` hook receives. Measured by hand (DESIGN §5): 2 of every 8 batch examples from 40
general question/answer lines plus earlier domains kept a general canary at 0.77-0.78 where
plain LoRA fell to 0.47. With `core_share` set, that share of the old examples comes from the core set
and the rest from the buffer, whatever their sizes (a 1,184-example general core would otherwise
crowd out a 78-example buffer).

With `synthetic: N` the model also writes N rehearsal texts per earlier domain at each round's
start (self-synthesized rehearsal, lifelong/selfdirected/rehearsal.py), replayed beside the
buffer until the next round's replace them.

Source: experience replay for continual learning, Rolnick et al. 2019, "Experience Replay for
Continual Learning" and Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning"
(a small buffer mixed into every batch); Vitter 1985, "Random sampling with a reservoir";
Chrysakis & Moens 2020, "Online Continual Learning from Imbalanced Data".
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict

from lifelong.config import ReplayConfig
from lifelong.examples import plain_examples
from lifelong.pieces.base import Piece


class Replay(Piece):
    """Composes every batch from new examples plus a share drawn from core set + buffer."""

    name = "replay"
    options: ReplayConfig

    def __init__(self, options: ReplayConfig | None = None):
        super().__init__(options or ReplayConfig())
        self.buffer: list[tuple[str, object]] = []  # (domain name, Example)
        self.seen = 0
        self.seen_per_domain: Counter[str] = Counter()
        self.rng = random.Random("replay")
        self._examples: list = []
        self._core: tuple[object, list] | None = None  # (core domain, its examples)
        self.synthetic: list[tuple[str, object]] = []  # (domain, Example): self-synthesized rehearsal

    def attach(self, context) -> None:
        super().attach(context)
        self.rng = random.Random(f"replay-{context.config.seed}")

    # ---- the old pool -------------------------------------------------------------------------
    def core_examples(self) -> list:
        core = getattr(self.context, "core", None) if self.context is not None else None
        if core is None or not self.options.core:
            return []
        if self._core is None or self._core[0] is not core:
            self._core = (core, plain_examples(core, self.context.config.evaluation.prompt, with_questions=True))
        return self._core[1]

    def pool(self) -> list:
        return [*self.core_examples(), *(example for _, example in self.buffer),
                *(example for _, example in self.synthetic)]

    def old_per_batch(self, batch_size: int) -> int:
        if self.options.ratio <= 0:
            return 0
        return max(1, round(self.options.ratio * batch_size))

    # ---- hooks ----------------------------------------------------------------------------------
    def before_round(self, domain) -> None:
        if self.options.synthetic and not getattr(self.context, "reference", False):
            from lifelong.selfdirected.rehearsal import write_rehearsal  # lazy: it imports the generator

            self.synthetic = write_rehearsal(self, domain.name)

    def examples(self, domain, examples):
        self._examples = examples  # kept as received; they enter the buffer after the round
        return examples

    def batches(self, examples, batch_size, rng):
        pool = self.pool()
        n_old = self.old_per_batch(batch_size)
        if not pool or n_old == 0:
            return None
        n_new = max(1, batch_size - n_old)
        from lifelong.training import epoch_order  # lazy: the loop imports the pieces

        grouped = self.context is not None and self.context.config.training.group_by_length
        new = epoch_order(examples, n_new, rng, grouped)
        draw = self._drawer(rng)
        new_parts = [new[i:i + n_new] for i in range(0, len(new), n_new)]
        old_parts = [[draw() for _ in range(n_old)] for _ in new_parts]
        if grouped:
            old_parts = matched_by_length(new_parts, old_parts)
        return [fresh + old for fresh, old in zip(new_parts, old_parts, strict=True)]

    def _drawer(self, rng):
        """Draws one old example: from the whole pool in a shuffled cycle; with `core_share`, from the core
        with that probability and else from the rest (buffer and rehearsal), each in its own cycle."""
        core = self.core_examples()
        rest = [*(e for _, e in self.buffer), *(e for _, e in self.synthetic)]
        share = self.options.core_share
        pools = [self.pool()] if share is None or not core or not rest else [core, rest]
        cycles: list[list] = [[] for _ in pools]

        def from_pool(index: int):
            if not cycles[index]:
                cycles[index].extend(pools[index])
                rng.shuffle(cycles[index])
            return cycles[index].pop()

        if len(pools) == 1:
            return lambda: from_pool(0)
        return lambda: from_pool(0 if rng.random() < share else 1)

    def after_round(self, domain) -> None:
        for example in self._examples:
            self.add(domain.name, example)
        self._examples = []

    # ---- storage policies -----------------------------------------------------------------------
    def add(self, domain: str, example) -> None:
        self.seen += 1
        self.seen_per_domain[domain] += 1
        capacity = self.options.buffer_size
        if capacity == 0:
            return
        if len(self.buffer) < capacity:
            self.buffer.append((domain, example))
        elif self.options.policy == "reservoir":
            slot = self.rng.randrange(self.seen)
            if slot < capacity:
                self.buffer[slot] = (domain, example)
        else:
            self._add_balanced(domain, example)

    def _add_balanced(self, domain: str, example) -> None:
        counts = Counter(d for d, _ in self.buffer)
        largest = max(counts.values())
        if counts[domain] < largest:
            victim = self.rng.choice(sorted(d for d, c in counts.items() if c == largest))
        else:
            if self.rng.random() >= counts[domain] / self.seen_per_domain[domain]:
                return
            victim = domain
        slot = self.rng.choice([i for i, (d, _) in enumerate(self.buffer) if d == victim])
        self.buffer[slot] = (domain, example)

    # ---- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"buffer": [{"domain": d, **asdict(e)} for d, e in self.buffer], "seen": self.seen,
                "seen_per_domain": dict(self.seen_per_domain), "rng": [version, list(internal), gauss],
                "synthetic": [{"domain": d, **asdict(e)} for d, e in self.synthetic]}

    def load_state_dict(self, state: dict) -> None:
        from lifelong.training import Example  # lazy: the loop imports the pieces

        self.buffer = [(item["domain"], Example(**{k: v for k, v in item.items() if k != "domain"}))
                       for item in state.get("buffer", [])]
        self.synthetic = [(item["domain"], Example(**{k: v for k, v in item.items() if k != "domain"}))
                          for item in state.get("synthetic", [])]
        self.seen = int(state.get("seen", 0))
        self.seen_per_domain = Counter(state.get("seen_per_domain", {}))
        if "rng" in state:
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))


def matched_by_length(new_parts: list[list], old_parts: list[list]) -> list[list]:
    """The same old examples, dealt so that the longest go to the batches whose new examples are longest.

    Under group_by_length a batch of short questions would otherwise pad to a long replayed document.
    The epoch's old examples and each batch's count of them are unchanged; only who sits with whom.
    """
    drawn = sorted((example for part in old_parts for example in part), key=lambda example: example.length)
    by_width = sorted(range(len(new_parts)), key=lambda i: max(example.length for example in new_parts[i]))
    dealt: list[list] = [[] for _ in new_parts]
    for i in by_width:
        dealt[i], drawn = drawn[:len(old_parts[i])], drawn[len(old_parts[i]):]
    return dealt
