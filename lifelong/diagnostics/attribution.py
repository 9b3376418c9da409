"""Layer attribution: which layer group's change cost a regressed score.

For every score that fell in a round (an earlier domain or the canary), each layer group in turn is
put back to its pre-round weights (the rest keeps the round's weights) and the score is measured
again; returned = (restored - after) / (before - after) is the share of the loss that this group's
change explains: 1 when putting the group back recovers the whole score, 0 when it recovers nothing,
above 1 or below 0 when it over- or under-shoots. Groups interact, so the shares need not add up to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lifelong.diagnostics.groups import LayerGroups, canonical_name, load_weights, snapshot_weights


def regressed(before: dict[str, float], after: dict[str, float], threshold: float = 0.0) -> list[str]:
    """The sources whose score dropped by more than `threshold`."""
    return [name for name in before if name in after and before[name] - after[name] > threshold]


def attribute(model: torch.nn.Module, pre_round: dict[str, torch.Tensor], groups: LayerGroups,
              score: Callable[[str], float], before: dict[str, float], after: dict[str, float],
              threshold: float = 0.0) -> dict:
    """Per regressed source, the returned share of its score for every layer group put back.

    `pre_round`: the weights as the round began, by canonical name (groups.snapshot_weights);
    `score(source)`: scores the model as it is now. The model's weights are the same afterwards.
    """
    targets = regressed(before, after, threshold)
    out: dict = {"regressed": targets, "restored": {t: {} for t in targets}, "returned": {t: {} for t in targets}}
    if not targets:
        return out
    names = [canonical_name(n) for n, _ in model.named_parameters()]
    by_group: dict[str, set[str]] = {}
    for name in names:
        by_group.setdefault(groups.of_param(name), set()).add(name)
    post_round = snapshot_weights(model)
    try:
        for group in groups.names:
            members = {n for n in by_group.get(group, set()) if n in pre_round}
            changed = {n for n in members if not torch.equal(pre_round[n], post_round[n])}
            if not members:
                continue
            if changed:
                load_weights(model, pre_round, changed)
            for target in targets:
                restored = score(target) if changed else after[target]
                out["restored"][target][group] = restored
                out["returned"][target][group] = (restored - after[target]) / (before[target] - after[target])
            if changed:
                load_weights(model, post_round, changed)
    finally:
        load_weights(model, post_round)
    return out
