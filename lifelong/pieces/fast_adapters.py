"""The fast learning system: one LoRA adapter per episode, trained at a high learning rate.

Every learning round (an episode: a domain of the stream, or one `lifelong learn` call) adds a new
named PEFT LoRA adapter `episode-<n>` and trains only that adapter; the base weights and earlier
episodes' adapters stay frozen, so new material is usable at once and cannot overwrite what the
base or other episodes hold. The adapters live side by side in one PeftModel until the slow system
(`consolidation`, "sleep") distils them into the base weights and drops them.

At inference (`inference`):
- `route` (default): each input row uses the adapter of the episode whose text it is most like
  (TF-IDF cosine of the row's last prompt block against the episode's documents and practice
  questions, over its distinctive words, those the tokenizer cannot write as one token, at least
  `route_threshold`; a row of common words only needs `route_threshold_common`), or no adapter at all;
  the core set, as general text, routes to no adapter. General questions (the canary)
  therefore run on the base weights, untouched by any episode. Rows of one batch may use different
  adapters (PEFT's mixed-batch `adapter_names`). The router sees the tokens of each forward call: when
  a caller reuses a cached shared prefix (the evaluator's few-shot examples), that prefix was run on
  the base and the rest of the row on the routed adapter.
- `stack`: every episode adapter is active at once (their updates add up); simple, but episodes
  interfere and general questions see every adapter.

Routing by similarity to the stored episode is how complementary-learning-systems models reach the
fast (hippocampal) store: pattern completion from a cue; a lexical TF-IDF cue is used because the
episodes here are named facts, where rare shared words are the signal.

Source: McClelland, McNaughton & O'Reilly 1995, "Why there are complementary learning systems in
the hippocampus and neocortex"; Kumaran, Hassabis & McClelland 2016 (CLS updated); per-task LoRA
experts with a router as in Wang et al. 2023 (O-LoRA) and Huang et al. 2023 (LoraHub); LoRA: Hu et
al. 2021; TF-IDF: Sparck Jones 1972, Salton & Buckley 1988 (sublinear tf).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from lifelong.config import FastAdaptersConfig
from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "he", "her", "his", "how",
    "in", "is", "it", "its", "of", "on", "or", "she", "that", "the", "their", "they", "this", "to", "was",
    "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "you", "your", "do",
    "does", "did", "can", "not", "no", "yes", "question", "answer"
])


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


def common_word_test(tokenizer) -> Callable[[str], bool]:
    """The router's `is_common` for a tokenizer: a word it writes as one token is a frequent one."""

    @lru_cache(maxsize=65536)
    def is_common(word: str) -> bool:
        return len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1

    return is_common


