"""The shape of the code: layers import downward only, no import circle (function-local imports count), small
files and functions, keras-tuner internals and MLflow each touched in one place."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "rnncompare"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 80


def test_every_layer_imports_only_the_layers_below_it():
    # The contract (the layer order) is in pyproject.toml, [tool.importlinter]. In a subprocess: import-linter's
    # console keeps the stdout it found first, which pytest's capture closes.
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout
    assert "Layers import downward only KEPT" in completed.stdout


def _cycle(graph) -> list[str] | None:
    """One import circle among the modules of `graph`, or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported] if imported in path else [module, imported]
            if imported not in state:
                found = visit(imported, path + [imported])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph.modules):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_circle_among_the_packages_modules():
    graph = grimp.build_graph("rnncompare", cache_dir=None)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_circle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for module in ("p.a", "p.b", "p.c"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycle(graph) is None
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycle(graph) == ["p.a", "p.b", "p.c", "p.a"]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_files_and_functions_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno + 1 <= MAX_FUNCTION_LINES, f"{node.name} at line {node.lineno}"


def _importers_of(prefix: str) -> set[str]:
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == prefix or name.startswith(prefix + ".") for name in names):
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_keras_tuner_internals_are_patched_in_one_module():
    assert _importers_of("keras_tuner.src") == {"kt_compat.py"}


def test_only_the_tracking_package_imports_mlflow():
    assert _importers_of("mlflow") and all(path.startswith("tracking/") for path in _importers_of("mlflow"))
