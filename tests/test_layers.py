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
