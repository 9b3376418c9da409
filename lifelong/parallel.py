"""Fan-out of independent tasks through Ray (docs/scale.md): `map_tasks(fn, items, workers, address)`.

`lifelong compare` runs its conditions with it; anything else that has independent jobs (the
candidates a piece tries) can use it the same way. With `workers <= 1` it is a plain loop in this
process, so the serial path needs no Ray at all. Otherwise each item runs as one Ray task, at most
`workers` at a time, on a local Ray instance started for the call (and stopped after it), or on the
cluster at `address` (or $RAY_ADDRESS). Results come back in the items' order, and a task that
raised re-raises its own exception here.

`fn` must be picklable (a module-level function) and importable where the tasks run: on a cluster,
install lifelong on every node. A task asks Ray for `cpus_per_task` CPUs and `gpus_per_task` GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lifelong.errors import LifelongError

T = TypeVar("T")
R = TypeVar("R")


def map_tasks(fn: Callable[[T], R], items: Sequence[T], workers: int = 1, address: str | None = None,
              cpus_per_task: float = 1, gpus_per_task: float = 0) -> list[R]:
    """[fn(item) for item in items], run as Ray tasks (at most `workers` at once) when workers > 1."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    ray = _ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address is None:  # a local instance sized for the tasks
            options["num_cpus"] = max(1, int(workers * cpus_per_task + 0.999))
        ray.init(address=address, **options)
    try:
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(fn)
        return _bounded(ray, task, items, workers)
    finally:
        if started:
            ray.shutdown()


def _bounded(ray, task, items: list, workers: int) -> list:
    """Submit the items with at most `workers` tasks in flight; results in the items' order."""
    results: dict[int, Any] = {}
    pending: dict[Any, int] = {}
    queue = list(enumerate(items))
    while queue or pending:
        while queue and len(pending) < workers:
            index, item = queue.pop(0)
            pending[task.remote(item)] = index
        [done], _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done)
        try:
            results[index] = ray.get(done)
        except ray.exceptions.RayTaskError as error:
            for ref in pending:
                ray.cancel(ref, force=True)
            cause = getattr(error, "cause", None)
            raise (cause if isinstance(cause, BaseException) else error) from None
    return [results[i] for i in range(len(items))]


def _ray():
    try:
        import ray
    except ImportError:
        raise LifelongError("parallel.workers > 1 runs tasks through Ray, which is not installed: "
                            "pip install ray (requirements.txt pins the tested version)") from None
    return ray
