"""The self-test's repair and rollback (lifelong/pieces/self_test.py): a mixin of `SelfTest`.

A repair round trains the round again with targeted replay of the regressed capabilities' stored
material and an EWC penalty on it; a rollback returns to the round's last passing canary check or its
start. The methods read the SelfTest's state (`options`, `_round`, `_snapshot`, `_pieces_snapshot`,
`score`, `regressions`, `capabilities`, `_decide`, `_model`).
"""

from __future__ import annotations

import copy
import random
import time

import torch

from lifelong.config import EwcConfig
from lifelong.data.records import Domain
from lifelong.pieces.ewc import Ewc
from lifelong.selftest.material import CANARY, _rounded, _why, stored_examples


class Repairs:
    """Repair and rollback for `SelfTest` (lifelong/pieces/self_test.py)."""

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
        config = self.context.config
        lr = config.training.lr
        try:
            if o.lr_factor != 1.0:
                config.training.lr = lr * o.lr_factor
            stats = self.context.run_round(domain, seed=config.seed * 1000 + 7919 * attempt + self._round,
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
        config = self.context.config
        lr = config.training.lr
        try:
            config.training.lr = lr * o.lr_factor
            stats = self.context.train_on(stored, seed=config.seed * 1000 + 7919 * attempt + self._round,
                                          name=f"{domain.name} (recover {', '.join(sorted(regressed))})",
                                          steps=o.recover_steps)
        finally:
            config.training.lr = lr
            checks = self._recovery["checks"]
            self._repairing, self._recovery = False, None
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
        for piece in self.context.pieces:
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
            self.context.examples(domain)  # the pieces see the round's examples again, then finish the round
            for piece in self.context.pieces:
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
        for piece in self.context.pieces:
            if piece is not self and piece.name in self._pieces_snapshot:
                piece.load_state_dict(copy.deepcopy(self._pieces_snapshot[piece.name]))

    def _others_state(self) -> dict:
        return {piece.name: piece.state_dict() for piece in self.context.pieces if piece is not self}

    def stored_examples(self, names: list[str], suite: dict[str, Domain]) -> list:
        """Training material for the regressed capabilities: documents and split=train items, never eval items.

        The canary's material is the stream's core set (general text and questions); a capability
        with none of its own falls back to the core set too.
        """
        examples, core = [], getattr(self.context, "core", None)
        for name in names:
            own = [] if name == CANARY else stored_examples(suite[name], self.context.config.evaluation.prompt)
            if not own and core is not None:
                own = stored_examples(core, self.context.config.evaluation.prompt)
            examples += own
        return list(dict.fromkeys(examples))

    def _targeted_replay(self, domain: Domain, stored: list, attempt: int) -> list:
        """replay_ratio / (1 - replay_ratio) stored examples per example of the round, cycled in a seeded order."""
        ratio = self.options.repair.replay_ratio
        if not stored or ratio <= 0:
            return []
        from lifelong.examples import plain_examples

        n_round = len(plain_examples(domain, self.context.config.evaluation.prompt,
                                     self.context.config.training.train_questions))
        want = max(1, round(ratio / (1 - ratio) * n_round))
        rng = random.Random(f"self-test-{self.context.config.seed}-{self._round}-{attempt}")
        out = []
        while len(out) < want:
            cycle = list(stored)
            rng.shuffle(cycle)
            out += cycle[:want - len(out)]
        return out

    def _ewc(self, stored: list, lam: float) -> Ewc:
        """An EWC penalty on the regressed material: Fisher at the current weights, anchored at the round's start."""
        ewc = Ewc(EwcConfig(ewc_lambda=lam, fisher_samples=self.options.repair.fisher_samples))
        ewc.context = self.context
        rng = random.Random(f"self-test-fisher-{self.context.config.seed}-{self._round}")
        sample = rng.sample(stored, min(len(stored), self.options.repair.fisher_samples))
        model = self.context.model
        ewc.fisher = ewc.estimate_fisher(model, sample)
        ewc.anchor = {name: self._snapshot[name].clone() for name in ewc.fisher if name in self._snapshot}
        ewc.fisher = {name: f for name, f in ewc.fisher.items() if name in ewc.anchor}
        return ewc

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        if self._repairing and self._repair_ewc is not None:
            return self._repair_ewc.penalty(model)
        return None
