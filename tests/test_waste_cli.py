"""``layerforensics waste``: dive's CI rules, .dive-ci files, table and JSON output."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from test_waste import _dive_image, _forensic_image

from layerforensics import _cli_waste
from layerforensics.errors import LayerForensicsError
from layerforensics.waste import check_rules, efficiency, parse_bytes, read_dive_ci


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="layerforensics")
    _cli_waste.add_parser(parser.add_subparsers())
    args = parser.parse_args(["waste", *argv])
    out = io.StringIO()
    return args.func(args, out), out.getvalue()


@pytest.fixture(autouse=True)
def _no_dive_ci_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .dive-ci in the working directory


def test_parse_bytes_like_go_humanize() -> None:
    assert parse_bytes("20MB") == parse_bytes("20Mb") == 20_000_000
    assert parse_bytes("50kB") == 50_000
    assert parse_bytes("20MiB") == 20_971_520
    assert (
        parse_bytes("1B") == 1 and parse_bytes("1,000") == 1000 and parse_bytes("1.5 GB") == 1.5e9
    )
    with pytest.raises(ValueError):
        parse_bytes("not_a_size")


def test_rules_like_dive_evaluator_test() -> None:
    # cmd/dive/cli/internal/command/ci/evaluator_test.go, on test-docker-image (dive mode)
    import layerforensics as lf

    e = efficiency(lf.open_image(_dive_image("test-docker-image.tar")), mode="dive")

    def statuses(rules: dict[str, str]) -> list[str]:
        return list(check_rules(e, rules)["status"].astype(str))

    # rows sorted by rule name: highestUserWastedPercent, highestWastedBytes, lowestEfficiency
    all3 = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")
    assert statuses(dict(zip(all3, ("0.99", "1B", "0.01"), strict=True))) == ["fail"] * 3
    assert statuses(dict(zip(all3, ("0.9", "50kB", "0.5"), strict=True))) == ["pass"] * 3
    assert statuses(dict.fromkeys(all3, "disabled")) == ["skip"] * 3
    assert statuses(dict(zip(all3, ("0.9", "1B", "0.5"), strict=True))) == [
        "pass", "fail", "pass"]  # fmt: skip
    for bad in (
        {"lowestEfficiency": "1.1"},
        {"lowestEfficiency": "-0.1"},
        {"lowestEfficiency": "not_a_number"},
        {"highestWastedBytes": "not_a_size"},
        {"highestUserWastedPercent": "1.1"},
        {"highestUserWastedPercent": "-0.1"},
        {"highestUserWastedPercent": "not_a_number"},
        {"noSuchRule": "1"},
    ):
        with pytest.raises(LayerForensicsError):
            check_rules(e, bad)
    # defaults 0.9 / disabled / 0.1: the user-wasted rule fails (0.4835 > 0.1)
    assert statuses({}) == ["fail", "skip", "pass"]


def test_ci_exit_codes_and_report() -> None:
    img = str(_dive_image("test-docker-image.tar"))
    code, out = run(img, "--mode", "dive", "--ci", "--highest-user-wasted-percent", "0.5")
    assert code == 0
    assert "efficiency:        98.44 %" in out
    assert "wasted bytes:      32025 bytes (32 kB)" in out
    assert "user wasted:       48.35 %" in out
    assert out.rstrip().endswith("PASS [pass:2 fail:0 skip:1]")
    code, out = run(img, "--mode", "dive", "--ci", "--lowest-efficiency", "0.99")
    assert code == 1
    assert "FAIL  lowestEfficiency (0.99): efficiency 0.9844 < 0.99" in out
    assert out.rstrip().endswith("FAIL [pass:0 fail:2 skip:1]")
    assert run(img, "--ci", "--lowest-efficiency", "90")[0] == 2  # misconfigured


def test_dive_ci_file(tmp_path: Path) -> None:
    img = str(_dive_image("test-docker-image.tar"))
    # the repo's .data/.dive-ci
    (tmp_path / ".dive-ci").write_text(
        "rules:\n  # If the efficiency is measured below X%, mark as failed.\n"
        "  lowestEfficiency: 0.95\n  highestWastedBytes: 20Mb  # 20 MB\n"
        "  highestUserWastedPercent: '0.5'\n"
    )
    assert read_dive_ci(str(tmp_path / ".dive-ci")) == {
        "lowestEfficiency": "0.95",
        "highestWastedBytes": "20Mb",
        "highestUserWastedPercent": "0.5",
    }
    code, out = run(img, "--mode", "dive", "--ci")  # picked up from the working directory
    assert code == 0 and "PASS [pass:3 fail:0 skip:0]" in out
    # flags override the file
    assert run(img, "--mode", "dive", "--ci", "--highest-wasted-bytes", "32024")[0] == 1
    other = tmp_path / "strict.yaml"
    other.write_text("rules:\n  lowestEfficiency: 0.99\n")
    assert run(img, "--mode", "dive", "--ci", "--ci-config", str(other))[0] == 1


def test_json_output(tmp_path: Path) -> None:
    _forensic_image(tmp_path)
    code, out = run(str(tmp_path / "forensic.tar"), "--format", "json", "--ci")
    assert code == 1  # 1980 / 1875 user wasted > 0.1
    doc = json.loads(out)
    assert doc["summary"]["reclaimable_bytes"] == 1980
    assert doc["summary"]["mode"] == "layerforensics"
    assert [r["layer"] for r in doc["layers"]] == [0, 1, 2, 3]
    assert doc["layers"][2]["deleted_bytes"] == 570
    assert {r["path"]: r["cause"] for r in doc["paths"]}["/c"] == "moved-away"
    assert doc["paths"][0]["layers"] == [0, 1]
    assert doc["ci"]["passed"] is False
    assert [r["status"] for r in doc["ci"]["rules"]] == ["fail", "skip", "fail"]
