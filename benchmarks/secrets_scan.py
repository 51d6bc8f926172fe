"""Secret-scan throughput: the engine alone, and find_secrets end to end on a built image.

Usage::

    python benchmarks/secrets_scan.py [--corpus DIR] [--limit-mb 60] [--out benchmarks/out]

The corpus (default: this Python's standard library plus /usr/share/doc and /etc) is read into
memory; ``engine`` rows time :meth:`Engine.scan` over every text file with each available
keyword-prefilter backend (re2, ahocorasick, bytes) and with no prefilter at all (every rule's
regex on every file). ``image`` rows build a gzip OCI image of the same files (written under
``--out``, git-ignored), then time ``find_secrets(img, sources=["file"])`` on a fresh open
(decompression, tar walk and scan in one pass). MB = 10**6 bytes of uncompressed file content.
"""

from __future__ import annotations

import argparse
import builtins
import os
import sys
import sysconfig
import time
from pathlib import Path

import layerforensics as lf
from layerforensics.builder import File, ImageBuilder
from layerforensics.secrets import builtin_rules, find_secrets, is_binary
from layerforensics.secrets._engine import Engine


def load_corpus(roots: list[Path], limit: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    total = 0
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for n in sorted(names):
                p = Path(dirpath) / n
                try:
                    if not p.is_file() or p.is_symlink() or p.stat().st_size > 4_000_000:
                        continue
                    data = p.read_bytes()
                except OSError:
                    continue
                if is_binary(data):
                    continue
                out.append(("/corpus" + str(p), data))
                total += len(data)
                if total >= limit:
                    return out
    return out


def engine_with(backend: str) -> Engine:
    blocked = {"re2": set(), "ahocorasick": {"re2"}, "bytes": {"re2", "ahocorasick"}}[backend]
    real = builtins.__import__

    def fake(name, *a, **k):  # type: ignore[no-untyped-def]
        if name in blocked:
            raise ImportError(name)
        return real(name, *a, **k)

    builtins.__import__ = fake
    try:
        return Engine(builtin_rules())
    finally:
        builtins.__import__ = real


def time_engine(
    eng: Engine, corpus: list[tuple[str, bytes]], no_prefilter: bool
) -> tuple[float, int]:
    hits = 0
    t = time.perf_counter()
    for path, data in corpus:
        if no_prefilter:
            for r in eng.rules:
                if r.path is None or r.path.search(path):
                    hits += sum(1 for _ in r.regex.finditer(data))
        else:
            hits += len(eng.scan(data, path=path))
    return time.perf_counter() - t, hits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ap.add_argument(
        "--corpus", nargs="*", type=Path, default=[stdlib, Path("/usr/share/doc"), Path("/etc")]
    )
    ap.add_argument("--limit-mb", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--skip-naive", action="store_true", help="skip the no-prefilter row (slow)")
    args = ap.parse_args()

    corpus = load_corpus(args.corpus, int(args.limit_mb * 1e6))
    mb = sum(len(d) for _, d in corpus) / 1e6
    print(
        f"corpus: {len(corpus)} text files, {mb:.1f} MB, {len(builtin_rules())} rules, "
        f"python {sys.version.split()[0]}"
    )
    print(f"{'what':34} {'seconds':>8} {'MB/s':>8} {'matches':>8}")
    for backend in ("re2", "ahocorasick", "bytes"):
        eng = engine_with(backend)
        if eng.screen.backend != backend:
            print(f"engine, prefilter={backend:12} (not installed)")
            continue
        dt, hits = time_engine(eng, corpus, no_prefilter=False)
        print(f"engine, prefilter={backend:16} {dt:8.2f} {mb / dt:8.1f} {hits:8d}")
    if not args.skip_naive:
        sub = corpus[: max(1, len(corpus) // 10)]
        smb = sum(len(d) for _, d in sub) / 1e6
        dt, hits = time_engine(Engine(builtin_rules()), sub, no_prefilter=True)
        print(f"engine, no prefilter (10% subset)  {dt:8.2f} {smb / dt:8.1f} {hits:8d}")

    args.out.mkdir(parents=True, exist_ok=True)
    image = args.out / "secrets-bench.tar"
    b = ImageBuilder()
    half = len(corpus) // 2
    b.layer([File(p, d) for p, d in corpus[:half]], created_by="COPY corpus-a /corpus")
    b.layer([File(p, d) for p, d in corpus[half:]], created_by="COPY corpus-b /corpus")
    b.save_oci(image, compression="gzip")
    t = time.perf_counter()
    with lf.open_image(image) as img:
        df = find_secrets(img, sources=["file"])
    dt = time.perf_counter() - t
    scanned = df.attrs["scan"]["bytes"] / 1e6
    print(f"image (gzip OCI), find_secrets      {dt:8.2f} {scanned / dt:8.1f} {len(df):8d}")
    image.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
