"""The import check (docs/architecture.md): one import direction, no circles, every module in the table."""

from pathlib import Path

from lifelong import layers


def test_every_module_has_a_layer():
    assert layers.unplaced(layers.import_graph()) == []


def test_no_upward_imports():
    upward = layers.upward_imports(layers.import_graph())
    assert upward == [], "imports that point up the layer table (lifelong/layers.py):\n" + "\n".join(upward)


def test_no_import_circles():
    circles = layers.cycles(layers.import_graph())
    assert circles == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_architecture_doc_holds_the_table():
    doc = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    assert layers.table_markdown() in doc, "docs/architecture.md: paste lifelong.layers.table_markdown()"


def test_the_check_sees_lazy_and_type_checking_imports(tmp_path):
    package = tmp_path / "lifelong"
    (package / "pieces").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pieces" / "__init__.py").write_text("")
    (package / "learner.py").write_text("from lifelong.pieces.base import Piece\n")
    (package / "pieces" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lifelong.learner import Learner\n")
    (package / "errors.py").write_text("def f():\n    from lifelong import learner  # lazy\n")
    graph = layers.import_graph(package)
    assert graph["lifelong.pieces.base"] == {"lifelong.learner": 3}
    assert graph["lifelong.errors"] == {"lifelong.learner": 2}
    assert layers.cycles(graph) == [["lifelong.learner", "lifelong.pieces.base", "lifelong.learner"]]
    assert layers.upward_imports(graph) == [
        "lifelong.errors (foundation) -> lifelong.learner (learner), line 2",
        "lifelong.pieces.base (training) -> lifelong.learner (learner), line 3",
    ]


def test_package_inits_load_nothing_above_their_lowest_module():
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py first. Were a package's __init__ to import, at
    load, a module above the lowest of its own submodules, importing that submodule would drag the higher
    module in (a circle at run time that the graph above does not show: lifelong.pieces.base -> every piece
    -> the training loop -> lifelong.pieces.base)."""
    import ast

    known = layers.modules()
    graph = layers.import_graph()
    loading = []
    for package, path in known.items():
        if path.name != "__init__.py":
            continue
        members = [m for m in known if m.startswith(package + ".")]
        if not members:
            continue
        lowest = min(layers.layer_of(m) for m in members)
        at_load = set()
        for node in ast.parse(path.read_text()).body:  # module level only: imports in functions run later
            if isinstance(node, ast.Import | ast.ImportFrom):
                line = node.lineno
                at_load |= {target for target, first in graph[package].items() if first == line}
        loading += [f"{package} loads {target} at import" for target in sorted(at_load)
                    if layers.layer_of(target) > lowest]
    assert loading == []
