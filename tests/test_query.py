"""SQL over image frames and Parquet round-trips, asserted on values and dtypes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _examples import make_examples_module
from conftest import missing

import layerforensics as lf
from layerforensics.query import image_sql, parquet_sql, read_parquet, sql, to_parquet

EX = make_examples_module()


@pytest.fixture(autouse=True)
def _duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        missing('duckdb is not installed (pip install "layerforensics[sql]")')


def test_sql_on_user_frames_values_and_dtypes() -> None:
    a = pd.DataFrame(
        {
            "path": pd.array(["/a", "/b", None], dtype="string"),
            "size": pd.array([1, None, 3], dtype="Int64"),
            "ok": pd.array([True, None, False], dtype="boolean"),
            "t": pd.to_datetime(["2024-01-01T00:00:00Z"] * 3, utc=True),
        }
    )
    out = sql("select path, size * 2 as double, ok, t from a order by size nulls last", a=a)
    assert out["path"].tolist()[:2] == ["/a", None] or out["path"].iloc[0] == "/a"
    assert out["double"].tolist()[0] == 2 and out["double"].isna().iloc[2]
    assert str(out["path"].dtype) == "string"
    assert str(out["double"].dtype) == "Int64"
    assert str(out["ok"].dtype) == "boolean"
    assert str(out["t"].dtype).startswith("datetime64") and str(out["t"].dt.tz) == "UTC"
    assert out["t"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_sql_rejects_odd_table_names() -> None:
    with pytest.raises(ValueError, match="identifier"):
        sql("select 1", **{"bad name": pd.DataFrame({"a": [1]})})


def test_image_sql_largest_and_join(demo: lf.Image) -> None:
    got = image_sql(
        demo,
        "select path, size from filesystem where type = 'file' order by size desc, path limit 2",
    )
    fs = demo.filesystem()
    want = fs[fs["type"] == "file"].sort_values(["size", "path"], ascending=[False, True]).head(2)
    assert got["path"].tolist() == want["path"].tolist()
    assert got["size"].tolist() == want["size"].tolist()
    joined = image_sql(
        demo,
        "select c.layer, l.instruction, count(*) n from changes c "
        "join layers l using (layer) group by all order by c.layer",
    )
    assert joined["layer"].tolist() == sorted(set(demo.changes["layer"]))
    assert int(joined["n"].sum()) == len(demo.changes)


def test_image_sql_json_columns_and_secrets(classic: lf.Image) -> None:
    args = image_sql(
        classic,
        "select step, json_extract_string(build_args, '$.NPM_TOKEN') tok "
        "from history where build_args <> '{}'",
    )
    assert args["tok"].tolist() == [EX.NPM_TOKEN]
    assert args["step"].tolist() == [7]
    xattrs = image_sql(classic, "select count(*) n, count(xattrs) nx from files")
    assert int(xattrs["n"].iloc[0]) == len(classic.files)
    found = image_sql(
        classic, "select distinct path, layer, status from secrets where source = 'file'"
    )
    assert found["path"].tolist() == ["/app/.env"]
    assert found["layer"].tolist() == [3] and found["status"].tolist() == ["deleted"]


def test_parquet_round_trip_many_images(classic: lf.Image, demo: lf.Image, tmp_path: Path) -> None:
    to_parquet(classic, tmp_path)
    written = to_parquet(demo, tmp_path)
    assert written["files"].name == "example_layers-demo_1.0.parquet"
    frames = read_parquet(tmp_path)
    assert {"files", "layers", "history", "changes", "filesystem", "deleted", "images"} <= set(
        frames
    )
    files = frames["files"]
    assert set(files["image"]) == {"example/classic-secret:1.0", "example/layers-demo:1.0"}
    assert len(files) == len(classic.files) + len(demo.files)
    for name, img in (
        ("files", demo),
        ("layers", demo),
        ("changes", classic),
        ("history", classic),
        ("deleted", demo),
    ):
        back = frames[name]
        back = back[back["image"] == (img.ref)].drop(columns="image").reset_index(drop=True)
        orig = getattr(img, name).reset_index(drop=True)
        pd.testing.assert_frame_equal(back, orig, check_categorical=False)
        for col in orig.columns:
            assert str(back[col].dtype) == str(orig[col].dtype) or (
                isinstance(orig[col].dtype, pd.CategoricalDtype)
                and isinstance(back[col].dtype, pd.CategoricalDtype)
            ), (name, col, back[col].dtype, orig[col].dtype)
    hist = frames["history"]
    assert hist.loc[hist["build_args"].map(bool), "build_args"].tolist() == [
        {"NPM_TOKEN": EX.NPM_TOKEN}
    ]
    images = frames["images"]
    assert images["layers"].tolist() == [5, 6] and str(images["layers"].dtype) == "Int64"
    counts = parquet_sql(
        tmp_path, "select image, count(*) n from deleted group by image order by image"
    )
    assert counts["n"].tolist() == [1, 3]
