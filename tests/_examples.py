"""The example images of ``data/`` for tests (regenerated into a temp folder, never into data/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from conftest import REPO_ROOT


def make_examples_module() -> ModuleType:
    """``data/make_examples.py`` imported as a module (its secrets are constants there)."""
    path = REPO_ROOT / "data" / "make_examples.py"
    spec = importlib.util.spec_from_file_location("make_examples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_examples(folder: Path) -> dict[str, Path]:
    """Write the examples into ``folder``; returns ``{name: path}``."""
    make_examples_module().main(["--out", str(folder)])
    return {p.stem: p for p in folder.glob("*.tar")}
