"""find_secrets on images built by REAL engines, with fresh random fake secrets on every run.

One Dockerfile plants a secret in every place an image can hold one; it is built once by
dockerd's classic builder (exported as ``docker save`` and as a gzip OCI layout by skopeo) and
once by buildah (gzip OCI layout). Because the secrets are random, the engine cache
(tests/.engine-cache, keyed on Dockerfile + context + build args) misses on every run: one
dockerd build plus one buildah build, a few seconds each.

Expectations come from the Dockerfile (layer = index of the layer-making line, see
:func:`test_engine_images.layer_steps`), never from the library's output:

- ``/etc/ci/gh.env`` is written by the first RUN, followed by ``CMD`` (what a base image's last
  history entry looks like): flagged ``base_layer`` but still reported (present);
- ``/app/.env`` (AWS pair) is COPY'd, then ``rm``-ed: deleted;
- ``/app/config.yml`` (GitLab token) is COPY'd, then rewritten without it: overwritten;
- ``/app/keys/id_ed25519`` (OpenSSH key) is COPY'd, then ``rm -rf /app/keys && mkdir /app/keys``:
  deleted (an opaque directory with dockerd/overlay2, explicit whiteouts with buildah);
- ``/srv/mail.env`` (SendGrid key) gets a hardlink ``/srv/mail.env.bak`` in the same RUN, then the
  original name is removed: the bytes stay reachable, so the sighting is ``present``;
- ``/app/.git/config`` holds a remote URL with a password, the whole ``.git`` is removed later;
- ``NPM_TOKEN`` is a build arg used by a RUN (which writes and removes ``.npmrc`` in the same
  step, so no layer holds it): only the history line ``|1 NPM_TOKEN=...`` has it;
- ``ENV STRIPE_API_KEY`` and ``LABEL com.acme.alerts`` are in the config and in the history;
- decoys (sha256 lists, UUID lists, a base64 PNG, prose about passwords) must give no
  high-confidence finding.
"""

from __future__ import annotations

import base64
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engines
import pandas as pd
import pytest
from engines import BuildCase
from secrets_fakes import ALNUM, HEX, Fakes
from test_engine_images import L

import layerforensics as lf
from layerforensics.secrets import find_secrets, recover

pytestmark = pytest.mark.engine

SEED = random.SystemRandom().randrange(2**32)
F = Fakes(SEED)
B64URL = ALNUM + "-_"

GH_BASE = "ghp_" + F.s(ALNUM, 36)
AWS_ID, AWS_SECRET = F.aws_pair()
GLPAT = "glpat-" + F.s(ALNUM, 20)
PEM = F.pem("OPENSSH PRIVATE KEY")
SENDGRID = f"SG.{F.s(B64URL, 22)}.{F.s(B64URL, 43)}"
GIT_PW = F.s(ALNUM, 20)
NPM = "npm_" + F.s(ALNUM, 36)
STRIPE = "sk_live_" + F.s(ALNUM, 24)
WEBHOOK = (
    f"https://hooks.slack.com/services/T{F.s('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789', 10)}/"
    f"B{F.s('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789', 10)}/{F.s(ALNUM, 24)}"
)


def _decoys() -> dict[str, bytes]:
    """Material that looks secret-ish to naive scanners but holds no secret."""
    sums = "".join(f"{F.s(HEX, 64)}  usr/lib/pkg/file{i}.so\n" for i in range(60))
    uuids = "".join(f"{F.uuid()}\n" for _ in range(60))
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + F.rng.randbytes(3000)).decode()
    css = f".logo {{ background: url(data:image/png;base64,{png}); }}\n"
    prose = (
        "Changing your password\n\n"
        "Choose a password of at least twelve characters. The password is never stored in clear\n"
        "text; the server keeps a salted hash. If you forget your password, ask an administrator\n"
        "to reset it. A token is sent by mail and expires after one hour. Never share your\n"
        "secret key or API key with anyone, not even support staff.\n"
    )
    return {
        "app/static/SHA256SUMS": sums.encode(),
        "app/static/ids.txt": uuids.encode(),
        "app/static/logo.css": css.encode(),
        "app/static/README.txt": prose.encode(),
    }


DECOY_PATHS = {"/" + p for p in _decoys()}

CONTEXT = {
    "app/.env": f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n".encode(),
    "app/config.yml": f"gitlab:\n  url: https://gitlab.corp.net\n  token: {GLPAT}\n".encode(),
    "app/keys/id_ed25519": PEM.encode(),
    "app/.git/config": (
        "[core]\n\trepositoryformatversion = 0\n"
        '[remote "origin"]\n'
        f"\turl = https://deploy:{GIT_PW}@git.corp.net/shop/app.git\n"
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    ).encode(),
    **_decoys(),
}