class TfidfRouter:
    """Picks, for a text, the episode whose stored text is most like it (cosine of TF-IDF vectors).

    Two tiers: when the text holds distinctive words (`is_common` says no: for a language model's
    tokenizer, a word it cannot write as one token, so names and jargon), only distinctive words are
    compared, at `threshold`; a text made only of common words ("What color is snow?") must match an
    episode much more closely (`common_threshold`) to leave the base.
    """

    def __init__(self, is_common: Callable[[str], bool] = lambda word: False) -> None:
        self.episodes: dict[str, list[str]] = {}  # adapter name -> its texts
        self.is_common = is_common
        self._index: dict[bool, tuple] = {}  # distinctive-only? -> (idf, vectors, unseen weight)

    def add(self, name: str, texts: list[str]) -> None:
        self.episodes[name] = list(texts)
        self._index = {}

    def set_background(self, texts: list[str]) -> None:
        """General text (the core set) as a pseudo-episode that routes to the base: a question more like it
        than like any episode is general knowledge, and words common in it stop being distinctive."""
        if texts:
            self.add(BASE, texts)
        else:
            self.remove(BASE)

    def remove(self, name: str) -> None:
        self.episodes.pop(name, None)
        self._index = {}

    def terms(self, text: str, distinctive: bool) -> list[str]:
        words = terms(text)
        return [w for w in words if not self.is_common(w)] if distinctive else words

    def _built(self, distinctive: bool):
        if distinctive not in self._index:
            docs = {name: [Counter(self.terms(t, distinctive)) for t in texts] for name, texts in self.episodes.items()}
            frequency = Counter(term for counts in docs.values() for c in counts for term in c)
            n = sum(len(counts) for counts in docs.values()) or 1
            idf = {term: math.log((1 + n) / (1 + df)) + 1 for term, df in frequency.items()}
            vectors = {name: [self._vector(c, idf) for c in counts] for name, counts in docs.items()}
            self._index[distinctive] = idf, vectors, math.log(1 + n) + 1
        return self._index[distinctive]

    @staticmethod
    def _vector(counts: Counter, idf: dict[str, float], unseen: float = 0.0) -> dict[str, float]:
        """Unit TF-IDF vector; a term no episode holds weighs `unseen` (the rarest possible) in the norm."""
        vector = {t: (1 + math.log(c)) * idf.get(t, unseen) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def similarities(self, text: str, distinctive: bool = False) -> dict[str, float]:
        """Each episode's best cosine between `text` and one of its texts.

        Words of `text` that no episode holds count as the rarest words: a question about something
        else that shares one word with an episode stays far from it.
        """
        idf, vectors, unseen = self._built(distinctive)
        query = self._vector(Counter(self.terms(text, distinctive)), idf, unseen=unseen)
        return {name: max((sum(w * doc.get(t, 0.0) for t, w in query.items()) for doc in docs), default=0.0)
                for name, docs in vectors.items()}

    def route(self, text: str, threshold: float, common_threshold: float = 0.0) -> str:
        """The most similar episode, or BASE when none is close enough or the background is closer."""
        distinctive = bool(self.terms(text, distinctive=True))
        scores = self.similarities(text, distinctive)
        best = max(scores, key=scores.get, default=None)
        least = threshold if distinctive else max(threshold, common_threshold)
        return best if best is not None and best != BASE and scores[best] >= least else BASE

    def state_dict(self) -> dict:
        return {"episodes": dict(self.episodes)}  # the background too: `eval --checkpoint` routes the same

    def load_state_dict(self, state: dict) -> None:
        self.episodes = {name: list(texts) for name, texts in state.get("episodes", {}).items()}
        self._index = {}


THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 17))  # 0.05 .. 0.80


