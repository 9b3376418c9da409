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
import time
from pathlib import Path

import torch

from lifelong.config import SelfTestConfig
from lifelong.data.records import Domain
from lifelong.errors import ConfigError
from lifelong.pieces.base import Piece
from lifelong.pieces.ewc import Ewc
from lifelong.pieces.self_test_repair import Repairs
from lifelong.selftest import regression
from lifelong.selftest.lmeval_tasks import load_lmeval_tasks
from lifelong.selftest.material import CANARY, _rounded, _why, snapshot, stored_examples  # noqa: F401  (old home)


class SelfTest(Repairs, Piece):
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
    def attach(self, context) -> None:
        super().attach(context)
        self.tasks = load_lmeval_tasks(list(self.options.diagnostic_tasks), base=Path.cwd())

    def capabilities(self, upto: str | None = None) -> dict[str, Domain]:
        """The diagnostic suite: canary, every domain learned so far (and `upto`), the diagnostic tasks."""
        stream = self.context.stream
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
        return self.context.accelerator.unwrap_model(self.context.model)

    def score(self, names: list[str], suite: dict[str, Domain]) -> dict[str, dict]:
        evaluator = self.context.evaluator
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
        return bool(getattr(self.context, "reference", False))

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
            self.context.log({"event": "selftest", "round": self.rounds, "phase": "baseline", "domain": domain.name,
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
        self.context.log({"event": "canary", "round": self._round, "domain": self._domain.name if self._domain
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
        self.context.log({"event": "selftest", "round": self._round, "phase": "after_round", "domain": domain.name,
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
        self.context.log({"event": "selftest", "round": self._round, "phase": "accepted", "domain": domain.name,
                          "scores": _rounded(scores), "seconds": round(time.perf_counter() - started, 2)})
        self._snapshot = self._pieces_snapshot = self._good = self._alarm = None
        return kept_stats

    def _checked(self, suite: dict[str, Domain], domain: Domain) -> list[str]:
        """The canary always; the whole suite every `diagnostic_every` rounds and after an in-round alarm."""
        if self._alarm is not None or self._round % self.options.diagnostic_every == 0 or CANARY not in suite:
            return list(suite)
        return [CANARY]

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _accept(self, name: str, now: dict, round_: int) -> None:
        entry = {"round": round_, "score": now["score"], "items": now["items"]}
        self.reference[name] = entry
        self.history.setdefault(name, []).append(entry)

    def _decide(self, event: dict) -> None:
        self.decisions.append(event)
        self.context.log(event)

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
