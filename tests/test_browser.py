"""The explorer in a real JupyterLab, driven by headless Chromium through Playwright.

Starts ``jupyter lab`` on 127.0.0.1 (free port, no token) in a temporary root holding a copy
of a small notebook and of ``data/layers-demo.tar``, runs the notebook, picks layer 1 and
``/etc/motd`` in the explorer, and checks the preview shows what layer 1 wrote. Skips when
Playwright or Chromium is missing (fails under ``LAYERFORENSICS_REQUIRE_ALL=1``). Screenshots go
to ``$LAYERFORENSICS_SCREENSHOTS`` (default: the system temp folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT, missing

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("LAYERFORENSICS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("LAYERFORENSICS_SCREENSHOTS", tempfile.gettempdir()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        missing(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        missing("jupyterlab is not installed")
    example = REPO_ROOT / "data" / "layers-demo.tar"
    if not example.is_file():
        subprocess.run([sys.executable, str(REPO_ROOT / "data" / "make_examples.py")], check=True)
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(example, root / "layers-demo.tar")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import layerforensics as lf\n"
            "from layerforensics.explore import explore\n"
            "img = lf.open_image('layers-demo.tar')\n"
            "explore(img)"
        )
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / "explore.ipynb")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]),
    )
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("jupyter lab did not start:\n" + (root / "lab.log").read_text())
                time.sleep(0.3)
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _option_index(select, text: str) -> int:  # type: ignore[no-untyped-def]
    labels = select.evaluate("s => Array.from(s.options).map(o => o.textContent)")
    for i, label in enumerate(labels):
        if label.replace("\u00a0", " ").rstrip().endswith(text):
            return i
    raise AssertionError(f"no option ending with {text!r} in {labels}")


def test_explorer_in_jupyterlab(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _root = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/explore.ipynb?reset")
            cell = page.locator(".jp-Notebook .jp-Cell").first
            cell.wait_for(timeout=60_000)
            # wait for the kernel, then run the cell
            expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
            # the kernel must be up before running, or the run is silently dropped
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(
                timeout=60_000
            )
            page.wait_for_timeout(1000)
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            expect(cell.locator(".jp-InputPrompt")).not_to_have_text("[ ]:", timeout=60_000)
            layers = page.locator(".lf-layers select")
            layers.wait_for(timeout=40_000)
            tree = page.locator(".lf-tree select")
            page.screenshot(path=str(SHOTS / "lf-explorer-initial.png"))

            layers.select_option(index=1)  # layer 1 overwrote /etc/motd
            page.wait_for_timeout(500)
            tree.select_option(index=_option_index(tree, "etc/"))
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.lf-tree option'))"
                ".some(o => o.textContent.includes('motd'))",
                timeout=20_000,
            )
            tree.select_option(index=_option_index(tree, "motd"))
            preview = page.locator(".lf-preview")
            expect(preview).to_contain_text(
                "Welcome (version 2: overwritten in layer 1)", timeout=20_000
            )
            expect(page.locator(".lf-details")).to_contain_text("modified")
            expect(page.locator(".lf-details")).to_contain_text("deleted by layer 5")
            page.screenshot(path=str(SHOTS / "lf-explorer-layer1-motd.png"))

            # another version of the same path, from layer 0, through the version dropdown
            page.locator(".lf-preview").scroll_into_view_if_needed()
            version = page.locator(".lf-version select")
            version.select_option(index=0)
            expect(preview).to_contain_text("Welcome (version 1)", timeout=20_000)
            page.screenshot(path=str(SHOTS / "lf-explorer-layer0-version.png"))
        except Exception:
            page.screenshot(path=str(SHOTS / "lf-explorer-failure.png"))
            raise
        finally:
            browser.close()
