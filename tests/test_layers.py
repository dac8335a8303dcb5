"""The architecture as a test: imports go one way, and the hazmat layer stays where it belongs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ppml

SOURCE = Path(ppml.__file__).resolve().parent

# Lower layers first; a module may import its own layer and those before it.
LAYERS = [
    {"ppml.errors", "ppml.fileio", "ppml.datasets"},
    {"ppml.crypto"},
    {"ppml.encoding"},
    {"ppml.wire"},
    {"ppml.features"},
    # The page's assets and headers: the service mounts them, they need nothing above features.
    {"ppml.web"},
    {"ppml.model"},
    {"ppml.roles"},
    {"ppml.service"},
    {"ppml.cli"},
]
# Only these may reach below the safe layer.
HAZMAT_USERS = ("ppml.crypto", "ppml.roles")


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _layer(module: str) -> int:
    package = _package(module)
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("ppml.")}


@pytest.mark.parametrize(("module", "path"), [m for m in _modules() if m[0] != "ppml"])
def test_imports_go_one_way(module: str, path: Path) -> None:
    own = _layer(module)
    for imported in _imports(path):
        if _package(imported) == "ppml.__version__" or imported == "ppml.__version__":
            continue
        assert _layer(imported) <= own, f"{module} (layer {own}) imports {imported}"
        if imported.startswith("ppml.crypto.hazmat"):
            assert module.startswith(HAZMAT_USERS), f"{module} reaches into the hazmat layer"


def test_only_the_service_and_the_cli_reach_the_page() -> None:
    # ppml.web sits low enough to use the feature spec, but it is the service's
    # front end: the model, the roles and the crypto never depend on it.
    for module, path in _modules():
        if module.startswith("ppml.web") or _package(module) in {"ppml.service", "ppml.cli"}:
            continue
        reached = {name for name in _imports(path) if _package(name) == "ppml.web"}
        assert not reached, f"{module} imports {sorted(reached)}"


def test_the_package_exports_the_workflow() -> None:
    assert set(ppml.__all__) == {"__version__", *ppml._EXPORTS}
    for name in ppml.__all__:
        assert getattr(ppml, name) is not None
    with pytest.raises(AttributeError):
        _ = ppml.no_such_name  # type: ignore[attr-defined]
