"""The import paths users rely on: the public API, every import the docs show, and the wings'
layer contract (docs/architecture.md), checked by import-linter."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs" / "flows").glob("*.md")) + [
    ROOT / "README.md"]
FROM_IMPORT = re.compile(r"^\s*from (regflow(?:\.\w+)*) import \(?([\w ,]+)\)?\s*$", re.M)
IMPORT = re.compile(r"^\s*import (regflow(?:\.\w+)*)\s*$", re.M)
# `regflow.wing.module` in prose or code spans: a module path the docs point readers to.
DOTTED = re.compile(r"`(regflow(?:\.[a-z_]+)+)(?:\.[A-Za-z_]+)*`")


def documented_imports() -> list[tuple[str, str, str | None]]:
    """(doc, module, name) for each import in the docs; name None for `import module`."""
    found: list[tuple[str, str, str | None]] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for module, names in FROM_IMPORT.findall(text):
            for name in names.split(","):
                name = name.strip().split(" as ")[0]
                if name:
                    found.append((doc.name, module, name))
        found += [(doc.name, module, None) for module in IMPORT.findall(text)]
    return found


def documented_modules() -> set[str]:
    """Every `regflow.a.b` in a code span of the docs that names a module of the package."""
    out = set()
    for doc in DOCS:
        for dotted in DOTTED.findall(doc.read_text(encoding="utf-8")):
            parts = dotted.split(".")
            # the longest prefix that is a module file or package of regflow
            for end in range(len(parts), 1, -1):
                path = ROOT.joinpath(*parts[:end])
                if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
                    out.add(".".join(parts[:end]))
                    break
    return out


IMPORTS = documented_imports()


def test_the_docs_show_imports() -> None:
    """The collector finds the docs' imports (a broken pattern would make the tests below empty)."""
    modules = {module for _, module, _ in IMPORTS}
    assert {"regflow", "regflow.testing", "regflow.web"} <= modules


@pytest.mark.parametrize(("doc", "module", "name"), IMPORTS,
                         ids=[f"{d}:{m}:{n}" for d, m, n in IMPORTS])
def test_every_documented_import_works(doc: str, module: str, name: str | None) -> None:
    imported = importlib.import_module(module)
    if name is not None:
        assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
            f"{doc}: from {module} import {name}")


@pytest.mark.parametrize("module", sorted(documented_modules()))
def test_every_module_the_docs_name_exists(module: str) -> None:
    importlib.import_module(module)


def test_public_api() -> None:
    """Everything in regflow.__all__, regflow.testing.__all__ and the web factory is there."""
    import regflow.testing
    import regflow.web

    for package in (regflow, regflow.testing):
        missing = [name for name in package.__all__ if not hasattr(package, name)]
        assert not missing, f"{package.__name__}.__all__ names what it lacks: {missing}"
    assert callable(regflow.web.create_app)
    assert callable(regflow.web.wait_for_mail)


def test_no_old_flat_modules_remain() -> None:
    """The package's top level holds the public API, the engine, its wiring and the wings only."""
    top = sorted(p.stem for p in (ROOT / "regflow").glob("*.py"))
    assert top == ["__init__", "__main__", "bootstrap", "engine"], top


def test_wings_point_one_way() -> None:
    """`lint-imports` keeps the layer contract in pyproject.toml."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
