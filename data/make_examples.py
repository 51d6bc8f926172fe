"""Write the small example images the notebooks and tests use, with no container engine.

Regenerate (deterministic: same bytes every run) with::

    python data/make_examples.py            # writes data/*.tar (the four images below)
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
``rm-secret.tar`` (notebook 01, part 1)
    The classic leak in its simplest form: ``~/.aws/credentials`` written by one ``RUN`` and
    ``rm``-ed by the next.
``leaky-app.tar`` (notebook 01, part 2)
    A BuildKit-style Node image leaking four ways: an SSH deploy key and a ``.git/config`` with a
    GitLab token in its remote URL, both ``COPY``-ed then deleted; an ``NPM_TOKEN`` build arg
    (only in the history); a database password in ``ENV DATABASE_URL``.

The ``DEMO_*`` values of the last two are NOT real credentials either: random strings typed in
once, in the real formats and without any "fake" marker, so the scanner rates them ``high``
as it would a real leak (the notebook's first cell says so).

Both are legacy ``docker save`` archives written by :class:`layerforensics.builder.ImageBuilder`
(fixed mtimes, no compression) and stay well under 100 KB.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
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

# Notebook 01's images use fixed values that LOOK real (so the scanner rates them high, as it
# would a real leak) but were never issued by any vendor: random strings typed in once.
DEMO_AWS_ACCESS_KEY_ID = "AKIAYHIPOKUFYAIWGREX"
DEMO_AWS_SECRET_ACCESS_KEY = "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"
DEMO_NPM_TOKEN = "npm_EsIDqo7Q9A1S5Hlr2CifDSkKqoMzDhuNEPqw"
DEMO_GITLAB_TOKEN = "glpat-YyOAo8h3ugjkPAxQ_z_Z"
DEMO_DB_PASSWORD = "EFUw4Js2MSOjy15VnA4Lze"
DEMO_DATABASE_URL = f"postgresql://shop:{DEMO_DB_PASSWORD}@db.prod.internal:5432/shop"


def _npm_install_left_pad() -> list[Dir | File]:
    """What ``npm install`` of the one dependency writes (both Node examples have it)."""
    return [
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
    ]


def _demo_ssh_key() -> bytes:
    """An OpenSSH-format private key block of deterministic random bytes (not a usable key)."""
    body = base64.b64encode(
        b"openssh-key-v1\x00" + hashlib.shake_256(b"layerforensics leaky-app").digest(384)
    ).decode()
    lines = "\n".join(body[i : i + 70] for i in range(0, len(body), 70))
    kind = "OPENSSH PRIVATE KEY"
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


DEMO_SSH_KEY = _demo_ssh_key()

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
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", DEMO_AWS_ACCESS_KEY_ID), DEMO_AWS_ACCESS_KEY_ID
    assert re.fullmatch(r"npm_[A-Za-z0-9]{36}", DEMO_NPM_TOKEN), DEMO_NPM_TOKEN
    assert re.fullmatch(r"glpat-[A-Za-z0-9_\-]{20}", DEMO_GITLAB_TOKEN), DEMO_GITLAB_TOKEN


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
            *_npm_install_left_pad(),
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


def rm_secret() -> ImageBuilder:
    """Notebook 01, part 1: AWS credentials written by one RUN, ``rm``-ed by the next."""
    b = ImageBuilder()
    b.cmd = ["/opt/app/run.sh"]
    b.layer(_base_layer(), created_by=_NOP + "ADD file:0d9c6a2f5a1e in / ")
    b.step(_NOP + ' CMD ["/bin/sh"]')
    creds = (
        "[default]\n"
        f"aws_access_key_id = {DEMO_AWS_ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {DEMO_AWS_SECRET_ACCESS_KEY}\n"
        "region = eu-west-1\n"
    ).encode()
    b.layer(
        [
            Dir("/root", mode=0o700),
            Dir("/root/.aws", mode=0o700),
            File("/root/.aws/credentials", creds, mode=0o600),
            Dir("/opt"),
            Dir("/opt/app"),
            File("/opt/app/run.sh", b"#!/bin/sh\nexec /opt/app/server\n", mode=0o755),
            File("/opt/app/server", b"\x7fELF\x02\x01\x01\x00server\n" * 30, mode=0o755),
        ],
        created_by=(
            "/bin/sh -c mkdir -p /root/.aws && cp /tmp/ci-credentials /root/.aws/credentials "
            "&& aws s3 cp s3://acme-artifacts/server /opt/app/server"
        ),
    )
    b.layer(
        [
            Dir("/root", mode=0o700),
            Dir("/root/.aws", mode=0o700),
            Whiteout("/root/.aws/credentials"),
        ],
        created_by="/bin/sh -c rm /root/.aws/credentials",
    )
    b.step(_NOP + ' CMD ["/opt/app/run.sh"]')
    return b


def leaky_app() -> ImageBuilder:
    """Notebook 01, part 2: a BuildKit-style Node image leaking four ways."""
    bk = "buildkit.dockerfile.v0"
    b = ImageBuilder()
    b.env = [*b.env, "NODE_ENV=production", f"DATABASE_URL={DEMO_DATABASE_URL}"]
    b.cmd = ["node", "server.js"]
    b.layer(_base_layer(), created_by=_NOP + "ADD file:0d9c6a2f5a1e in / ")
    b.step(_NOP + ' CMD ["/bin/sh"]')
    b.step("ENV NODE_ENV=production")
    b.step(f"ENV DATABASE_URL={DEMO_DATABASE_URL}")
    b.step("ARG NPM_TOKEN")
    b.step("WORKDIR /app")
    git_config = (
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
        '[remote "origin"]\n'
        f"\turl = https://oauth2:{DEMO_GITLAB_TOKEN}@gitlab.com/acme/shop.git\n"
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
        '[branch "main"]\n\tremote = origin\n\tmerge = refs/heads/main\n'
    ).encode()
    b.layer(
        [
            Dir("/app"),
            File(
                "/app/package.json",
                b'{\n  "name": "shop",\n  "version": "2.3.1",\n'
                b'  "dependencies": {"left-pad": "1.3.0"}\n}\n',
            ),
            File(
                "/app/server.js",
                b"require('http').createServer((q, s) => s.end('ok')).listen(80);\n",
            ),
            Dir("/app/.git"),
            File("/app/.git/HEAD", b"ref: refs/heads/main\n"),
            File("/app/.git/config", git_config),
            Dir("/app/deploy"),
            File("/app/deploy/id_ed25519", DEMO_SSH_KEY, mode=0o600),
            File(
                "/app/deploy/known_hosts", b"gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfu\n"
            ),
        ],
        created_by="COPY . /app # buildkit",
        comment=bk,
    )
    b.layer(
        [
            *_npm_install_left_pad(),
        ],
        created_by=(
            f"RUN |1 NPM_TOKEN={DEMO_NPM_TOKEN} /bin/sh -c "
            'echo "//registry.npmjs.org/:_authToken=${NPM_TOKEN}" > .npmrc '
            "&& npm ci --omit=dev && rm .npmrc # buildkit"
        ),
        comment=bk,
    )
    b.layer(
        [Dir("/app"), Whiteout("/app/.git"), Whiteout("/app/deploy")],
        created_by="RUN |1 NPM_TOKEN="
        + DEMO_NPM_TOKEN
        + " /bin/sh -c rm -rf .git deploy # buildkit",
        comment=bk,
    )
    b.step('CMD ["node" "server.js"]')
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
        ("rm-secret.tar", rm_secret(), "example/rm-secret:1.0"),
        ("leaky-app.tar", leaky_app(), "example/leaky-app:2.3.1"),
    ):
        target = args.out / name
        builder.save_docker(target, tag=tag)
        print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
