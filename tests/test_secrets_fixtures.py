"""The secrets scanner on the shared fixtures: Trivy's fake secret files, ggshield's and dive's
images. Skips (fails under LAYERFORENSICS_REQUIRE_ALL=1) when ../shared/data is absent."""

from __future__ import annotations

import json
import lzma
import re
import shutil
from pathlib import Path

import pytest

import layerforensics as lf
from layerforensics.errors import NotAnImageError
from layerforensics.secrets import find_secrets, scan_bytes, secret_groups

pytestmark = pytest.mark.fixtures


def _trivy_cases(shared: Path) -> list[tuple[str, dict]]:
    exp = json.loads((shared / "trivy-secrets" / "EXPECTED.json").read_text())
    return sorted(exp["files"].items())


def _lines(spec: dict) -> set[int]:
    if "line" in spec:
        return {int(spec["line"])}
    a, b = re.match(r"(\d+)-(\d+)", spec["lines"]).groups()
    return set(range(int(a), int(b) + 1))


def test_trivy_expectations(shared_data: Path) -> None:
    folder = shared_data / "trivy-secrets"
    checked = 0
    for name, spec in _trivy_cases(shared_data):
        df = scan_bytes((folder / name).read_bytes(), path=f"/app/{name}")
        found_lines = set(df["line"].dropna().astype(int))
        for want in spec["findings"]:
            lines = _lines(want)
            assert lines & found_lines, (name, want, df[["rule", "line"]])
            checked += 1
        if not spec["findings"]:
            assert df.empty, (name, df[["rule", "line", "context"]])
        for sup in spec.get("suppressed", []):
            on = df[df["line"] == sup["line"]]
            assert (on["confidence"] == "low").all(), (name, sup, on[["rule", "confidence"]])
        # one finding per expected secret: no duplicate rows on a line
        assert not df.duplicated(["line", "fingerprint"]).any(), name
    assert checked == 18  # every finding EXPECTED.json lists


def test_trivy_finds_are_attributed_to_plausible_rules(shared_data: Path) -> None:
    folder = shared_data / "trivy-secrets"
    want = {
        "aws-secrets.txt": {
            1: "aws-secret-access-key",
            2: "aws-access-key-id",
            5: "aws-secret-access-key",
        },
        "github-token.txt": {1: "github-fine-grained-pat"},
        "jwt-secret.txt": {3: "jwt"},
        "settings.xml": {2: "maven-settings-password", 3: "maven-settings-passphrase"},
        "grafana-env.txt": {1: "grafana-api-key", 2: "grafana-api-key"},
        "hugging-face-secret.txt": {1: "huggingface-token"},
        "docker-secrets.txt": {2: "dockerconfig-secret", 4: "dockerconfig-secret"},
    }
    for name, by_line in want.items():
        df = scan_bytes((folder / name).read_bytes(), path=f"/app/{name}")
        confident = df[df["confidence"] != "low"]
        got = dict(zip(confident["line"].astype(int), confident["rule"], strict=True))
        low = df[df["confidence"] == "low"]
        got.update(
            {
                k: v
                for k, v in zip(low["line"].astype(int), low["rule"], strict=True)
                if k in by_line
            }
        )
        assert got == by_line, name
    jwt = scan_bytes((folder / "jwt-secret.txt").read_bytes())
    assert jwt["reason"].tolist() == ["known-example"]


@pytest.fixture(scope="module")
def ggshield_image(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gg") / "docker-example.tar"
    with (
        lzma.open(shared_data / "ggshield" / "docker-example.tar.xz") as src,
        open(out, "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    return out


def test_ggshield_expected_secrets_found_and_grouped(
    shared_data: Path, ggshield_image: Path
) -> None:
    exp = json.loads((shared_data / "ggshield" / "EXPECTED.json").read_text())
    with lf.open_image(ggshield_image) as img:
        df = find_secrets(img, redact=False)
        groups = secret_groups(df)
    assert set(df["source"]) <= {"history", "config"}  # the layer files are harmless
    for want in exp["findings"]:
        rows = df[df["secret"] == want["value"]]
        assert len(rows) >= 3, want
        assert {"config", "history"} <= set(rows["source"])
        assert f"{want['env_name']}=" in rows[rows["source"] == "config"]["context"].iloc[0]
        hist = rows[rows["source"] == "history"]
        assert hist["status"].tolist() == ["history"]
        assert hist["created_by"].str.contains(want["env_name"]).all()
        g = groups[groups["fingerprint"] == rows["fingerprint"].iloc[0]]
        assert len(g) == 1 and g["sightings"].iloc[0] == len(rows)
        assert g["in_final_view"].iloc[0]
    assert set(groups["secret"]) == {f["value"] for f in exp["findings"]}
    legacy = df[df["field"].str.startswith("layer_json[2].", na=False)]
    assert set(legacy["secret"]) == {f["value"] for f in exp["findings"]}
    assert (legacy["layer"] == 2).all()
    assert not df["secret"].str.contains("gguser").any()


def test_dive_images_have_no_confident_findings(shared_data: Path) -> None:
    scanned = 0
    for tar in sorted((shared_data / "dive").glob("*.tar")):
        try:
            img = lf.open_image(tar)
        except NotAnImageError:
            continue  # some dive "images" are placeholders holding only a README
        with img:
            df = find_secrets(img)
        scanned += 1
        assert list(df.columns)[:3] == ["rule", "title", "category"]
        assert (df["confidence"] != "high").all(), (tar.name, df[["rule", "path", "context"]])
        assert df.attrs["scan"]["files"] >= 1
    assert scanned >= 4