def choose_threshold(own: list[float], general: list[float], grid: tuple[float, ...] = THRESHOLD_GRID
                     ) -> tuple[float, float]:
    """The routing threshold that sends the most practice questions where they belong, and that share.

    `own`: for each episode's practice question, its similarity to its own episode where that episode is
    its best match (else -1: no threshold routes it right); `general`: for each general question, its best
    similarity to any episode (-1 where the general text matched best: it reaches the base anyway). Of the
    thresholds that tie, the middle one.
    """
    def right(t: float) -> int:
        return sum(s >= t for s in own) + sum(s < t for s in general)

    most = max(right(t) for t in grid)
    tied = [t for t in grid if right(t) == most]
    return tied[len(tied) // 2], most / max(1, len(own) + len(general))


class FastAdapters(Piece):
    """A fresh LoRA adapter per episode (base frozen); routed or stacked at inference."""

    name = "fast_adapters"
    options: FastAdaptersConfig

    def __init__(self, options: FastAdaptersConfig | None = None):
        super().__init__(options or FastAdaptersConfig())
        self.router = TfidfRouter()
        self.adapters: list[str] = []  # episode adapters in the model, oldest first
        self.episodes = 0  # episodes learned so far (adapter names keep counting after a sleep)
        self.domains: dict[str, str] = {}  # adapter name -> the domain (episode) it learned
        self.separator = "\n\n"
        self.routing = True  # off while another piece drives the active adapters itself (the sleep's student)
        self._background = None  # the core set the router holds as general text
        self._hook = None
        self.practice: dict[str, list[str]] = {}  # adapter name -> its practice questions (for calibration)
        self.thresholds: dict[str, float] = {}  # chosen on practice questions: "distinctive", "common"

    def peft_config(self) -> LoraConfig:
        o = self.options
        return LoraConfig(r=o.r, lora_alpha=o.lora_alpha, lora_dropout=o.lora_dropout,
                          target_modules=o.target_modules, task_type="CAUSAL_LM")

    def attach(self, context) -> None:
        super().attach(context)
        if any(piece.name in ("lora", "full_finetune") for piece in context.pieces):
            raise ConfigError("key 'pieces': 'fast_adapters' trains its own adapters; drop 'lora'/'full_finetune'")
        self.separator = context.config.evaluation.prompt.separator or "\n\n"
        self.router.is_common = common_word_test(context.tokenizer)
        # PEFT needs one adapter to build the wrapper; this placeholder is removed once an episode exists.
        context.model = get_peft_model(context.model, self.peft_config(), adapter_name="placeholder")
        self._hook = context.model.register_forward_pre_hook(self._route_hook, with_kwargs=True)
        context.model.generate = self._routed_generate(context.model.generate)

    @property
    def peft_model(self) -> PeftModel:
        return self.context.model

    # ---- the fast system learns ---------------------------------------------------------------
    def before_round(self, domain) -> None:
        if self.adapters and self.domains.get(self.adapters[-1]) == domain.name:
            self.activate([self.adapters[-1]], trainable=True)  # the round again (a repair): same adapter
            return
        self.episodes += 1
        name = f"episode-{self.episodes}"
        self.add_adapter(name)
        self.domains[name] = domain.name
        self.practice[name] = [item.question for item in domain.train_items]
        self.router.add(name, [doc.text for doc in domain.documents] + self.practice[name] or [domain.name])

    def add_adapter(self, name: str) -> None:
        """A new adapter, initialised from the run's seed and the adapter's name alone: the same seed gives the
        same adapter whatever other pieces drew from torch's global generator before."""
        model = self.peft_model
        seed = self.context.config.seed if self.context is not None else 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(f"{seed}-{name}".encode()))
            model.add_adapter(name, self.peft_config())
        if "placeholder" in model.peft_config:
            model.base_model.set_adapter(name)
            model.delete_adapter("placeholder")
        self.adapters.append(name)
        self.activate([name], trainable=True)

    def param_groups(self, model, groups):
        if self.options.lr is None:
            return groups
        return [{**group, "lr": self.options.lr} for group in groups]

    def after_round(self, domain) -> None:
        self.activate(self.adapters, trainable=False)
        if self.options.route_thresholds_from == "practice":
            self.calibrate()

    def calibrate(self) -> dict:
        """Choose both routing thresholds on practice questions (see `choose_threshold`), against the episodes'
        documents alone, so that no question matches itself; logs and returns the choice."""
        self._set_background()
        general = [q.question for q in self._background.items] if self._background is not None else []
        router = TfidfRouter(self.router.is_common)
        for name in self.adapters:
            practice = set(self.practice.get(name, []))
            router.add(name, [t for t in self.router.episodes.get(name, []) if t not in practice] or [name])
        if self._background is not None:
            router.set_background([d.text for d in self._background.documents])
        record = {"event": "routing_calibration"}
        for tier, distinctive in (("distinctive", True), ("common", False)):
            own = [self._own_score(router, q, name, distinctive) for name in self.adapters
                   for q in self.practice.get(name, []) if bool(router.terms(q, True)) == distinctive]
            others = [self._general_score(router, q, distinctive) for q in general
                      if bool(router.terms(q, True)) == distinctive]
            if own:
                self.thresholds[tier], share = choose_threshold(own, others)
                record[tier] = {"threshold": self.thresholds[tier], "right": round(share, 4),
                                "practice": len(own), "general": len(others)}
        self.context.log(record)
        return record

    @staticmethod
    def _own_score(router: TfidfRouter, question: str, name: str, distinctive: bool) -> float:
        scores = router.similarities(question, distinctive)
        return scores[name] if max(scores, key=scores.get) == name else -1.0

    @staticmethod
    def _general_score(router: TfidfRouter, question: str, distinctive: bool) -> float:
        scores = router.similarities(question, distinctive)
        best = max(scores, key=scores.get)
        return -1.0 if best == BASE else scores[best]

    # ---- which adapters act ---------------------------------------------------------------------
    def activate(self, names: list[str], trainable: bool = False) -> None:
        """Make `names` the active adapters (all of them act on every input unless routing picks per row)."""
        model = self.peft_model
        if names:
            model.base_model.set_adapter(names)
        for name, p in model.named_parameters():
            p.requires_grad = trainable and any(f".{n}." in name for n in names)

    def drop_adapters(self) -> list[str]:
        """Remove every episode adapter (after a successful sleep); returns their names."""
        dropped, model = list(self.adapters), self.peft_model
        if dropped:
            model.add_adapter("placeholder", self.peft_config())
            model.base_model.set_adapter("placeholder")
            for name in dropped:
                model.delete_adapter(name)
                self.router.remove(name)
                self.domains.pop(name, None)
                self.practice.pop(name, None)
        self.adapters = []
        self.activate([], trainable=False)
        return dropped

    def route_names(self, input_ids: torch.Tensor) -> list[str]:
        """The adapter each row uses (`__base__` for none)."""
        self._set_background()
        tokenizer = self.context.tokenizer
        names = []
        for row in input_ids.tolist():
            text = tokenizer.decode(row, skip_special_tokens=True)
            names.append(self.router.route(text.rsplit(self.separator, 1)[-1],
                                           self.thresholds.get("distinctive", self.options.route_threshold),
                                           self.thresholds.get("common", self.options.route_threshold_common)))
        return names

    def _set_background(self) -> None:
        core = getattr(self.context, "core", None)  # the run's core set (None outside a run)
        if core is not None and core is not self._background:  # without one, the saved background stays
            self._background = core
            self.router.set_background([d.text for d in core.documents] + [q.question for q in core.items])

    def _route_hook(self, module, args, kwargs):
        if module.training or not self.routing or not self.adapters or "adapter_names" in kwargs:
            return None
        if self.options.inference == "stack":
            self.activate(self.adapters)
            return None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            return None
        return args, {**kwargs, "adapter_names": self.route_names(input_ids)}

    @contextmanager
    def unrouted(self):
        """Inputs use the active adapters as set, not the router's choice."""
        self.routing = False
        try:
            yield
        finally:
            self.routing = True

    def _routed_generate(self, generate):
        """PEFT's generate does not pass through forward's hook: route its rows here."""
        def routed(*args, **kwargs):
            model = self.peft_model
            if self.options.inference == "route" and self.routing and self.adapters and not model.training \
                    and "adapter_names" not in kwargs:
                input_ids = kwargs.get("input_ids", args[0] if args else None)
                if input_ids is not None:
                    # PEFT repeats the names for beams itself, not for several samples per input
                    copies = 1 if (kwargs.get("num_beams") or 1) > 1 else (kwargs.get("num_return_sequences") or 1)
                    kwargs["adapter_names"] = [n for n in self.route_names(input_ids) for _ in range(copies)]
            return generate(*args, **kwargs)
        return routed

    # ---- resume -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"adapters": list(self.adapters), "episodes": self.episodes, "domains": dict(self.domains),
                "router": self.router.state_dict(), "practice": dict(self.practice),
                "thresholds": dict(self.thresholds)}

    def load_state_dict(self, state: dict) -> None:
        """Re-creates the saved adapters (empty) and removes others, so the saved weights can be loaded into them."""
        saved = list(state.get("adapters", []))
        extra = [name for name in self.adapters if name not in saved]
        if extra and not saved:
            self.drop_adapters()
        for name in extra if saved else []:
            self.peft_model.delete_adapter(name)
            self.adapters.remove(name)
        for name in saved:
            if name not in self.adapters:
                self.add_adapter(name)
        self.episodes = int(state.get("episodes", 0))
        self.domains = dict(state.get("domains", {}))
        self.router.load_state_dict(state.get("router", {}))
        self.practice = {name: list(q) for name, q in state.get("practice", {}).items()}
        self.thresholds = dict(state.get("thresholds", {}))
        self._background = None
        self.activate(self.adapters, trainable=False)
