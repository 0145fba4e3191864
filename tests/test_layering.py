"""The package's layers point one way: a module imports its own sub-package and earlier layers.

Every `import` and `from ... import` in slimllm/ is read with `ast` (wherever it stands: module
level, function body, `if TYPE_CHECKING`), and checked against `slimllm.LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import slimllm

PACKAGE = Path(slimllm.__file__).resolve().parent


def _layer_of(module: str) -> str | None:
    """The sub-package of a dotted slimllm module name (None for `slimllm` itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "slimllm" else None


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported slimllm module, at module level?) for every import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from slimllm import x` imports the sub-package x.
            names = (
                [f"slimllm.{a.name}" for a in node.names]
                if node.module == "slimllm"
                else [node.module]
            )
        else:
            continue
        found += [(node.lineno, n, id(node) in top) for n in names if n.startswith("slimllm")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_sub_package_is_a_declared_layer_with_a_docstring() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(slimllm.LAYERS)
    for name in slimllm.LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and len(doc) > 60, f"slimllm/{name}/__init__.py needs a docstring"
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside every layer: {loose}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    here = path.relative_to(PACKAGE).parts[0]
    rank = {name: i for i, name in enumerate(slimllm.LAYERS)}
    for line, module, _ in _imports(path):
        layer = _layer_of(module)
        assert layer is not None, f"{path.name}:{line} imports the package root"
        assert rank[layer] <= rank[here], (
            f"slimllm/{here} ({path.name}:{line}) imports {module}, a later layer"
        )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_stand_at_module_level(path: Path) -> None:
    """No import inside a function or an `if`: a cycle cannot hide behind a late import."""
    inner = [f"{path.name}:{line} {m}" for line, m, top in _imports(path) if not top]
    assert inner == []


def _module_name(path: Path) -> str:
    return ".".join(("slimllm", *path.relative_to(PACKAGE).with_suffix("").parts))


def test_no_import_cycles_inside_a_layer() -> None:
    """Modules of one sub-package may import each other, but never in a circle."""
    known = {_module_name(p) for p in _modules()}
    graph: dict[str, set[str]] = {}
    for path in _modules():
        edges = set()
        for _, module, _ in _imports(path):
            # `from slimllm.method import channels` names the module slimllm.method.channels.
            edges |= {m for m in (module,) if m in known}
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                edges |= {f"{node.module}.{a.name}" for a in node.names} & known
        graph[_module_name(path)] = edges
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from slimllm.cli import main\n")
    assert _imports(bad) == [(2, "slimllm.cli", False)]
    assert _layer_of("slimllm.cli.common") == "cli"