DOCKERFILE = f"""\
FROM localhost/lf-base:1
RUN mkdir /etc/ci && echo "GITHUB_TOKEN={GH_BASE}" > /etc/ci/gh.env
CMD ["/bin/sh"]
ARG NPM_TOKEN
ENV STRIPE_API_KEY={STRIPE}
LABEL com.acme.alerts="{WEBHOOK}"
COPY app/ /app/
RUN echo "//registry.npmjs.org/:_authToken=$NPM_TOKEN" > /root/.npmrc && rm /root/.npmrc
RUN mkdir /srv && echo "SENDGRID_API_KEY={SENDGRID}" > /srv/mail.env && ln /srv/mail.env /srv/mail.env.bak
RUN rm /app/.env /srv/mail.env && rm -rf /app/keys && mkdir /app/keys && rm -rf /app/.git && echo "gitlab: {{}}" > /app/config.yml
"""

CASE = BuildCase("secrets-everywhere", DOCKERFILE, context=CONTEXT, build_args={"NPM_TOKEN": NPM})
# (builder, encodings): one dockerd classic build, one buildah build; only the exports needed
BUILDS = {"docker": ("docker-save", "skopeo-oci-gzip"), "buildah": ("skopeo-oci-gzip",)}
PARAMS = [pytest.param(b, e, id=f"{b}-{e}") for b, encs in BUILDS.items() for e in encs]

_CACHE: dict[tuple[str, str], tuple[Any, pd.DataFrame]] = {}


@pytest.fixture(scope="module")
def scanned(engine_image: Callable[..., dict[str, Path]]) -> Callable[..., Any]:
    """``scanned(builder, encoding) -> (image, findings)``, findings unredacted."""

    def get(builder: str, encoding: str) -> tuple[Any, pd.DataFrame]:
        key = (builder, encoding)
        if key not in _CACHE:
            paths = engine_image(CASE, builder, BUILDS[builder])
            img = lf.open_image(paths[encoding])
            _CACHE[key] = (img, find_secrets(img, redact=False))
        return _CACHE[key]

    yield get
    for img, _ in _CACHE.values():
        img.close()
    _CACHE.clear()
    # random secrets mean a new cache folder every run: keep only this run's
    keep = {p.parent for k in BUILDS for p in engine_image(CASE, k, BUILDS[k]).values()}
    for old in (engines.cache_root() / "images").glob(f"{CASE.name}-*"):
        if old not in keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def layer_of(builder: str, prefix: str) -> int:
    return L(CASE, builder, prefix)


def one(df: pd.DataFrame, secret: str, **where: object) -> pd.Series:
    rows = df[df["secret"] == secret]
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, (
        f"seed {SEED}",
        secret,
        where,
        df[["rule", "source", "path", "field", "layer", "status"]],
    )
    return rows.iloc[0]


