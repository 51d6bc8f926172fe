"""notebooks/01-recover-deleted-secrets.ipynb: structure and its example images.

tests/test_notebooks.py executes every notebook; here: committed clean, a parameters cell, the
disclaimer, and example images whose fixed demo secrets are all found at HIGH confidence where
the notebook says they are (a tutorial where everything is 'low' teaches nothing).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from _examples import build_examples, make_examples_module
from conftest import REPO_ROOT

import layerforensics as lf
from layerforensics.secrets import find_secrets, redact_frame

NOTEBOOK = REPO_ROOT / "notebooks" / "01-recover-deleted-secrets.ipynb"


def test_notebook_has_no_outputs_and_a_parameters_cell() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert re.search(r"^IMAGE = ", "".join(code[0]["source"]), re.M)
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 10
    first = "".join(nb["cells"][0]["source"])
    assert "None of the credentials in these example images is real" in first
    assert not (REPO_ROOT / "notebooks" / "01-deleted-secrets.ipynb").exists()


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_examples(tmp_path_factory.mktemp("examples"))


def test_demo_secrets_look_real() -> None:
    ex = make_examples_module()
    values = [getattr(ex, n) for n in dir(ex) if n.startswith("DEMO_") and n != "DEMO_SSH_KEY"]
    assert len(values) >= 6
    for v in values:
        assert not re.search(r"(?i)fake|example|demo|test|dummy", v), v


def test_classic_rm_secret_image(examples: dict[str, Path]) -> None:
    ex = make_examples_module()
    with lf.open_image(examples["rm-secret"]) as img:
        df = find_secrets(img, redact=False)
        assert set(df["status"]) == {"deleted"} and (df["confidence"] == "high").all()
        assert set(df["path"]) == {"/root/.aws/credentials"}
        assert (df["layer"] == 1).all() and (df["status_layer"] == 2).all()
        assert {ex.DEMO_AWS_ACCESS_KEY_ID, ex.DEMO_AWS_SECRET_ACCESS_KEY} == set(df["secret"])


def test_leaky_app_image(examples: dict[str, Path]) -> None:
    ex = make_examples_module()
    with lf.open_image(examples["leaky-app"]) as img:
        df = find_secrets(img, redact=False)
        assert (df["confidence"] == "high").all(), df[["rule", "confidence", "reason"]]
        got = {
            (r.rule, r.source, None if pd.isna(r.path) else r.path, r.status)
            for r in df.itertuples()
        }
        assert got == {
            ("ssh-private-key-file", "file", "/app/deploy/id_ed25519", "deleted"),
            ("git-config-credentials", "file", "/app/.git/config", "deleted"),
            ("npm-access-token", "history", None, "history"),
            ("postgres-uri-password", "history", None, "history"),
            ("postgres-uri-password", "config", None, "config"),
        }
        assert set(df["secret"]) >= {
            ex.DEMO_NPM_TOKEN,
            ex.DEMO_GITLAB_TOKEN,
            ex.DEMO_DB_PASSWORD,
        }
        files = df[df["source"] == "file"]
        assert (files["layer"] == 1).all() and (files["status_layer"] == 3).all()
        # the history as the notebook displays it: no raw value left
        shown = redact_frame(img.history, img)
        text = "\n".join(shown["created_by"].dropna())
        assert ex.DEMO_NPM_TOKEN not in text and ex.DEMO_DB_PASSWORD not in text
        assert "NPM_TOKEN=npm_Es********" in text
        assert shown["created_by"].dtype == img.history["created_by"].dtype
        assert ex.DEMO_NPM_TOKEN in "\n".join(img.history["created_by"].dropna())
