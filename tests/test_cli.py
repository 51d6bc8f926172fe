"""The command line: every subcommand on a real archive, machine formats complete, clean errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from layerforensics.builder import Dir, File, ImageBuilder, Whiteout
from layerforensics.cli import main


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = ImageBuilder()
    b.layer([Dir("/app"), File("/app/secret.txt", b"top secret\n")], created_by="COPY . /app")
    b.layer(
        [Whiteout("/app/secret.txt"), File("/app/run.sh", b"#!/bin/sh\n", mode=0o755)],
        created_by="|1 TOKEN=abc /bin/sh -c rm /app/secret.txt",
    )
    b.step('/bin/sh -c #(nop)  CMD ["/app/run.sh"]')
    path = tmp_path_factory.mktemp("cli") / "img.tar"
    b.save_docker(path, tag="demo:1")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command", ["layers", "history", "files", "changes", "deleted", "filesystem"]
)
def test_frame_commands_in_every_format(
    capsys: pytest.CaptureFixture[str], archive: Path, command: str
) -> None:
    code, out, _ = run(capsys, command, str(archive), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    code, csv_out, _ = run(capsys, command, str(archive), "--format", "csv")
    assert code == 0 and len(csv_out.strip().splitlines()) == len(rows) + 1
    code, table, _ = run(capsys, command, str(archive))
    assert code == 0 and table.strip()


def test_deleted_json_values(capsys: pytest.CaptureFixture[str], archive: Path) -> None:
    _, out, _ = run(capsys, "deleted", str(archive), "--format", "json")
    (row,) = json.loads(out)
    assert row["path"] == "/app/secret.txt"
    assert (row["layer"], row["deleted_layer"], row["cause"], row["size"]) == (0, 1, "whiteout", 11)


def test_info_and_images(capsys: pytest.CaptureFixture[str], archive: Path) -> None:
    _, out, _ = run(capsys, "info", str(archive), "--format", "json")
    info = json.loads(out)
    assert info["tags"] == ["demo:1"] and info["layers"] == 2 and info["deleted_paths"] == 1
    assert info["all_verified"] is True
    _, out, _ = run(capsys, "images", str(archive), "--format", "json")
    assert json.loads(out)[0]["ref"] == "demo:1"


def test_cat_reads_a_deleted_file(archive: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerforensics.cli",
            "cat",
            str(archive),
            "/app/secret.txt",
            "--layer",
            "0",
        ],
        capture_output=True,
        check=True,
    )
    assert out.stdout == b"top secret\n"


def test_extract_and_dockerfile(
    capsys: pytest.CaptureFixture[str], archive: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "extract", str(archive), str(tmp_path / "out"), "--layer", "0")
    assert code == 0 and "wrote 1 files" in err
    assert (tmp_path / "out/app/secret.txt").read_bytes() == b"top secret\n"
    _, out, _ = run(capsys, "dockerfile", str(archive))
    assert "COPY . /app" in out and "ARG TOKEN=abc" in out and "RUN rm /app/secret.txt" in out
    assert 'CMD ["/app/run.sh"]' in out


def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, archive: Path
) -> None:
    (tmp_path / "junk.tar").write_bytes(b"\0" * 10)
    code, _, err = run(capsys, "layers", str(tmp_path / "junk.tar"))
    assert code == 2 and err.startswith("layerforensics: error:") and "junk.tar" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "cat", str(archive), "/nope")
    assert code == 2 and "/nope" in err
    code, _, err = run(capsys, "filesystem", str(archive), "--layer", "9")
    assert code == 2 and "out of range" in err


def test_print_frame_table_shortens_but_json_is_complete() -> None:
    import pandas as pd

    from layerforensics._output import print_frame

    df = pd.DataFrame({"path": ["/" + "x" * 200], "size": [123456]})
    buf = io.StringIO()
    print_frame(df, "table", buf)
    assert "123 kB" in buf.getvalue() and "x" * 200 not in buf.getvalue()
    buf = io.StringIO()
    print_frame(df, "json", buf)
    assert json.loads(buf.getvalue()) == [{"path": "/" + "x" * 200, "size": 123456}]
