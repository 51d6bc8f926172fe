"""notebooks/01-deleted-secrets.ipynb: structure (tests/test_notebooks.py executes every notebook)."""

from __future__ import annotations

import json

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "01-deleted-secrets.ipynb"


def test_notebook_has_no_outputs_and_a_parameters_cell() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 10
