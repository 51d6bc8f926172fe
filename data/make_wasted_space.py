"""Build ``data/wasted-space.tar`` and ``data/wasted-space-fixed.tar`` (for notebook 02).

The wasteful image makes the three classic mistakes of a Dockerfile; the fixed one is the same
software built the right way. Contents are deterministic (seeded), so the archives are
reproducible; each is about 300 kB / 150 kB.

    python data/make_wasted_space.py [OUTDIR]

``make(outdir)`` is what ``data/make_examples.py`` can call.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from layerforensics.builder import Dir, File, ImageBuilder, Whiteout


def _blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


BASE = [
    Dir("/bin"),
    File("/bin/sh", _blob(1, 20_000), mode=0o755),
    Dir("/etc"),
    File("/etc/os-release", b'NAME="Example Linux"\nVERSION_ID=1\n'),
    Dir("/tmp", mode=0o1777),
]
APP = _blob(2, 100_000)  # the "large-ish" file
PKGS = [File(f"/var/cache/apk/pkg{i}.apk", _blob(10 + i, 12_000)) for i in range(4)]
LIBS = [File(f"/usr/lib/libexample.so.{i}", _blob(20 + i, 6_000), mode=0o755) for i in range(2)]
SRC = [File(f"/build/src/part{i}.c", _blob(30 + i, 9_000)) for i in range(3)]


def wasteful() -> ImageBuilder:
    b = ImageBuilder()
    b.layer(BASE, created_by="/bin/sh -c #(nop) ADD file:base in / ")
    b.layer(
        [Dir("/opt/app"), File("/opt/app/server", APP)], created_by="COPY server /opt/app/server"
    )
    b.layer(
        [Dir("/opt/app"), File("/opt/app/server", APP, mode=0o755)],
        created_by="/bin/sh -c chmod +x /opt/app/server",
    )
    b.layer(
        [Dir("/var/cache/apk"), *PKGS, Dir("/usr/lib"), *LIBS],
        created_by="/bin/sh -c apk add libexample",
    )
    b.layer([Dir("/build/src"), *SRC], created_by="COPY src /build/src")
    b.layer(
        [Dir("/usr/local/bin"), File("/usr/local/bin/tool", _blob(40, 5_000), mode=0o755)],
        created_by="/bin/sh -c make -C /build/src install",
    )
    b.layer([Whiteout("/build")], created_by="/bin/sh -c rm -rf /build")
    return b


def fixed() -> ImageBuilder:
    b = ImageBuilder()
    b.layer(BASE, created_by="/bin/sh -c #(nop) ADD file:base in / ")
    b.layer(
        [Dir("/opt/app"), File("/opt/app/server", APP, mode=0o755)],
        created_by="COPY --chmod=755 server /opt/app/server",
    )
    b.layer(
        [Dir("/usr/lib"), *LIBS],
        created_by="/bin/sh -c apk add --no-cache libexample",
    )
    # multi-stage build: only the installed tool is copied from the build stage
    b.layer(
        [Dir("/usr/local/bin"), File("/usr/local/bin/tool", _blob(40, 5_000), mode=0o755)],
        created_by="COPY --from=build /usr/local/bin/tool /usr/local/bin/tool",
    )
    return b


def make(outdir: str | Path) -> list[Path]:
    """Write both archives into ``outdir``; returns their paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "wasted-space.tar", out / "wasted-space-fixed.tar"]
    wasteful().save_docker(paths[0], tag="example/wasted-space:latest")
    fixed().save_docker(paths[1], tag="example/wasted-space:fixed")
    return paths


if __name__ == "__main__":
    for p in make(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent):
        print(p, p.stat().st_size)
