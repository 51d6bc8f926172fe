"""Write the small example images the notebooks and tests use, with no container engine.

Regenerate (deterministic: same bytes every run) with::

    python data/make_examples.py            # writes data/classic-secret.tar, data/layers-demo.tar
    python data/make_examples.py --out DIR  # somewhere else

``classic-secret.tar``
    A Node app that leaks on purpose: a ``.env`` with a GitHub token and an AWS key pair is
    written in one ``RUN`` layer and deleted in the next (the bytes stay in the image); a build
    argument ``NPM_TOKEN`` shows up in a ``RUN |1 NPM_TOKEN=...`` history line; an ``ENV``
    carries a database password. Every secret is FAKE (it says so) but matches the usual
    formats, e.g. ``ghp_[A-Za-z0-9]{36}`` and ``AKIA[A-Z0-9]{16}``.
``layers-demo.tar``
    A teaching image: a file overwritten, a directory removed and re-created (opaque marker),
    a hardlink, a file ``chmod``-ed (copy-up: same bytes, new mode), a symlink, a whiteout.

Both are legacy ``docker save`` archives written by :class:`layerforensics.builder.ImageBuilder`
(fixed mtimes, no compression) and stay well under 100 KB.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from layerforensics.builder import Dir, File, Hardlink, ImageBuilder, Opaque, Symlink, Whiteout

HERE = Path(__file__).resolve().parent

# Obviously fake, yet format-valid, secrets. Tests and notebooks import these constants.
GITHUB_TOKEN = "ghp_" + "FAKEgithubTOKENforLAYERFORENSICSdemo"
AWS_ACCESS_KEY_ID = "AKIA" + "FAKELAYERDEMO123"
AWS_SECRET_ACCESS_KEY = "fakeAwsSecretKeyForLayerForensicsDemo/0+"
NPM_TOKEN = "npm_" + "FAKEnpmTOKENforLAYERFORENSICSdemo123"
DB_PASSWORD = "fake-Pa55w0rd-for-demo"

ENV_FILE = (
    "# deploy credentials (FAKE, for the layerforensics examples)\n"
    f"GITHUB_TOKEN={GITHUB_TOKEN}\n"
    f"AWS_ACCESS_KEY_ID={AWS_ACCESS_KEY_ID}\n"
    f"AWS_SECRET_ACCESS_KEY={AWS_SECRET_ACCESS_KEY}\n"
).encode()

_NOP = "/bin/sh -c #(nop) "


def _check_formats() -> None:
    assert re.fullmatch(r"ghp_[A-Za-z0-9]{36}", GITHUB_TOKEN), GITHUB_TOKEN
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", AWS_ACCESS_KEY_ID), AWS_ACCESS_KEY_ID
    assert re.fullmatch(r"[A-Za-z0-9/+=]{40}", AWS_SECRET_ACCESS_KEY), AWS_SECRET_ACCESS_KEY
    assert re.fullmatch(r"npm_[A-Za-z0-9]{36}", NPM_TOKEN), NPM_TOKEN


def _base_layer() -> list:
    """A tiny 'distribution': enough directories and files to look like a root filesystem."""
    return [
        Dir("/bin"),
        File("/bin/sh", b"\x7fELF\x02\x01\x01\x00" + b"fake shell\n" * 8, mode=0o755),
        Dir("/etc"),
        File("/etc/os-release", b'NAME="Demo Linux"\nID=demo\nVERSION_ID=1.0\n'),
        File(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n",
        ),
        File("/etc/group", b"root:x:0:\nnode:x:1000:\n"),
        Dir("/root", mode=0o700),
        Dir("/tmp", mode=0o1777),
        Dir("/usr"),
        Dir("/usr/bin"),
        File("/usr/bin/env", b"\x7fELF\x02\x01\x01\x00fake env\n", mode=0o755),
        File("/usr/bin/passwd", b"\x7fELF\x02\x01\x01\x00fake passwd\n", mode=0o4755),
        Dir("/var"),
        Dir("/var/log"),
        File("/var/log/dpkg.log", b"2023-11-14 22:13:20 install demo-base 1.0\n"),
    ]


def classic_secret() -> ImageBuilder:
    """The classic leak: secret written in one layer, deleted in the next."""
    b = ImageBuilder()
    b.env = [*b.env, "NODE_ENV=production", f"DB_PASSWORD={DB_PASSWORD}"]
    b.cmd = ["node", "/app/server.js"]
    b.labels = {"org.opencontainers.image.title": "classic-secret (layerforensics example)"}
    b.layer(_base_layer(), created_by=_NOP + "ADD file:0d9c6a2f5a1e in / ")
    b.step(_NOP + ' CMD ["/bin/sh"]')
    b.step(_NOP + " ENV NODE_ENV=production")
    b.step(_NOP + f" ENV DB_PASSWORD={DB_PASSWORD}")
    b.step(_NOP + " WORKDIR /app")
    b.layer(
        [
            Dir("/app", uid=1000, gid=1000),
            File(
                "/app/package.json",
                b'{\n  "name": "demo-app",\n  "version": "1.0.0",\n'
                b'  "dependencies": {"left-pad": "1.3.0"}\n}\n',
                uid=1000,
                gid=1000,
            ),
            File(
                "/app/server.js",
                b"const http = require('http');\n"
                b"http.createServer((req, res) => res.end('ok')).listen(8080);\n",
                uid=1000,
                gid=1000,
            ),
        ],
        created_by=_NOP + " COPY --chown=1000:1000 dir:4c1f0a9b2e in /app ",
    )
    b.step(_NOP + " ARG NPM_TOKEN")
    b.layer(
        [
            Dir("/app"),
            Dir("/app/node_modules"),
            Dir("/app/node_modules/left-pad"),
            File(
                "/app/node_modules/left-pad/package.json",
                b'{"name": "left-pad", "version": "1.3.0"}\n',
            ),
            File(
                "/app/node_modules/left-pad/index.js",
                b"module.exports = (s, n, c = ' ') => String(s).padStart(n, c);\n",
            ),
            Dir("/root", mode=0o700),
            Dir("/root/.npm"),
            Dir("/root/.npm/_cacache"),
            File("/root/.npm/_cacache/index-v5", b"left-pad 1.3.0 sha512-FAKE\n" * 20),
        ],
        created_by=(
            f"|1 NPM_TOKEN={NPM_TOKEN} /bin/sh -c "
            'echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > .npmrc '
            "&& npm install && rm .npmrc"
        ),
    )
    b.layer(
        [
            Dir("/app", uid=1000, gid=1000),
            File("/app/.env", ENV_FILE, mode=0o600),
            File("/app/deployed.txt", b"deployed by CI\n"),
            Dir("/app/logs", mode=0o777, uid=1000, gid=1000),
            File("/app/logs/deploy.log", b"deploy ok\n", mode=0o666, uid=1000, gid=1000),
        ],
        created_by=(
            "/bin/sh -c ./ci/fetch-credentials.sh > /app/.env "
            "&& ./deploy.sh > /app/deployed.txt && mkdir -m 777 /app/logs"
        ),
    )
    b.layer(
        [Dir("/app", uid=1000, gid=1000), Whiteout("/app/.env")],
        created_by="/bin/sh -c rm /app/.env",
    )
    b.step(_NOP + ' CMD ["node" "/app/server.js"]')
    return b


def layers_demo() -> ImageBuilder:
    """One layer per overlay behaviour, for notebook 03."""
    b = ImageBuilder()
    b.layer(
        [
            Dir("/bin"),
            File("/bin/sh", b"\x7fELF\x02\x01\x01\x00" + b"fake shell\n" * 8, mode=0o755),
            Dir("/etc"),
            File("/etc/motd", b"Welcome (version 1)\n"),
            File("/etc/app.conf", b"listen = 0.0.0.0:8080\nworkers = 4\n"),
            Dir("/var/cache"),
            Dir("/var/cache/apt"),
            File("/var/cache/apt/pkgcache.bin", b"APT cache " * 40),
            File("/var/cache/apt/srcpkgcache.bin", b"APT source cache " * 25),
        ],
        created_by=_NOP + "ADD file:7a1e0c3b9d in / ",
    )
    b.layer(
        [Dir("/etc"), File("/etc/motd", b"Welcome (version 2: overwritten in layer 1)\n")],
        created_by="/bin/sh -c echo 'Welcome (version 2: overwritten in layer 1)' > /etc/motd",
    )
    b.layer(
        [
            Dir("/usr"),
            Dir("/usr/local"),
            Dir("/usr/local/bin"),
            File("/usr/local/bin/busybox", b"\x7fELF\x02\x01\x01\x00busybox " * 40, mode=0o755),
            Hardlink("/usr/local/bin/ls", target="/usr/local/bin/busybox", mode=0o755),
            Symlink("/usr/local/bin/sh", target="busybox"),
        ],
        created_by="/bin/sh -c install busybox /usr/local/bin && ln busybox ls && ln -s busybox sh",
    )
    b.layer(
        [
            Dir("/var"),
            Dir("/var/cache"),
            Dir("/var/cache/apt"),
            Opaque("/var/cache/apt"),
            File("/var/cache/apt/README", b"cache cleared in layer 3\n"),
        ],
        created_by=(
            "/bin/sh -c rm -rf /var/cache/apt && mkdir /var/cache/apt "
            "&& echo 'cache cleared in layer 3' > /var/cache/apt/README"
        ),
    )
    b.layer(
        [
            Dir("/etc"),
            File("/etc/app.conf", b"listen = 0.0.0.0:8080\nworkers = 4\n", mode=0o600),
        ],
        created_by="/bin/sh -c chmod 600 /etc/app.conf",
    )
    b.layer([Dir("/etc"), Whiteout("/etc/motd")], created_by="/bin/sh -c rm /etc/motd")
    b.step(_NOP + ' CMD ["/bin/sh"]')
    return b


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: data/)")
    args = parser.parse_args(argv)
    _check_formats()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, builder, tag in (
        ("classic-secret.tar", classic_secret(), "example/classic-secret:1.0"),
        ("layers-demo.tar", layers_demo(), "example/layers-demo:1.0"),
    ):
        target = args.out / name
        builder.save_docker(target, tag=tag)
        print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
