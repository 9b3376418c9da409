"""The package's layers: which module may import which (docs/architecture.md draws the same table).

Every module of `lifelong` belongs to one layer. A module may import modules of its own layer and of
the layers below it, never one above; and no import arrows may form a circle, within a layer or across.
An import inside a function, or under `if TYPE_CHECKING:`, is an arrow like any other.

`LAYERS` is the one table; `tests/test_layers.py` builds the import graph with `ast` (`import_graph`)
and fails on an upward arrow or a circle (`upward_imports`, `cycles`), naming it.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

# Bottom to top: (name, what it holds, module patterns). A module named exactly takes that layer; any other
# takes the layer of the first wildcard pattern it matches (`lifelong.pieces.base` is named in `training`,
# the rest of `lifelong.pieces.*` is `pieces`).
LAYERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("foundation", "errors, files and folders, fault checks, precision, Ray: no lifelong imports but these",
     ("lifelong", "lifelong.errors", "lifelong.files", "lifelong.faults", "lifelong.precision",
      "lifelong.parallel", "lifelong.layers")),
    ("data", "records and their files, sources, the general set, prepared-stream paths, stream.yaml settings",
     ("lifelong.data", "lifelong.data.records", "lifelong.data.sources", "lifelong.data.sources.*",
      "lifelong.data.prepared", "lifelong.data.general", "lifelong.data.stream_spec", "lifelong.data.fields")),
    ("options", "the config schema: every piece's options (lifelong/options/), assembled by config.py",
     ("lifelong.options", "lifelong.options.*", "lifelong.config")),
    ("models", "loading models, their layer structure, generation, prompts and scoring",
     ("lifelong.models", "lifelong.model_layers", "lifelong.generation", "lifelong.evaluation",
      "lifelong.evaluation.*")),
    ("streams", "building prepared streams (a model picks the canary) and loading a stream",
     ("lifelong.data.prepare", "lifelong.data.stream")),
    ("training", "training examples, the piece interface and its context, the training loop, checkpoints, metrics",
     ("lifelong.examples", "lifelong.rounds", "lifelong.pieces.base", "lifelong.training", "lifelong.checkpoint",
      "lifelong.metrics")),
    ("piece helpers", "what pieces are made of: diagnostics, self-test statistics, ReSTEM, self-directed material",
     ("lifelong.diagnostics", "lifelong.diagnostics.*", "lifelong.selftest", "lifelong.selftest.*",
      "lifelong.restem", "lifelong.restem.*", "lifelong.selfdirected", "lifelong.selfdirected.*")),
    ("pieces", "one technique per module, and the registry",
     ("lifelong.pieces", "lifelong.pieces.*")),
    ("learner", "the model, its tokenizer and its pieces; one learning round",
     ("lifelong.learner",)),
    ("report", "report.html from a run's files (html helpers, the sections, the dashboards)",
     ("lifelong.report_html", "lifelong.report", "lifelong.diagnostics.report",
      "lifelong.selftest.dashboard")),
    ("run", "a run over a stream, `learn` sessions, `eval`, `compare`, the stream's defaults",
     ("lifelong.stream_defaults", "lifelong.experiment", "lifelong.learn", "lifelong.evaluate", "lifelong.compare")),
    ("cli", "the `lifelong` command",
     ("lifelong.cli", "lifelong.__main__")),
]

PACKAGE_DIR = Path(__file__).parent


def layer_of(module: str) -> int:
    """The layer index of a module (0 = foundation); KeyError when no pattern of the table matches."""
    for index, (_, _, patterns) in enumerate(LAYERS):
        if module in patterns:
            return index
    for index, (_, _, patterns) in enumerate(LAYERS):
        if any("*" in pattern and fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise KeyError(module)


def modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its __init__.py)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _target(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}, for imports of the package's own modules.

    Every Import/ImportFrom node counts, wherever it stands (module level, a function, TYPE_CHECKING).
    `from a.b import c` is an arrow to `a.b.c` when that is a module, else to `a.b`."""
    known = modules(package_dir)
    root = package_dir.name
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        arrows = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in known else base)
            for name in targets:
                if name != root and not name.startswith(root + "."):
                    continue
                target = _target(name, known)
                if target and target != module:
                    arrows.setdefault(target, node.lineno)
    return graph


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    """Every arrow from a module to one in a higher layer, as 'a (layer) -> b (layer), line n'."""
    found = []
    for module, arrows in sorted(graph.items()):
        for target, line in sorted(arrows.items()):
            if layer_of(target) > layer_of(module):
                found.append(f"{module} ({LAYERS[layer_of(module)][0]}) -> {target} "
                             f"({LAYERS[layer_of(target)][0]}), line {line}")
    return found


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import circles: each strongly connected component of more than one module, as one circle
    through it (the first module repeated at the end)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle(component, graph) for component in components]


def _circle(component: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """One circle through a strongly connected component, from its first module (breadth-first)."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph.get(node, {})):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target in members and target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    return [*component, start]


def unplaced(graph: dict[str, dict[str, int]]) -> list[str]:
    """Modules no pattern of LAYERS names."""
    missing = []
    for module in sorted(graph):
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    return missing


def table_markdown() -> str:
    """LAYERS as the markdown table docs/architecture.md holds (top layer first)."""
    rows = ["| layer | holds | modules (under `lifelong.`) | may import |", "|---|---|---|---|"]
    for index in range(len(LAYERS) - 1, -1, -1):
        name, what, patterns = LAYERS[index]
        below = {0: "", 1: ", layer 0"}.get(index, f", layers 0-{index - 1}")
        shown = ", ".join(f"`{p.removeprefix('lifelong.') if p != 'lifelong' else '__init__'}`" for p in patterns)
        rows.append(f"| {index} {name} | {what} | {shown} | its own{below} |")
    return "\n".join(rows)
