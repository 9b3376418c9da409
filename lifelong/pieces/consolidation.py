"""The slow learning system: "sleep" distils the episode adapters into the base weights.

Every `every` episodes (or on command: `lifelong learn --sleep`, `Consolidation.sleep()`), with the
`fast_adapters` piece holding one adapter per recent episode:

1. material, interleaved in shuffled batches: each pending episode's training examples (teacher:
   base + that episode's adapter), old material (the core set and the replay buffer, up to
   `replay_examples`; teacher: the base itself) and the canary questions as prompts, each followed by
   the base's own greedy reply (`canary_replies`; teacher: the base; the target is the model's own output
   distribution there, never the canary answers);
2. the student is the base plus a fresh consolidation LoRA adapter (`sleep`), trained on the KL
   divergence from the teacher's next-token distributions (temperature `temperature`), under
   layer-wise LR decay (lr * xi^(L-l)) and an online EWC penalty over the consolidation adapter
   (its Fisher accumulated over earlier sleeps; the adapter starts each sleep from the same seeded
   initialisation, so the anchor is that initial point: the base as it stands).
   Other `method`s: `merge` starts the adapter as PEFT's combination of the episode adapters
   (`merge_type`), then trains for `repair_epochs` (`repair`: the distill or the rehearse loss);
   `rehearse` trains the day's examples on their own labels by cross-entropy and the old material on KL
   to the base, its EWC Fisher including one taken on the old material before this sleep;
3. the adapter is merged into the base weights and the self-test runs on the base alone: the canary
   must not fall by more than `max_canary_drop` of its pre-sleep score, and the base must keep at
   least `min_transfer` of the adapters' log-perplexity gain on the episodes' documents, and at least
   `min_answer_transfer` of their closed-book accuracy gain on the episodes' practice questions (a lower
   perplexity alone can hide lost answers: a sleep at lr 2e-3 kept 65% of the log-perplexity gain and
   about a third of the answers, docs/results.md);
4. pass: the episode adapters are dropped; fail: the pre-sleep base weights are restored (rollback)
   and the adapters stay, to be consolidated at the next sleep. Both are logged (`sleep`, `rollback`).

The sleep runs in the `review` hook, after the round's self-test (`self_test`, when configured, must
come before this piece in `pieces`), so the self-test judges the fast round and the sleep tests itself
with the same regression rule (lifelong/selftest/regression.py), strictly: no noise allowance.

Source: McClelland, McNaughton & O'Reilly 1995 (complementary learning systems: interleaved replay
into the slow learner); Hinton, Vinyals & Dean 2015 (distillation, temperature); Li & Hoiem 2016
(Learning without Forgetting: the model's own outputs as targets on old inputs); Schwarz et al. 2018
(Progress & Compress: distil the fast column into the knowledge base under online EWC); Kirkpatrick
et al. 2017 (EWC); Howard & Ruder 2018 (layer-wise LR decay).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig
from peft.tuners.lora import LoraLayer

from lifelong.config import ConsolidationConfig, EwcConfig
from lifelong.data.records import parse_record, record_to_json
from lifelong.errors import ConfigError
from lifelong.evaluation import prompts
from lifelong.examples import plain_examples
from lifelong.model_layers import count_layers, depth
from lifelong.pieces.base import Piece
from lifelong.pieces.ewc import Ewc
from lifelong.pieces.fast_adapters import BASE
from lifelong.selftest import regression

SLEEP = "sleep"


def kept_share(before: float | None, teacher: float | None, after: float | None,
               lower_is_better: bool = False) -> float:
    """Share of the teacher's gain over `before` that `after` keeps (1.0 where there was no gain or no measure)."""
    if before is None or teacher is None or after is None:
        return 1.0
    sign = -1.0 if lower_is_better else 1.0
    gain = sign * (teacher - before)
    return 1.0 if gain <= 1e-6 else sign * (after - before) / gain


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(teacher || student) per predicted token (labels != -100), scaled by T^2 (Hinton et al. 2015)."""
    mask = labels[:, 1:] != -100
    s = student[:, :-1][mask].float() / temperature
    t = teacher[:, :-1][mask].float() / temperature
    if s.numel() == 0:
        return student.sum() * 0.0
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    return kl * temperature ** 2


def rehearsal_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, learn_rows: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """Per predicted token: cross-entropy to the labels in the rows `learn_rows` marks (the day's examples,
    learned as they are), KL(teacher || student) scaled by T^2 in the others (old material, kept as it was)."""
    mask = labels[:, 1:] != -100
    learn = mask & learn_rows[:, None].to(mask.device)
    keep = mask & ~learn
    ce = F.cross_entropy(student[:, :-1][learn].float(), labels[:, 1:][learn], reduction="sum")
    s = student[:, :-1][keep].float() / temperature
    t = teacher[:, :-1][keep].float() / temperature
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="sum") * temperature ** 2
    return (ce + kl) / mask.sum().clamp(min=1)


class Consolidation(Piece):
    """Periodic "sleep": distil episode adapters into the base weights; self-test; drop or roll back."""

    name = "consolidation"
    options: ConsolidationConfig

    def __init__(self, options: ConsolidationConfig | None = None):
        super().__init__(options or ConsolidationConfig())
        # adapter name -> {"domain": name, "examples": [Example], "questions": [practice Item]}
        self.pending: dict[str, dict] = {}
        self.since = 0  # episodes since the last sleep
        self.sleeps: list[dict] = []  # one record per sleep: outcome and measurements
        self.fisher: dict[str, torch.Tensor] = {}
        self._current: str | None = None

    def attach(self, context) -> None:
        super().attach(context)
        fast = [i for i, p in enumerate(context.pieces) if p.name == "fast_adapters"]
        mine = context.pieces.index(self)
        if not fast or fast[0] > mine:
            raise ConfigError("key 'pieces': 'consolidation' needs 'fast_adapters' before it")

    @property
    def fast(self):
        return next(p for p in self.context.pieces if p.name == "fast_adapters")

    # ---- collect the episodes ----------------------------------------------------------------
    def examples(self, domain, examples):
        self._current = self.fast.adapters[-1]
        self.pending[self._current] = {"domain": domain.name, "examples": list(examples),
                                       "questions": list(domain.train_items)}
        return examples

    def after_round(self, domain) -> None:
        self.since += 1

    def review(self, domain) -> None:
        """Sleep when due, once the round is over and reviewed (put this piece after `self_test`)."""
        if self.options.every and self.since >= self.options.every:
            self.sleep()

    # ---- sleep ----------------------------------------------------------------------------------
    def sleep(self) -> dict:
        """Consolidate the pending adapters now; returns the sleep's record (also logged)."""
        started = time.perf_counter()
        episodes = [name for name in self.fast.adapters if name in self.pending]
        if not episodes:
            return {"event": "sleep", "outcome": "nothing to consolidate"}
        model = self.context.model
        items = self._material(episodes)
        before = self._measure(episodes, adapters=True)
        snapshot = self._base_snapshot()
        if self.options.method == "merge":
            self._add_merged_adapter(episodes)
            steps = self._distil(items, self.options.repair_epochs, rehearse=self.options.repair == "rehearse")
        elif self.options.method == "rehearse":
            self._add_sleep_adapter()
            # learning the labels pulls harder than matching a teacher: guard what the old material needs now
            protect = self._combined(self.fisher, self._estimate_fisher([i for i in items if i[1] == BASE]))
            steps = self._distil(items, self.options.epochs, rehearse=True, protect=protect)
        else:
            self._add_sleep_adapter()
            steps = self._distil(items, self.options.epochs)
        new_fisher = self._estimate_fisher(items)
        self._merge_sleep_adapter()
        after = self._measure(episodes, adapters=False)
        record = self._verdict(episodes, before, after, steps)
        if record["passed"]:
            self._accumulate(new_fisher)
            self.fast.drop_adapters()
            for name in episodes:
                self.pending.pop(name, None)
        else:
            with torch.no_grad():
                for weight, saved in snapshot:
                    weight.copy_(saved)
            self.fast.activate(self.fast.adapters)
        self.since = 0
        record["seconds"] = round(time.perf_counter() - started, 1)
        self.sleeps.append(record)
        self.context.log(record if record["passed"] else {**record, "event": "rollback"})
        model.eval()
        return record

    def _verdict(self, episodes: list[str], before: dict, after: dict, steps: int) -> dict:
        o = self.options
        canary_ok, reason = True, "no canary"
        if before["canary"] is not None:
            # the sleep is optional (the adapters keep working), so any material drop fails it, noise or not
            n = len(self._canary().eval_items)
            verdict = regression.check_drop(before["canary"], after["canary"], n, abs_drop=0.0,
                                            rel_drop=o.max_canary_drop)
            canary_ok, reason = verdict.drop <= verdict.tolerance + 1e-9, verdict.reason
        transfer = kept_share(before["base_nll"], before["teacher_nll"], after["base_nll"], lower_is_better=True)
        answers = kept_share(before["base_answers"], before["teacher_answers"], after["base_answers"])
        failed = [why for why, bad in ((f"canary: {reason}", not canary_ok),
                                       (f"kept {transfer:.2f} of the perplexity gain < {o.min_transfer}",
                                        transfer < o.min_transfer),
                                       (f"kept {answers:.2f} of the answer gain < {o.min_answer_transfer}",
                                        answers < o.min_answer_transfer)) if bad]
        return {"event": "sleep", "method": self._method_name(), "episodes": episodes, "steps": steps,
                "passed": not failed, "why": "; ".join(failed) or "every check passed",
                "canary_before": before["canary"], "canary_after": after["canary"],
                "transfer": round(transfer, 4), "answer_transfer": round(answers, 4),
                "answers": {"base_before": before["base_answers"], "with_adapters": before["teacher_answers"],
                            "base_after": after["base_answers"]},
                "canary_ok": canary_ok, "canary_check": reason}

    def _method_name(self) -> str:
        o = self.options
        repair = "" if o.repair == "distill" else f" of {o.repair}"
        weight = "" if o.merge_weight == 1 else " mean" if o.merge_weight == "mean" else f" x {o.merge_weight:g}"
        return f"merge ({o.merge_type}{weight}, {o.repair_epochs} repair epochs{repair})" if o.method == "merge" \
            else o.method

    # ---- the material ---------------------------------------------------------------------------
    def _material(self, episodes: list[str]) -> list[tuple[object, str]]:
        """(example, teacher adapter) pairs: episodes' own, old material, canary prompts."""
        from lifelong.training import Example

        rng = random.Random(f"sleep-{self.context.config.seed}-{len(self.sleeps)}")
        items = [(e, name) for name in episodes for e in self.pending[name]["examples"]]
        pending_domains = {self.pending[name]["domain"] for name in episodes}
        prompt = self.context.config.evaluation.prompt
        old = []
        core = getattr(self.context, "core", None)
        if core is not None:
            old += plain_examples(core, prompt, with_questions=True)
        replay = next((p for p in self.context.pieces if p.name == "replay"), None)
        if replay is not None:
            old += [e for d, e in replay.buffer if d not in pending_domains]
        old = rng.sample(old, min(self.options.replay_examples, len(old)))
        items += [(e, BASE) for e in old]
        items += [(Example(text=text, source="canary"), BASE) for text in self._canary_texts()]
        rng.shuffle(items)
        return items

    def _canary_texts(self) -> list[str]:
        """The canary prompts, each followed (`canary_replies`) by the base's own greedy reply (few-shot: its
        first line, as the evaluator reads it)."""
        canary = self._canary()
        if canary is None:
            return []
        evaluator, model = self._evaluator(), self.context.model
        contexts = [evaluator.context_text(item.question) for item in canary.eval_items]
        if not self.options.canary_replies:
            return contexts
        with model.disable_adapter():
            replies = evaluator.generate(model, contexts, "canary replies")
        if evaluator.prompt.mode == "chat":
            return [context + reply for context, reply in zip(contexts, replies, strict=True)]
        return [context + prompts.answer_continuation(reply.split("\n", 1)[0]) + "\n"
                for context, reply in zip(contexts, replies, strict=True)]

    def _canary(self):
        stream = getattr(self.context, "stream", None)
        return getattr(stream, "canary", None)

    def _evaluator(self):
        if self.context.evaluator is None:
            from lifelong.evaluation.evaluator import Evaluator

            self.context.evaluator = Evaluator(self.context.config.evaluation, self.context.tokenizer,
                                               seed=self.context.config.seed)
        return self.context.evaluator

    # ---- measurements for the self-test -------------------------------------------------------
    def _measure(self, episodes: list[str], adapters: bool) -> dict:
        """Canary score, the episodes' documents' mean log-perplexity and closed-book accuracy on their
        practice questions, for the base (and, with `adapters`, for base + the episode adapters)."""
        model, evaluator = self.context.model, self._evaluator()
        docs = [e.text for name in episodes for e in self.pending[name]["examples"] if e.source == "document"][:64]
        questions = [q for name in episodes for q in self.pending[name].get("questions", [])]
        canary = self._canary()

        def measure(prefix: str) -> None:
            result[f"{prefix}_nll"] = math.log(evaluator.perplexity(model, docs)) if docs else 0.0
            result[f"{prefix}_answers"] = evaluator.score_items(model, questions, "sleep check").score \
                if questions else None

        result = {}
        with model.disable_adapter():
            measure("base")
            if not adapters:
                result["canary"] = evaluator.score_domain(model, canary).score if canary is not None else None
        if adapters:
            self.fast.activate(self.fast.adapters)
            measure("teacher")
            result["canary"] = evaluator.score_domain(model, canary).score if canary is not None else None
        return result

    # ---- the consolidation adapter -------------------------------------------------------------
    def _add_sleep_adapter(self) -> None:
        o = self.options
        model = self.context.model
        with torch.random.fork_rng():
            torch.manual_seed(self.context.config.seed)  # the same starting point every sleep: EWC's anchor
            model.add_adapter(SLEEP, LoraConfig(r=o.r, lora_alpha=o.lora_alpha, task_type="CAUSAL_LM",
                                                target_modules=self.fast.options.target_modules))
        self._train_sleep_adapter()

    def _add_merged_adapter(self, episodes: list[str]) -> None:
        """The consolidation adapter as PEFT's combination of the episode adapters (`merge_type`): with `cat`
        its update is exactly the sum of theirs; DARE's random drop is seeded from the run's seed."""
        o, model = self.options, self.context.model
        svd = {"svd_rank": sum(model.peft_config[name].r for name in episodes)} if "svd" in o.merge_type else {}
        density = {"density": o.density} if o.merge_type not in ("cat", "svd") else {}
        with torch.random.fork_rng():
            torch.manual_seed(self.context.config.seed)
            weight = 1 / len(episodes) if o.merge_weight == "mean" else o.merge_weight
            model.add_weighted_adapter(episodes, [weight] * len(episodes), SLEEP, combination_type=o.merge_type,
                                       **svd, **density)
        self._train_sleep_adapter()

    def _train_sleep_adapter(self) -> None:
        """The consolidation adapter as it starts (EWC's anchor) becomes the only trainable one."""
        model = self.context.model
        self._anchor = {n: p.detach().clone() for n, p in model.named_parameters() if f".{SLEEP}." in n}
        self.fast.activate([SLEEP], trainable=True)

    def _sleep_params(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.context.model.named_parameters() if f".{SLEEP}." in n]

    def _param_groups(self) -> list[dict]:
        model = self.context.model
        n_layers = count_layers(model)
        groups: dict[int, list] = {}
        for name, p in self._sleep_params():
            groups.setdefault(depth(name, n_layers), []).append(p)
        return [{"params": ps, "lr": self.options.lr * self.options.xi ** (n_layers - d)}
                for d, ps in sorted(groups.items())]

    def _penalty(self, fisher: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not fisher or self.options.ewc_lambda == 0:
            return None
        terms = [(fisher[n].to(p.device) * (p - self._anchor[n]).pow(2)).sum()
                 for n, p in self._sleep_params() if n in fisher and fisher[n].shape == p.shape]
        return 0.5 * self.options.ewc_lambda * torch.stack(terms).sum() if terms else None

    def _distil(self, items: list[tuple[object, str]], epochs: int, rehearse: bool = False,
                protect: dict[str, torch.Tensor] | None = None) -> int:
        """Train the consolidation adapter on KL to the teachers (with `rehearse`: on the episode examples'
        own labels, KL to the base elsewhere) under EWC with the Fisher `protect` (default: the accumulated
        one); returns the optimizer steps taken."""
        protect = self.fisher if protect is None else protect
        from lifelong.training import collate, fit_to_length, tokenize_examples

        cfg, o = self.context.config.training, self.options
        model, tokenizer = self.context.model, self.context.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        items = [(piece, teacher) for e, teacher in items for piece in fit_to_length(tokenizer, [e], cfg.max_length)]
        features = tokenize_examples(tokenizer, [e for e, _ in items], cfg.max_length, keep_empty=True)
        pairs = [(f, teacher) for f, (_, teacher) in zip(features, items, strict=True) if f]
        optimizer = torch.optim.AdamW(self._param_groups(), lr=o.lr)
        params = [p for _, p in self._sleep_params()]
        device = params[0].device
        rng, steps = random.Random(f"sleep-order-{self.context.config.seed}"), 0
        for _ in range(epochs):
            rng.shuffle(pairs)
            for start in range(0, len(pairs), o.batch_size):
                chunk = pairs[start:start + o.batch_size]
                batch = {k: v.to(device) for k, v in collate([f for f, _ in chunk], pad_id).items()}
                inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
                model.eval()
                with torch.no_grad():
                    teacher = model(**inputs, adapter_names=[BASE if rehearse else t for _, t in chunk]).logits
                model.train()
                if rehearse:
                    learn_rows = torch.tensor([t != BASE for _, t in chunk])
                    loss = rehearsal_loss(model(**inputs).logits, teacher, batch["labels"], learn_rows, o.temperature)
                else:
                    loss = distillation_loss(model(**inputs).logits, teacher, batch["labels"], o.temperature)
                extra = self._penalty(protect)
                if extra is not None:
                    loss = loss + extra
                if not torch.isfinite(loss):
                    continue  # a bad batch is skipped; the self-test judges the result
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or math.inf)
                optimizer.step()
                steps += 1
                if steps % cfg.log_every == 0:
                    self.context.log({"event": "train", "domain": SLEEP, "step": steps, "loss": round(loss.item(), 5)})
        model.eval()
        return steps

    def _estimate_fisher(self, items) -> dict[str, torch.Tensor]:
        if not items:
            return {}
        helper = Ewc(EwcConfig())
        helper.context = self.context
        sample = random.Random(f"sleep-fisher-{len(self.sleeps)}").sample([e for e, _ in items], min(32, len(items)))
        with self.fast.unrouted():
            return helper.estimate_fisher(self.context.model, sample)

    @staticmethod
    def _combined(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Online EWC: the sum of the Fishers, parameter by parameter (a new shape replaces the old)."""
        summed = {n: (old[n].to(f.device) + f if n in old and old[n].shape == f.shape else f).detach().cpu()
                  for n, f in new.items()}
        return {**old, **summed}

    def _accumulate(self, new: dict[str, torch.Tensor]) -> None:
        self.fisher = self._combined(self.fisher, new)

    def _merge_sleep_adapter(self) -> None:
        model = self.context.model
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, LoraLayer) and SLEEP in module.lora_A:
                    weight = module.get_base_layer().weight
                    weight += module.get_delta_weight(SLEEP).to(weight.dtype)
        self.fast.activate(self.fast.adapters)  # a sleep always has episode adapters besides its own
        model.delete_adapter(SLEEP)
        self.fast.activate(self.fast.adapters)

    def _base_snapshot(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of the base weights a merge changes (the adapted layers'), for a rollback."""
        return [(m.get_base_layer().weight, m.get_base_layer().weight.detach().clone())
                for m in self.context.model.modules() if isinstance(m, LoraLayer)]

    # ---- resume ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"pending": {name: {"domain": p["domain"], "examples": [asdict(e) for e in p["examples"]],
                                   "questions": [record_to_json(q) for q in p.get("questions", [])]}
                            for name, p in self.pending.items()},
                "since": self.since, "sleeps": list(self.sleeps),
                "fisher": {n: t.detach().cpu() for n, t in self.fisher.items()}}

    def load_state_dict(self, state: dict) -> None:
        from lifelong.training import Example

        self.pending = {name: {"domain": p["domain"], "examples": [Example(**e) for e in p["examples"]],
                               "questions": [parse_record(q, Path("pieces.pt"), 0) for q in p.get("questions", [])]}
                        for name, p in state.get("pending", {}).items()}
        self.since = int(state.get("since", 0))
        self.sleeps = list(state.get("sleeps", []))
        self.fisher = {n: t.clone() for n, t in state.get("fisher", {}).items()}
