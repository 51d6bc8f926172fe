"""Core indexing speed against GNU tar, side by side in one run.

Builds (once, under ``benchmarks/out/``, git-ignored) a ~1 GB uncompressed ``docker save`` with
~70k entries, plus the same image with gzip layers as an OCI layout. Its layers:

0. a Debian bookworm minbase root filesystem made by ``debootstrap`` (run as root, with network
   to deb.debian.org; ``--no-rootfs`` leaves it out);
1. this machine's ``/usr/share`` (over the rootfs's own /usr/share: many directories merged
   and files replaced, as an ``apt-get install`` layer does);
2. and 3. installed Python library dirs (``/usr/lib/python3.X``, then
   ``/usr/lib/python3/dist-packages``);
4. whiteouts: a subtree of /usr/share and the rootfs's apt lists (``rm -rf``).

Then it times, best of N:

- GNU tar: ``tar -xOf ARCHIVE LAYER | tar -tv`` for every layer (uncompressed), and
  ``gzip -dc BLOB | tar -tv`` for every gzip blob;
- layerforensics: ``open_image`` + ``layers``, ``files``, ``changes``, ``filesystem()``,
  ``deleted`` (every layer read once, both digests verified).

Usage: ``python benchmarks/core_index.py [--repeat 3] [--no-rootfs] [--trees DIR ...]``.
Reports both ratios and the peak RSS of the layerforensics run (a fresh subprocess per
measurement).
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


def _tar_layer(directory: str, members: list[str], dest: Path) -> None:
    cmd = [
        "tar",
        "--format=posix",
        "--pax-option=delete=atime,delete=ctime",
        "-cf",
        str(dest),
        "-C",
        directory,
        *members,
    ]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)


def _debootstrap(rootfs: Path) -> None:
    if (rootfs / "etc" / "debian_version").exists():
        return
    print(f"debootstrap --variant=minbase bookworm {rootfs} (once) ...", flush=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def build(trees: list[str], rootfs: Path | None) -> tuple[Path, Path]:
    sources: list[tuple[str, list[str]]] = []
    if rootfs is not None:
        _debootstrap(rootfs)
        sources.append((str(rootfs), ["."]))
    sources += [("/", [t.strip("/")]) for t in trees]
    key = hashlib.sha256(json.dumps(sources).encode()).hexdigest()[:12]
    out = OUT / f"image-{key}"
    archive = out / "bench-docker.tar"
    oci = out / "bench-oci-gzip"
    done = out / "built"
    if done.exists():
        return archive, oci
    out.mkdir(parents=True, exist_ok=True)
    layers = []
    for n, (directory, members) in enumerate(sources):
        dest = out / f"layer{n}.tar"
        _tar_layer(directory, members, dest)
        layers.append(dest)
    # a last layer deleting what real images delete: a subtree, and the apt lists
    first = trees[0].strip("/")
    victim = sorted(p for p in os.listdir("/" + first) if os.path.isdir(f"/{first}/{p}"))[0]
    hidden = [f"{first}/{victim}"]
    if rootfs is not None:
        lists = rootfs / "var" / "lib" / "apt" / "lists"
        hidden += [f"var/lib/apt/lists/{name}" for name in sorted(os.listdir(lists))]
    wh = out / f"layer{len(sources)}.tar"
    with tarfile.open(wh, "w", format=tarfile.PAX_FORMAT) as t:
        for path in hidden:
            parent, _, name = path.rpartition("/")
            t.addfile(tarfile.TarInfo(f"{parent}/.wh.{name}"))
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
    (out / cfg_name).write_bytes(config)
    names = [f"{n:02d}/layer.tar" for n in range(len(layers))]
    manifest = [{"Config": cfg_name, "RepoTags": ["bench:1"], "Layers": names}]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with tarfile.open(archive, "w") as t:
        t.add(out / "manifest.json", "manifest.json")
        t.add(out / cfg_name, cfg_name)
        for name, p in zip(names, layers, strict=True):
            t.add(p, name)
    # the same layers gzip-compressed, as an OCI layout directory
    blobs = oci / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descs = []
    for p in layers:
        gz = out / (p.name + ".gz")
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
    with tarfile.open(archive) as t:
        names = [n for n in t.getnames() if n.endswith("layer.tar")]
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
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as status:
    anon = next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))
print(done - imported, imported - t, rss, len(img.files), anon)
"""


def time_ours(path: Path) -> tuple[float, int, int, float, int]:
    """Seconds from ``open_image`` to the last frame (import time excluded, reported apart),
    peak RSS (KiB), entries, import seconds, and anonymous RSS at the end (KiB)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[2]), int(out[3]), float(out[1]), int(out[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    # /usr/share, then installed Python library dirs (the standard library, Debian's packages)
    default_trees = [
        "/usr/share",
        f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}",
        "/usr/lib/python3/dist-packages",
    ]
    default_trees = [t for t in default_trees if os.path.isdir(t)]
    parser.add_argument("--trees", nargs="+", default=default_trees)
    parser.add_argument("--no-rootfs", action="store_true", help="leave out the debootstrap layer")
    args = parser.parse_args()
    archive, oci = build(args.trees, None if args.no_rootfs else OUT / "rootfs")
    size = archive.stat().st_size
    results = {}
    imports = []
    for label, gnu, target in [
        ("uncompressed", time_gnu_uncompressed, archive),
        ("gzip", time_gnu_gzip, oci),
    ]:
        # GNU tar and layerforensics alternate, so drifting machine load hits both alike.
        gnu_times, runs = [], []
        for _ in range(args.repeat):
            gnu_times.append(gnu(target))
            runs.append(time_ours(target))
        imports += [r[3] for r in runs]
        results[label] = (
            min(gnu_times),
            min(r[0] for r in runs),
            max(r[1] for r in runs) // 1024,
            max(r[4] for r in runs) // 1024,
            runs[0][2],
        )
    print(f"archive: {archive} ({size / 1e9:.2f} GB uncompressed, {results['gzip'][4]} entries)")
    print(
        f"(best of {args.repeat}; importing layerforensics and pandas: {min(imports):.2f} s, not "
        "counted; peak RSS includes the memory-mapped archive pages, anonymous memory does not)"
    )
    for label, (gnu_t, ours_t, rss, anon, _) in results.items():
        print(
            f"{label:>13}: GNU tar {gnu_t:.2f} s | layerforensics {ours_t:.2f} s | "
            f"ratio {ours_t / gnu_t:.2f}x | peak RSS {rss} MiB | anonymous {anon} MiB"
        )


if __name__ == "__main__":
    main()