def where(r: pd.Series) -> tuple[Any, ...]:
    sl = None if pd.isna(r["status_layer"]) else int(r["status_layer"])
    return (r["rule"], r["source"], r["path"], int(r["layer"]), r["status"], sl)


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_deleted_overwritten_opaque(scanned, builder: str, encoding: str) -> None:
    img, df = scanned(builder, encoding)
    copy = layer_of(builder, "COPY app/")
    rm = layer_of(builder, "RUN rm /app/.env")
    for secret, rule in ((AWS_ID, "aws-access-key-id"), (AWS_SECRET, "aws-secret-access-key")):
        r = one(df, secret, source="file")
        assert where(r) == (rule, "file", "/app/.env", copy, "deleted", rm), SEED
        assert r["confidence"] == "high" and not r["base_layer"]
        assert "COPY" in r["created_by"]
    assert AWS_SECRET.encode() in recover(img, one(df, AWS_SECRET, source="file"))

    r = one(df, GLPAT)
    assert where(r) == ("gitlab-pat", "file", "/app/config.yml", copy, "overwritten", rm), SEED
    assert r["line"] == 3 and r["version_status"] == "overwritten"
    assert img.read("/app/config.yml") == b"gitlab: {}\n"

    keys = df[df["path"] == "/app/keys/id_ed25519"]
    assert set(keys["rule"]) >= {"ssh-private-key-file"}, keys
    for _, r in keys.iterrows():
        assert (int(r["layer"]), r["status"], int(r["status_layer"])) == (copy, "deleted", rm)
        assert r["confidence"] == "high"
    assert recover(img, keys.iloc[0]) == PEM.encode()
    marker = img.files[(img.files["layer"] == rm) & (img.files["path"].str.startswith("/app/keys"))]
    if builder == "docker":  # overlay2: the directory is re-created opaque
        assert "opaque" in set(marker["type"].astype(str)), marker
    else:  # buildah (vfs): one whiteout per old child
        assert "/app/keys/.wh.id_ed25519" in set(marker["path"]), marker


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_hardlink_survivor(scanned, builder: str, encoding: str) -> None:
    _, df = scanned(builder, encoding)
    ln = layer_of(builder, "RUN mkdir /srv")
    rows = df[(df["secret"] == SENDGRID) & (df["source"] == "file")]
    assert len(rows) >= 1, (SEED, df[["rule", "path", "secret"]])
    # the tar holds the bytes once (the second name is a hardlink entry)
    r = one(df, SENDGRID, source="file")
    assert r["rule"] == "sendgrid-api-key" and r["layer"] == ln
    assert r["status"] == "present" and pd.isna(r["status_layer"])
    assert r["version_status"] == "deleted"
    assert "/srv/mail.env.bak" in str(r["alive_as"]) or r["path"] == "/srv/mail.env.bak"


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_git_config_deleted_with_its_directory(scanned, builder: str, encoding: str) -> None:
    img, df = scanned(builder, encoding)
    copy = layer_of(builder, "COPY app/")
    rm = layer_of(builder, "RUN rm /app/.env")
    r = one(df, GIT_PW)
    assert where(r) == ("git-config-credentials", "file", "/app/.git/config", copy, "deleted", rm)
    assert r["confidence"] == "high" and r["line"] == 4
    assert b"https://deploy:" in recover(img, r)


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_build_arg_only_in_history(scanned, builder: str, encoding: str) -> None:
    img, df = scanned(builder, encoding)
    run = layer_of(builder, "RUN echo")
    rows = df[df["secret"] == NPM]
    assert (rows["rule"] == "npm-access-token").all() and (rows["confidence"] == "high").all()
    assert not (rows["source"] == "file").any(), (SEED, rows)  # no layer holds .npmrc
    # the engine records the arg in the history of EVERY RUN after the ARG line
    h = img.history
    runs = h[h["layer"].notna() & (h["layer"] >= run)]
    expected = {f"history[{s}].args.NPM_TOKEN" for s in runs["step"]}
    hist = rows[rows["source"] == "history"]
    assert set(hist["field"]) == expected and len(hist) == len(expected), (SEED, hist)
    r = hist[hist["layer"] == run].iloc[0]
    assert (r["step"], r["status"]) == (int(runs["step"].min()), "history")
    assert pd.isna(r["status_layer"]) and pd.isna(r["path"])
    # docker save's legacy config repeats the last RUN command (container_config.Cmd)
    cfg = rows[rows["source"] == "config"]
    if encoding == "docker-save":
        assert "container_config.Cmd" in set(cfg["field"]), cfg
    else:
        assert cfg.empty, cfg


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_env_and_label(scanned, builder: str, encoding: str) -> None:
    img, df = scanned(builder, encoding)
    env = df[df["secret"] == STRIPE]
    assert (env["rule"] == "stripe-secret-key").all() and (env["confidence"] == "high").all()
    cfg = env[env["source"] == "config"]
    idx = next(i for i, e in enumerate(img.config["config"]["Env"]) if e.startswith("STRIPE"))
    assert f"Env[{idx}]" in set(cfg["field"]) and (cfg["status"] == "config").all(), cfg
    # docker save also repeats it in the legacy container_config and per-layer json
    assert all(f.endswith(f"Env[{idx}]") for f in cfg["field"]), cfg
    if encoding != "docker-save":
        assert len(cfg) == 1, cfg
    if builder == "docker" or encoding == "docker-save":
        assert "history" in set(env["source"].astype(str)), env
    lab = df[df["secret"] == WEBHOOK]
    assert (lab["rule"] == "slack-webhook-url").all() and len(lab) >= 1
    assert "Labels.com.acme.alerts" in set(lab["field"]), lab
    assert (lab.loc[lab["source"] == "config", "status"] == "config").all()


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_first_layer_before_cmd_is_flagged_base(scanned, builder: str, encoding: str) -> None:
    _, df = scanned(builder, encoding)
    first = layer_of(builder, "RUN mkdir /etc/ci")
    r = one(df, GH_BASE, source="file")
    assert where(r) == ("github-pat", "file", "/etc/ci/gh.env", first, "present", None)
    assert r["base_layer"] and r["confidence"] == "high"
    later = df[(df["source"] == "file") & (df["layer"] > first)]
    assert len(later) and not later["base_layer"].any()


@pytest.mark.parametrize(("builder", "encoding"), PARAMS)
def test_decoys_and_nothing_unplanted_is_confident(scanned, builder: str, encoding: str) -> None:
    _, df = scanned(builder, encoding)
    decoys = df[df["path"].isin(DECOY_PATHS)]
    assert (decoys["confidence"] != "high").all(), (SEED, decoys[["rule", "path", "context"]])
    planted = {GH_BASE, AWS_ID, AWS_SECRET, GLPAT, SENDGRID, GIT_PW, NPM, STRIPE, WEBHOOK}
    high = df[df["confidence"] == "high"]
    assert planted <= set(high["secret"]), (SEED, planted - set(high["secret"]))
    extra = high[~high["secret"].isin(planted) & (high["path"] != "/app/keys/id_ed25519")]
    assert extra.empty, (SEED, extra[["rule", "path", "field", "secret"]])
