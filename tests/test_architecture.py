"""The shape of the code: one folder per layer, layers import downward only, no import circle (function-local
imports count), small files and functions, private APIs of libraries touched only in `compat`, MLflow only in
`tracking`, no dates or commit ids in the source, and no test hook in the product."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "rnncompare"
MAX_FILE_LINES = 400
MAX_TOP_LEVEL_MODULES = 5
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


def _imported_names(path: Path) -> list[str]:
    """Every module (and `module.name`) `path` imports, function-local imports included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _importers_of(prefix: str) -> set[str]:
    return {
        str(path.relative_to(PACKAGE))
        for path in SOURCES
        if any(name == prefix or name.startswith(prefix + ".") for name in _imported_names(path))
    }


def _private(name: str) -> bool:
    """Whether a dotted import names a library's private module or attribute (a part starting with "_", or the
    `src` trees of Keras and keras-tuner, or a module inside deepsig)."""
    parts = name.split(".")
    library = parts[0]
    if library in ("keras", "keras_tuner") and parts[1:2] == ["src"]:
        return True
    if library == "deepsig" and len(parts) > 1 and parts[1] != "aso":
        return True
    return library in ("keras", "keras_tuner", "jax", "mlflow", "deepsig") and any(
        part.startswith("_") and part != "__future__" for part in parts[1:]
    )


PRIVATE_STRINGS = re.compile(r"[\"'](keras\.src|keras_tuner\.src|jax\._src|deepsig\.aso)\b")


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_private_apis_of_libraries_are_used_only_in_compat(path):
    relative = path.relative_to(PACKAGE)
    if relative.parts[0] == "compat":
        return
    assert [name for name in _imported_names(path) if _private(name)] == []
    # a private module named as a string (sys.modules lookups, importlib) counts as well
    assert PRIVATE_STRINGS.findall(path.read_text()) == []


def test_the_private_name_rule_catches_what_it_should():
    assert _private("keras.src.utils.module_utils") and _private("keras_tuner.src.config")
    assert _private("mlflow.tracking._tracking_service") and _private("jax._src.compilation_cache")
    assert _private("deepsig.aso_module") and not _private("deepsig.aso")
    assert not _private("mlflow.tracking.MlflowClient") and not _private("keras.layers.LSTM")


def test_each_compat_module_is_checked_against_the_range_the_dependencies_pin():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    from rnncompare.compat import deepsig, jax, keras, keras_tuner, mlflow

    for distribution, module in (
        ("keras", keras),
        ("keras-tuner", keras_tuner),
        ("mlflow", mlflow),
        ("jax", jax),
        ("deepsig", deepsig),
    ):
        pinned = next(pin for pin in pins if re.match(rf"{distribution}(\[[a-z]+\])?[<>=~]", pin))
        assert re.sub(r"^[a-z-]+(\[[a-z]+\])?", "", pinned) == module.SUPPORTED, distribution


def test_at_most_five_modules_sit_at_the_top_and_every_folder_is_a_layer():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    folders = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert folders == layered - {"cli"}
    assert contract["containers"] == ["rnncompare"]


def test_no_date_commit_id_or_test_hook_in_the_source():
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), path
        # a commit id: 7 to 40 hex digits with both letters and digits, outside a colour ("#1f77b4")
        commits = [
            word
            for word in re.findall(r"(?<![#\w])[0-9a-f]{7,40}\b", text)
            if re.search(r"[a-f]", word) and re.search(r"\d", word)
        ]
        assert commits == [], path
        # the product never kills itself on a variable: fault injection is tests/scripts/fault_injection's
        assert "os.kill(os.getpid()" not in text, path


def test_keras_tuner_internals_are_patched_in_compat_only():
    assert _importers_of("keras_tuner.src") == {"compat/keras_tuner.py", "compat/keras_tuner_distributed.py"}


def test_only_the_tracking_package_and_its_compat_module_import_mlflow():
    importers = _importers_of("mlflow")
    assert importers and all(path.startswith("tracking/") or path == "compat/mlflow.py" for path in importers)
