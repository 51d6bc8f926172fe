"""Overhead of the wasted-space analysis over core indexing (target: at most ~20 %).

Times, best of ``--repeat`` (a freshly opened image each time, so nothing is cached between
runs):

- core indexing: ``open_image`` + ``layers``, ``files``, ``changes``, ``filesystem()``,
  ``deleted`` (the same work as ``benchmarks/core_index.py``);
- this module: ``efficiency`` (default mode) + ``efficiency(mode="dive")`` + ``waste`` +
  ``layer_waste``, on the image the core just indexed.

Without ``--image`` it builds a synthetic image (``--files`` entries over ``--layers`` layers,
with overwrites, file and directory deletions) in a temporary folder. With ``--image PATH`` it
measures any existing image, e.g. the core benchmark image::

    python benchmarks/core_index.py   # builds benchmarks/out/image-<key>/ once
    python benchmarks/waste.py --image benchmarks/out/image-*/bench-docker.tar
    python benchmarks/waste.py [--files 20000] [--layers 10] [--repeat 3]

The machine's load average is printed before and after: on a busy machine, compare runs made
under similar load.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import layerforensics as lf
from layerforensics.builder import Dir, File, ImageBuilder, Whiteout
from layerforensics.waste import efficiency, layer_waste, waste


def build(path: Path, n_files: int, n_layers: int) -> None:
    """Write a synthetic docker-save archive to ``path``."""
    rng = random.Random(0)
    b = ImageBuilder()
    per = n_files // n_layers
    for layer in range(n_layers):
        entries: list = [Dir(f"/l{layer}")]
        for i in range(per):
            d = f"/l{rng.randrange(layer + 1)}/d{i % 50}"
            entries.append(File(f"{d}/f{i}", b"x" * rng.randrange(1, 400)))
        if layer:
            entries += [Whiteout(f"/l{layer - 1}/d{k}") for k in range(3)]
            entries += [Whiteout(f"/l0/d{k}/f{k}") for k in range(10, 40)]
        b.layer(entries, created_by=f"RUN step {layer}")
    b.save_docker(path)


def measure(path: Path, repeat: int) -> tuple[float, float, dict[str, float]]:
    """Best-of-``repeat`` seconds: core indexing, the waste analysis, and each waste step."""
    best_core = best_ours = float("inf")
    steps: dict[str, float] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        img = lf.open_image(path)
        _ = img.layers, img.files, img.changes, img.filesystem(), img.deleted
        t1 = time.perf_counter()
        for name, fn, kw in (
            ("efficiency", efficiency, {}),
            ("efficiency(dive)", efficiency, {"mode": "dive"}),
            ("waste", waste, {}),
            ("layer_waste", layer_waste, {}),
        ):
            s = time.perf_counter()
            fn(img, **kw)
            steps[name] = min(steps.get(name, float("inf")), time.perf_counter() - s)
        t2 = time.perf_counter()
        best_core, best_ours = min(best_core, t1 - t0), min(best_ours, t2 - t1)
    return best_core, best_ours, steps


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, help="measure this image instead of a synthetic one")
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"load average before: {_load()} ({os.cpu_count()} CPUs)")
    if a.image is not None:
        label = str(a.image)
        core, ours, steps = measure(a.image, a.repeat)
    else:
        label = f"synthetic files={a.files} layers={a.layers}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.tar"
            build(path, a.files, a.layers)
            core, ours, steps = measure(path, a.repeat)
    print(f"load average after:  {_load()}")
    detail = ", ".join(f"{k} {v:.3f}s" for k, v in steps.items())
    print(
        f"{label} (best of {a.repeat}): core indexing {core:.2f}s, "
        f"waste+efficiency {ours:.2f}s ({detail}), overhead {100 * ours / core:.0f}%"
    )


if __name__ == "__main__":
    main()
