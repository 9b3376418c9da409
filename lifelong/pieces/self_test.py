"""Self-testing: after (and during) every round, check that nothing the model could do broke; repair or roll back.

The capabilities watched are the stream's canary, every domain learned so far, and any extra
diagnostic tasks given as lm-evaluation-harness task YAML files (`self_test.diagnostic_tasks`).

- At the round's start the piece keeps a snapshot in memory: the model's weights (its state dict,
  on the CPU) and every other piece's state.
- During the round the canary is scored every `canary_every` optimizer steps. A passing check keeps
  a copy of the weights; a regression (the rule in lifelong/selftest/regression.py, against the
  score the round started from) is an alarm that ends the round (`after_step` returns True), by
  default at the weights of the last check that passed (`on_alarm: restore`).
- After the round (the `review` hook, once every piece's after_round has run) the canary is
  scored; the diagnostic suite (every learned domain and the diagnostic tasks) runs every
  `diagnostic_every` rounds and after any canary alarm. Each score is compared with the round's
  starting score (a drop beyond max(abs, rel) and beyond the binomial noise of its items), with
  the capability's first score (`cumulative`), and its history with the trend test (slow drift).
- A regression, or an in-round alarm, is repaired: the round is trained again (from the snapshot,
  or with `repair.start: current` from the regressed weights) with targeted replay (a
  `replay_ratio` share of extra examples drawn from the regressed capabilities' stored material:
  for the canary the stream's core set, for a domain its documents and split=train questions, for
  a diagnostic task its training split; never an eval item), an EWC penalty on that material
  (Fisher of it, anchored at the round's starting weights, `ewc_lambda` growing by `ewc_growth`
  per attempt) and the learning rate times `lr_factor`; the canary checks run inside it too.
  Then everything is scored again. A repair that passes is kept unless the state an alarm left
  learned the round's domain at least as well.
- A regression that outlives `repair.attempts` repairs is rolled back: to the round's last
  passing canary check if it still passes the whole suite, else to the round's start; with
  `rollback: false` it is kept and logged as kept. Nothing is silently kept.

Every decision goes to log.jsonl: `canary` (an in-round check), `selftest` (a round's scores:
phases baseline, after_round, accepted), `regression`, `repair`, `rollback` and `selftest_kept`.
The piece's state (history of kept scores, the references, the decisions) is in its state_dict, so
a resumed run keeps them. A round continued from a mid-domain checkpoint takes its snapshot at the
resumed step. Memory: one copy of the model for the snapshot, one per kept in-round check.

Sources: Chaudhry et al. 2019 (tiny episodic memories: replay of a few stored examples);
Kirkpatrick et al. 2017 (EWC); Wilson 1927 and Newcombe 1998 (intervals for proportions and
their difference).
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import torch

from lifelong.config import EwcConfig, SelfTestConfig
from lifelong.data.records import Domain
from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece
from lifelong.pieces.ewc import Ewc
from lifelong.selftest import regression
from lifelong.selftest.lmeval_tasks import load_lmeval_tasks

CANARY = "canary"


class SelfTest(Piece):
    """Canary checks during the round; canary + diagnostic suite after it; repair, then rollback."""

    name = "self_test"
    options: SelfTestConfig

    def __init__(self, options: SelfTestConfig | None = None):
        super().__init__(options or SelfTestConfig())
        self.rounds = 0
        self.reference: dict[str, dict] = {}  # capability -> {"score", "items", "round"}: the last accepted scores
        self.history: dict[str, list[dict]] = {}  # capability -> [{"round", "score", "items"}], accepted scores
        self.learned: list[str] = []  # domains learned so far, in order
        self.decisions: list[dict] = []  # every regression, repair, rollback and kept regression
        self.tasks: list[Domain] = []
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._pieces_snapshot: dict | None = None
        self._repairing = False
        self._alarm: dict | None = None  # the in-round canary alarm of this round, if any
        self._repair_ewc: Ewc | None = None
        self._domain: Domain | None = None
        self._round = 0  # the round being learned (1-based)
        self._total = 0  # optimizer steps planned for the training round running now
        self._good: tuple[int, dict] | None = None  # (step, weights) of the round's last passing canary check
        self._recovery: dict | None = None  # during a recovery: {"names", "suite", "checks"}

    # ---- setup ----------------------------------------------------------------------------------
    def attach(self, learner) -> None:
        super().attach(learner)
        self.tasks = load_lmeval_tasks(list(self.options.diagnostic_tasks), base=Path.cwd())

    def capabilities(self, upto: str | None = None) -> dict[str, Domain]:
        """The diagnostic suite: canary, every domain learned so far (and `upto`), the diagnostic tasks."""
        stream = self.learner.stream
        suite: dict[str, Domain] = {}
        if stream is not None and stream.canary is not None:
            suite[CANARY] = stream.canary
        by_name = {d.name: d for d in stream.domains} if stream is not None else {}
        for name in [*self.learned, *([upto] if upto and upto not in self.learned else [])]:
            if name in by_name:
                suite[name] = by_name[name]
        for task in self.tasks:
            if task.name in suite:
                raise ConfigError(f"key 'self_test.diagnostic_tasks': task {task.name!r} has the name of a domain "
                                  "or the canary; rename its `task`")
            suite[task.name] = task
        return suite

    # ---- scoring --------------------------------------------------------------------------------
    def _model(self):
        return self.learner.accelerator.unwrap_model(self.learner.model)

    def score(self, names: list[str], suite: dict[str, Domain]) -> dict[str, dict]:
        evaluator = self.learner.evaluator
        if evaluator is None:
            raise ConfigError("key 'pieces': 'self_test' needs an evaluator (run it through an Experiment)")
        out = {}
        for name in names:
            scored = evaluator.score_domain(self._model(), suite[name], desc=f"self-test {name}")
            out[name] = {"score": scored.score, "items": len(scored.correct)}
        return out

    def verdict(self, name: str, now: dict) -> regression.Verdict | None:
        """The drop since the round's start; with `cumulative`, a drop since the first score counts too."""
        before = self.reference.get(name)
        if before is None:
            return None
        o = self.options
        found = regression.check_drop(before["score"], now["score"], before["items"], now["items"],
                                      abs_drop=o.abs_drop, rel_drop=o.rel_drop, confidence=o.confidence)
        first = (self.history.get(name) or [None])[0]
        if found.regressed or not o.cumulative or first is None or first is before:
            return found
        since = regression.check_drop(first["score"], now["score"], first["items"], now["items"],
                                      abs_drop=o.abs_drop, rel_drop=o.rel_drop, confidence=o.confidence)
        if not since.regressed:
            return found
        return regression.Verdict(True, since.drop, since.tolerance, since.lower,
                                  f"since its first score ({first['score']:.3f}, round {first['round']}): "
                                  f"{since.reason}")

    def drift(self, name: str, now: dict) -> regression.Trend | None:
        o = self.options
        past = self.history.get(name, [])
        if not o.trend or not past:
            return None
        points = [*past, now]
        return regression.trend([p["score"] for p in points], [p["items"] for p in points], abs_drop=o.abs_drop,
                                rel_drop=o.rel_drop, confidence=o.confidence, min_points=o.trend_min_points,
                                window=o.trend_window)

    def regressions(self, scores: dict[str, dict], exclude: str | None) -> dict[str, dict]:
        """The capabilities that regressed: name -> why (the drop verdict and/or the trend)."""
        found = {}
        for name, now in scores.items():
            if name == exclude:
                continue  # the domain being learned is not a regression candidate
            why = {}
            verdict = self.verdict(name, now)
            if verdict is not None and verdict.regressed:
                why["drop"] = verdict.as_dict()
            trend = self.drift(name, now)
            if trend is not None and trend.drifting:
                why["trend"] = trend.as_dict()
            if why:
                found[name] = {"before": self.reference.get(name, {}).get("score"), "after": now["score"], **why}
        return found

    # ---- the round --------------------------------------------------------------------------------
    def _inactive(self) -> bool:
        """A documents-only reference round (self_teaching_quality) is measured, not guarded."""
        return bool(getattr(self.learner, "reference", False))

    def before_round(self, domain: Domain) -> None:
        if self._repairing or self._inactive():
            return
        self._domain = domain
        self._round = self.rounds + 1
        self._alarm = None
        self._good = None
        self._snapshot = snapshot(self._model())
        self._pieces_snapshot = copy.deepcopy(self._others_state())
        suite = self.capabilities()
        missing = [name for name in suite if name not in self.reference]
        if missing:  # first round (or new diagnostic tasks): the reference is the model as it is now
            scores = self.score(missing, suite)
            for name, now in scores.items():
                self._accept(name, now, round_=self.rounds)
            self.learner.log({"event": "selftest", "round": self.rounds, "phase": "baseline", "domain": domain.name,
                              "scores": _rounded(scores)})

    def before_training(self, total_steps: int, steps_per_epoch: int) -> None:
        self._total = total_steps
        self._good = None  # every training run (the round, each repair) keeps its own last good check

    def after_step(self, step: int) -> bool:
        if self._recovery is not None:
            return self._recovered(step)
        every = self.options.canary_every
        if not every or step % every or self._inactive():
            return False
        if self._repairing and self.options.repair.start == "current":
            return False  # a repair that starts from the regressed weights is judged when it ends
        suite = self.capabilities()
        if CANARY not in suite or CANARY not in self.reference:
            return False
        now = self.score([CANARY], suite)[CANARY]
        verdict = self.verdict(CANARY, now)
        regressed = bool(verdict and verdict.regressed)
        self.learner.log({"event": "canary", "round": self._round, "domain": self._domain.name if self._domain
                          else None, "step": step, "steps": self._total, "score": now["score"], "items": now["items"],
                          "repair": self._repairing, "regressed": regressed})
        if not regressed:
            self._good = (step, snapshot(self._model()))  # the last good state of this training run
            return False
        action = self.options.on_alarm
        alarm = {"event": "regression", "round": self._round, "phase": "in_round", "step": step,
                 "capability": CANARY, "before": self.reference[CANARY]["score"], "after": now["score"],
                 "drop": verdict.as_dict(), "action": action, "repair": self._repairing}
        if action == "restore":  # end the run at its last check that passed (or where it started)
            good_step, weights = self._good or (0, self._snapshot if not self._repairing or
                                                self.options.repair.start == "snapshot" else None)
            if weights is not None:
                self._model().load_state_dict(weights)
                alarm["restored_step"] = good_step
        if not self._repairing:
            self._alarm = self._alarm or alarm
        self._decide(alarm)
        return action != "continue"

    def review(self, domain: Domain):
        if self._repairing or self._snapshot is None:
            return None
        started = time.perf_counter()
        suite = self.capabilities(upto=domain.name)
        round_good, alarm = self._good, self._alarm
        names = self._checked(suite, domain)
        scores = self.score(names, suite)
        regressed = self.regressions(scores, exclude=domain.name)
        if CANARY in regressed and len(names) < len(suite):  # a canary alarm brings in the whole suite
            names = list(suite)
            scores.update(self.score([n for n in names if n not in scores], suite))
            regressed = self.regressions(scores, exclude=domain.name)
        self.learner.log({"event": "selftest", "round": self._round, "phase": "after_round", "domain": domain.name,
                          "scores": _rounded(scores), "regressed": sorted(regressed),
                          "in_round_alarm": alarm is not None})
        for name, why in regressed.items():
            self._decide({"event": "regression", "round": self._round, "phase": "after_round", "capability": name,
                          **why})
        # An alarm that ended the round at a good state leaves that state as the fallback; the repair may learn more.
        fallback = None
        if not regressed and alarm is not None:
            fallback = {"weights": snapshot(self._model()), "pieces": copy.deepcopy(self._others_state()),
                        "scores": scores, "step": alarm.get("restored_step", 0)}
        targets = regressed or ({CANARY: {"before": alarm["before"], "after": alarm["after"], "drop": alarm["drop"]}}
                                if alarm is not None else {})
        repaired = kept_stats = None
        attempt = 0
        while targets and attempt < self.options.repair.attempts:
            attempt += 1
            tried, still, stats = self._repair(domain, suite, names, targets, attempt)
            if tried is None:
                break
            if not still:
                repaired, kept_stats = tried, stats
                break
            targets = still
        if repaired is not None and fallback is not None and \
                fallback["scores"][domain.name]["score"] >= repaired[domain.name]["score"]:
            self._decide({"event": "rollback", "round": self._round, "domain": domain.name, "capabilities": [],
                          "to": f"step {fallback['step']} of the round (where the alarm ended it)",
                          "step": fallback["step"], "why": {domain.name: {
                              "before": repaired[domain.name]["score"],
                              "after": fallback["scores"][domain.name]["score"],
                              "reason": "the repair passed the checks but learned the domain no better than the round "
                                        "had before its alarm"}}})
            repaired, kept_stats = self._return_to(fallback), None
        if repaired is not None:
            scores = repaired
        elif fallback is not None:
            if attempt:
                self._decide({"event": "rollback", "round": self._round, "domain": domain.name,
                              "capabilities": sorted(targets), "step": fallback["step"],
                              "to": f"step {fallback['step']} of the round (where the alarm ended it)",
                              "why": _why(targets)})
            scores = self._return_to(fallback)
        elif regressed:
            scores = self._give_up(domain, scores, targets, round_good)
        for name, now in scores.items():
            self._accept(name, now, round_=self._round)
        if domain.name not in self.learned:
            self.learned.append(domain.name)
        self.rounds = self._round
        self.learner.log({"event": "selftest", "round": self._round, "phase": "accepted", "domain": domain.name,
                          "scores": _rounded(scores), "seconds": round(time.perf_counter() - started, 2)})
        self._snapshot = self._pieces_snapshot = self._good = self._alarm = None
        return kept_stats

    def _checked(self, suite: dict[str, Domain], domain: Domain) -> list[str]:
        """The canary always; the whole suite every `diagnostic_every` rounds and after an in-round alarm."""
        if self._alarm is not None or self._round % self.options.diagnostic_every == 0 or CANARY not in suite:
            return list(suite)
        return [CANARY]

    # ---- repair and rollback ---------------------------------------------------------------------
    def _repair(self, domain: Domain, suite: dict[str, Domain], names: list[str], regressed: dict,
                attempt: int) -> tuple[dict | None, dict, object]:
        """One repair round: its scores (None: nothing to repair with), what is still regressed, its RoundStats."""
        o = self.options.repair
        started = time.perf_counter()
        stored = self.stored_examples(list(regressed), suite)
        if not stored:  # nothing of theirs to replay and nothing to estimate their Fisher on
            self._decide({"event": "repair", "round": self._round, "attempt": attempt,
                          "capabilities": sorted(regressed), "result": "skipped: no stored examples",
                          "note": "no documents or split=train items for these capabilities, and no core set"})
            return None, regressed, None
        if o.mode == "recover":
            return self._recover(domain, suite, names, regressed, attempt, stored, started)
        if o.start == "snapshot":
            self._restore_weights()
        self._restore_pieces()
        lam = o.ewc_lambda * o.ewc_growth ** (attempt - 1)
        extra = self._targeted_replay(domain, stored, attempt)
        self._repair_ewc = self._ewc(stored, lam) if lam > 0 else None
        self._repairing = True
        config = self.learner.config
        lr = config.training.lr
        try:
            if o.lr_factor != 1.0:
                config.training.lr = lr * o.lr_factor
            stats = self.learner.run_round(domain, seed=config.seed * 1000 + 7919 * attempt + self._round,
                                           extra=extra, epochs=o.epochs)
        finally:
            config.training.lr = lr
            self._repairing, self._repair_ewc = False, None
        scores = self.score(names, suite)
        still = self.regressions(scores, exclude=domain.name)
        self._decide({"event": "repair", "round": self._round, "attempt": attempt, "capabilities": sorted(regressed),
                      "start": o.start, "replay_examples": len(extra), "stored_examples": len(stored),
                      "ewc_lambda": lam, "lr": lr * o.lr_factor, "steps": stats.steps,
                      "stopped_early": stats.stopped_early, "scores": _rounded(scores),
                      "result": "still regressed" if still else "repaired", "still_regressed": sorted(still),
                      "seconds": round(time.perf_counter() - started, 2)})
        return scores, still, stats

    def _recover(self, domain: Domain, suite: dict[str, Domain], names: list[str], regressed: dict, attempt: int,
                 stored: list, started: float) -> tuple[dict, dict, object]:
        """One recovery: from the regressed weights, train on the regressed capabilities' stored examples
        alone (every piece's penalty still on, e.g. distillation; the repair's own EWC is retrain's), at
        the repair's rate, until a check finds them passing or `recover_steps` steps are done. It costs
        a few steps instead of a second round; the round's domain is scored beside the others after it."""
        o = self.options.repair
        self._recovery = {"names": sorted(regressed), "suite": suite, "checks": []}
        self._repairing = True
        config = self.learner.config
        lr = config.training.lr
        try:
            config.training.lr = lr * o.lr_factor
            stats = self.learner.loop.run(self.learner.model, self.learner.tokenizer, stored,
                                          self.learner.param_groups(), self.learner.pieces,
                                          seed=config.seed * 1000 + 7919 * attempt + self._round,
                                          domain=f"{domain.name} (recover {', '.join(sorted(regressed))})",
                                          steps=o.recover_steps, final_point=False)
        finally:
            config.training.lr = lr
            checks = self._recovery["checks"]
            self._repairing, self._recovery = False, None
            self.learner.model = self.learner.accelerator.unwrap_model(self.learner.model)
        scores = self.score(names, suite)
        still = self.regressions(scores, exclude=domain.name)
        self._decide({"event": "repair", "round": self._round, "attempt": attempt, "mode": "recover",
                      "capabilities": sorted(regressed), "stored_examples": len(stored),
                      "lr": lr * o.lr_factor, "steps": stats.steps, "checks": checks, "scores": _rounded(scores),
                      "result": "still regressed" if still else "repaired", "still_regressed": sorted(still),
                      "seconds": round(time.perf_counter() - started, 2)})
        return scores, still, None

    def _recovered(self, step: int) -> bool:
        """During a recovery: every `check_every` steps, score the regressed capabilities; True ends it."""
        if step % self.options.repair.check_every:
            return False
        names, suite = self._recovery["names"], self._recovery["suite"]
        scores = self.score(names, suite)
        passed = not self.regressions(scores, exclude=None)
        self._recovery["checks"].append({"step": step, "scores": _rounded(scores), "passed": passed})
        return passed

    def _return_to(self, state: dict) -> dict:
        """Back to a state saved after the round (weights and the pieces' state); returns its scores."""
        self._model().load_state_dict(state["weights"])
        for piece in self.learner.pieces:
            if piece is not self and piece.name in state["pieces"]:
                piece.load_state_dict(copy.deepcopy(state["pieces"][piece.name]))
        return state["scores"]

    def _give_up(self, domain: Domain, scores: dict, regressed: dict, round_good) -> dict:
        """Roll back to the last good state: the round's last canary check that passed, else the round's start."""
        why = _why(regressed)
        if not self.options.rollback:
            self._decide({"event": "selftest_kept", "round": self._round, "domain": domain.name,
                          "capabilities": sorted(regressed), "why": why,
                          "note": "self_test.rollback is false: the regressed round is kept"})
            return scores
        suite = self.capabilities(upto=domain.name)
        if round_good is not None:
            step, weights = round_good
            self._restore_pieces()
            self._model().load_state_dict(weights)
            self.learner.examples(domain)  # the pieces see the round's examples again, then finish the round
            for piece in self.learner.pieces:
                if piece is not self:
                    piece.after_round(domain)
            rescored = self.score(list(scores), suite)
            still = self.regressions(rescored, exclude=domain.name)
            self._decide({"event": "rollback", "round": self._round, "domain": domain.name,
                          "capabilities": sorted(regressed), "to": f"step {step} of the round (the last canary check "
                          "that passed)", "step": step, "why": why, "scores": _rounded(rescored),
                          "result": "still regressed" if still else "kept", "still_regressed": sorted(still)})
            if not still:
                return rescored
            why = _why(still)
        self._restore_weights()
        self._restore_pieces()
        self._decide({"event": "rollback", "round": self._round, "domain": domain.name,
                      "capabilities": sorted(regressed), "to": "the round's start", "step": 0, "why": why})
        return self.score(list(scores), suite)  # one check that the round's start scores what it did

    def _restore_weights(self) -> None:
        self._model().load_state_dict(self._snapshot)

    def _restore_pieces(self) -> None:
        for piece in self.learner.pieces:
            if piece is not self and piece.name in self._pieces_snapshot:
                piece.load_state_dict(copy.deepcopy(self._pieces_snapshot[piece.name]))

    def _others_state(self) -> dict:
        return {piece.name: piece.state_dict() for piece in self.learner.pieces if piece is not self}

    def stored_examples(self, names: list[str], suite: dict[str, Domain]) -> list:
        """Training material for the regressed capabilities: documents and split=train items, never eval items.

        The canary's material is the stream's core set (general text and questions); a capability
        with none of its own falls back to the core set too.
        """
        examples, core = [], getattr(self.learner, "core", None)
        for name in names:
            own = [] if name == CANARY else stored_examples(suite[name], self.learner.config.evaluation.prompt)
            if not own and core is not None:
                own = stored_examples(core, self.learner.config.evaluation.prompt)
            examples += own
        return list(dict.fromkeys(examples))

    def _targeted_replay(self, domain: Domain, stored: list, attempt: int) -> list:
        """replay_ratio / (1 - replay_ratio) stored examples per example of the round, cycled in a seeded order."""
        ratio = self.options.repair.replay_ratio
        if not stored or ratio <= 0:
            return []
        from lifelong.learner import plain_examples  # lazy: the learner imports the pieces

        n_round = len(plain_examples(domain, self.learner.config.evaluation.prompt,
                                     self.learner.config.training.train_questions))
        want = max(1, round(ratio / (1 - ratio) * n_round))
        rng = random.Random(f"self-test-{self.learner.config.seed}-{self._round}-{attempt}")
        out = []
        while len(out) < want:
            cycle = list(stored)
            rng.shuffle(cycle)
            out += cycle[:want - len(out)]
        return out

    def _ewc(self, stored: list, lam: float) -> Ewc:
        """An EWC penalty on the regressed material: Fisher at the current weights, anchored at the round's start."""
        ewc = Ewc(EwcConfig(ewc_lambda=lam, fisher_samples=self.options.repair.fisher_samples))
        ewc.learner = self.learner
        rng = random.Random(f"self-test-fisher-{self.learner.config.seed}-{self._round}")
        sample = rng.sample(stored, min(len(stored), self.options.repair.fisher_samples))
        model = self.learner.model
        ewc.fisher = ewc.estimate_fisher(model, sample)
        ewc.anchor = {name: self._snapshot[name].clone() for name in ewc.fisher if name in self._snapshot}
        ewc.fisher = {name: f for name, f in ewc.fisher.items() if name in ewc.anchor}
        return ewc

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        if self._repairing and self._repair_ewc is not None:
            return self._repair_ewc.penalty(model)
        return None

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _accept(self, name: str, now: dict, round_: int) -> None:
        entry = {"round": round_, "score": now["score"], "items": now["items"]}
        self.reference[name] = entry
        self.history.setdefault(name, []).append(entry)

    def _decide(self, event: dict) -> None:
        self.decisions.append(event)
        self.learner.log(event)

    def state_dict(self) -> dict:
        return {"rounds": self.rounds, "reference": copy.deepcopy(self.reference),
                "history": copy.deepcopy(self.history), "learned": list(self.learned),
                "decisions": copy.deepcopy(self.decisions)}

    def load_state_dict(self, state: dict) -> None:
        self.rounds = int(state.get("rounds", 0))
        self.reference = copy.deepcopy(state.get("reference", {}))
        self.history = copy.deepcopy(state.get("history", {}))
        self.learned = list(state.get("learned", []))
        self.decisions = copy.deepcopy(state.get("decisions", []))


def stored_examples(domain: Domain, prompt) -> list:
    """A domain's training material as examples: documents, and split=train questions (mc: the right choice)."""
    from lifelong.learner import question_example
    from lifelong.training import Example  # lazy: the loop imports the pieces

    examples = [Example(text=doc.text, source="document") for doc in domain.documents]
    return examples + [example for item in domain.train_items
                       if (example := question_example(item, prompt)) is not None]


def _why(regressed: dict) -> dict:
    """Per capability: its score before and after, and the reasons (drop and/or trend), for the log."""
    return {name: {"before": detail.get("before"), "after": detail.get("after"),
                   "reason": "; ".join(part["reason"] for key in ("drop", "trend") if (part := detail.get(key)))}
            for name, detail in regressed.items()}


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state dict; tensors that share storage (tied embeddings) are copied once."""
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if key not in copies:
            copies[key] = tensor.detach().to("cpu", copy=True)
        out[name] = copies[key]
    return out


def _rounded(scores: dict[str, dict]) -> dict[str, dict]:
    return {name: {"score": round(s["score"], 4), "items": s["items"]} for name, s in scores.items()}
