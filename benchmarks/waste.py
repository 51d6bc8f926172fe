"""Overhead of the wasted-space analysis over core indexing (target: at most ~20 %).

Builds a synthetic image (``--files`` entries over ``--layers`` layers, with overwrites,
chmod copies, file and directory deletions) in a temporary folder, then times
``open_image`` + ``files``/``changes``/``filesystem()`` (core) against ``efficiency`` (both
modes) + ``waste`` + ``layer_waste`` (this module).

    python benchmarks/waste.py [--files 20000] [--layers 10]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import layerforensics as lf
from layerforensics.builder import Dir, File, ImageBuilder, Whiteout
from layerforensics.waste import efficiency, layer_waste, waste


def build(path: Path, n_files: int, n_layers: int) -> None:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--layers", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tar"
        build(path, a.files, a.layers)
        t0 = time.perf_counter()
        img = lf.open_image(path)
        _ = img.files, img.changes, img.filesystem(), img.layers
        t1 = time.perf_counter()
        efficiency(img)
        efficiency(img, mode="dive")
        waste(img)
        layer_waste(img)
        t2 = time.perf_counter()
    core, ours = t1 - t0, t2 - t1
    print(
        f"files={a.files} layers={a.layers}: core indexing {core:.2f}s, "
        f"waste+efficiency {ours:.2f}s, overhead {100 * ours / core:.0f}%"
    )


if __name__ == "__main__":
    main()
