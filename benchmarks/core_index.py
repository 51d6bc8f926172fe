"""Core indexing speed against GNU tar, side by side in one run.

Builds (once, under ``benchmarks/out/``, git-ignored) a ~1 GB uncompressed ``docker save`` with
~70k entries from trees already on this machine (an installed Python library dir and
/usr/share), plus the same image with gzip layers as an OCI layout. Then times, best of N:

- GNU tar: ``tar -xOf ARCHIVE LAYER | tar -tv`` for every layer (uncompressed), and
  ``gzip -dc BLOB | tar -tv`` for every gzip blob;
- layerforensics: ``open_image`` + ``layers``, ``files``, ``changes``, ``filesystem()``,
  ``deleted`` (every layer read once, both digests verified).

Usage: ``python benchmarks/core_index.py [--repeat 3] [--trees DIR ...]``. Reports both ratios
and the peak RSS of the layerforensics run (a fresh subprocess per measurement).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def _tar_layer(src_dirs: list[str], dest: Path, extra: list[str] | None = None) -> None:
    cmd = [
        "tar",
        "--format=posix",
        "--pax-option=delete=atime,delete=ctime",
        "-cf",
        str(dest),
        "-C",
        "/",
        *[d.lstrip("/") for d in src_dirs],
    ]
    subprocess.run(cmd + (extra or []), check=True, stderr=subprocess.DEVNULL)


def build(trees: list[str]) -> tuple[Path, Path]:
    OUT.mkdir(exist_ok=True)
    archive = OUT / "bench-docker.tar"
    oci = OUT / "bench-oci-gzip"
    done = OUT / "built"
    if done.exists():
        return archive, oci
    layers = []
    for n, tree in enumerate(trees):
        dest = OUT / f"layer{n}.tar"
        _tar_layer([tree], dest)
        layers.append(dest)
    # a last layer deleting one subtree of the first, as real images do
    first = trees[0].strip("/")
    victim = sorted(p for p in os.listdir("/" + first) if os.path.isdir(f"/{first}/{p}"))[0]
    wh = OUT / f"layer{len(trees)}.tar"
    with tarfile.open(wh, "w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"{first}/.wh.{victim}")
        t.addfile(info)
    layers.append(wh)
    diff_ids = [_sha_file(p) for p in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"COPY tree {n}"} for n in range(len(layers))],
        }
    ).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    (OUT / cfg_name).write_bytes(config)
    names = [f"{n:02d}/layer.tar" for n in range(len(layers))]
    manifest = [{"Config": cfg_name, "RepoTags": ["bench:1"], "Layers": names}]
    (OUT / "manifest.json").write_text(json.dumps(manifest))
    with tarfile.open(archive, "w") as t:
        t.add(OUT / "manifest.json", "manifest.json")
        t.add(OUT / cfg_name, cfg_name)
        for name, p in zip(names, layers, strict=True):
            t.add(p, name)
    # the same layers gzip-compressed, as an OCI layout directory
    blobs = oci / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descs = []
    for p in layers:
        gz = OUT / (p.name + ".gz")
        subprocess.run(
            [sys.executable, "-m", "isal.igzip", "-1", "-o", str(gz), str(p)], check=True
        )
        digest = _sha_file(gz)
        gz.rename(blobs / digest.split(":")[1])
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest,
                "size": (blobs / digest.split(":")[1]).stat().st_size,
            }
        )
    (blobs / hashlib.sha256(config).hexdigest()).write_bytes(config)
    man = json.dumps(
        {
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    (blobs / hashlib.sha256(man).hexdigest()).write_bytes(man)
    (oci / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (oci / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:" + hashlib.sha256(man).hexdigest(),
                        "size": len(man),
                    }
                ],
            }
        )
    )
    for p in layers:
        p.unlink()
    done.write_text("ok")
    return archive, oci


def _sha_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def time_gnu_uncompressed(archive: Path) -> float:
    names = [n for n in tarfile.open(archive).getnames() if n.endswith("layer.tar")]
    start = time.perf_counter()
    for n in names:
        subprocess.run(f"tar -xOf {archive} {n} | tar -tvf - > /dev/null", shell=True, check=True)
    return time.perf_counter() - start


def time_gnu_gzip(oci: Path) -> float:
    index = json.loads((oci / "index.json").read_text())
    blobs = oci / "blobs" / "sha256"
    man = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    start = time.perf_counter()
    for d in man["layers"]:
        blob = blobs / d["digest"].split(":")[1]
        subprocess.run(f"gzip -dc {blob} | tar -tvf - > /dev/null", shell=True, check=True)
    return time.perf_counter() - start


CHILD = """
import resource, sys, time
t = time.perf_counter()
import layerforensics as lf
imported = time.perf_counter()
img = lf.open_image(sys.argv[1])
img.layers; img.files; img.changes; img.filesystem(); img.deleted
assert img.layers["verified"].all()
done = time.perf_counter()
print(done - imported, imported - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(img.files))
"""


def time_ours(path: Path) -> tuple[float, int, int, float]:
    """Seconds from ``open_image`` to the last frame (import time excluded, reported apart)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[2]), int(out[3]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    default_trees = ["/usr/share", f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}"]
    parser.add_argument("--trees", nargs="+", default=default_trees)
    args = parser.parse_args()
    archive, oci = build(args.trees)
    size = archive.stat().st_size
    results = {}
    for label, gnu, target in [
        ("uncompressed", time_gnu_uncompressed, archive),
        ("gzip", time_gnu_gzip, oci),
    ]:
        gnu_t = min(gnu(target) for _ in range(args.repeat))
        runs = [time_ours(target) for _ in range(args.repeat)]
        ours_t = min(r[0] for r in runs)
        results[label] = (gnu_t, ours_t, max(r[1] for r in runs) // 1024, runs[0][2])
        results[label + " import"] = min(r[3] for r in runs)
    print(f"archive: {size / 1e9:.2f} GB uncompressed, {results['gzip'][3]} entries")
    print(
        f"(importing layerforensics and pandas: {results.pop('uncompressed import'):.2f} s, "
        "not counted; peak RSS includes the memory-mapped archive pages)"
    )
    results.pop("gzip import")
    for label, (gnu_t, ours_t, rss, _) in results.items():
        print(
            f"{label:>13}: GNU tar {gnu_t:.2f} s | layerforensics {ours_t:.2f} s | "
            f"ratio {ours_t / gnu_t:.2f}x | peak RSS {rss} MiB"
        )


if __name__ == "__main__":
    main()
