"""Ad-hoc SQL over image frames (DuckDB) and Parquet export/import of many images.

DuckDB is optional (``pip install "layerforensics[sql]"``); Parquet needs only pyarrow.

>>> from layerforensics.query import image_sql, sql, to_parquet, read_parquet
>>> image_sql(img, "select path, size from files order by size desc limit 5")  # doctest: +SKIP
>>> sql("select * from a join b using (path)", a=df1, b=df2)                   # doctest: +SKIP
>>> to_parquet(img, "scan/"); frames = read_parquet("scan/")                   # doctest: +SKIP

Dtypes: results come back with pandas nullable dtypes (``Int64``, ``string``, ``boolean``,
``Float64``) and UTC datetimes; :func:`read_parquet` also restores ``category``. Columns of
Python dicts (``files.xattrs``, ``history.build_args``) are stored and queried as JSON text
(DuckDB's ``json_extract`` works on them); :func:`read_parquet` turns them back into dicts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ._progress import track
from .display import index_with_findings
from .errors import LayerForensicsError

__all__ = [
    "IMAGE_TABLES",
    "JSON_COLUMNS",
    "image_frames",
    "image_key",
    "image_sql",
    "parquet_sql",
    "read_parquet",
    "sql",
    "to_parquet",
]

#: Tables :func:`image_sql` registers (``secrets`` only when the Image offers ``img.secrets``).
IMAGE_TABLES = ("layers", "history", "files", "changes", "filesystem", "deleted", "secrets")

#: Object columns holding dicts, stored as JSON text: ``{frame: [columns]}``.
JSON_COLUMNS: dict[str, list[str]] = {"files": ["xattrs"], "history": ["build_args"]}


class SQLUnavailableError(LayerForensicsError, ImportError):
    """DuckDB is not installed."""


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - exercised only without duckdb
        raise SQLUnavailableError(
            "layerforensics.query",
            'SQL needs DuckDB: pip install "layerforensics[sql]" (or pip install duckdb)',
        ) from exc
    return duckdb


# ---------------------------------------------------------------------------- conversions
def _to_json(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _from_json(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    return json.loads(value)


def _storable(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """A copy where dict-valued object columns are JSON text (``string`` dtype)."""
    out = df.copy()
    json_cols = set(JSON_COLUMNS.get(name, []))
    for col in out.columns:
        if out[col].dtype != object:
            continue
        sample = out[col].dropna()
        if col in json_cols or (len(sample) and isinstance(sample.iloc[0], dict)):
            out[col] = pd.array([_to_json(v) for v in out[col]], dtype="string")
    return out


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.float32(): pd.Float32Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
}


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_NULLABLE.get)


# ---------------------------------------------------------------------------- SQL
def sql(query: str, /, **frames: pd.DataFrame) -> pd.DataFrame:
    """Run ``query`` on a private DuckDB connection where each keyword is a table.

    Parameters
    ----------
    query
        DuckDB SQL.
    **frames
        ``name=DataFrame`` pairs; each becomes a table called ``name``. Dict-valued object
        columns are passed as JSON text.

    Returns
    -------
    DataFrame
        The result, with nullable pandas dtypes (``Int64``, ``string``, ``boolean``, ``Float64``),
        UTC datetimes as ``datetime64[..., UTC]``; category columns come back as ``string``.

    Raises
    ------
    SQLUnavailableError
        DuckDB is not installed.
    """
    duckdb = _duckdb()
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, df in frames.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"table name {name!r} is not a plain SQL identifier")
            con.register(name, _arrow(_storable(name, df)))
        rel = con.sql(query)
        if rel is None:  # a statement without a result (CREATE, SET ...)
            return pd.DataFrame()
        fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
        return _to_pandas(fetch())
    finally:
        con.close()


def image_frames(img: Any, tables: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """The image's frames by table name (indexing layers first, with a progress bar).

    ``secrets`` is left out when damaged input stops the scan (the reason is in
    ``img.warnings``); ``filesystem`` is the final merged filesystem.
    """
    wanted = list(tables) if tables is not None else list(IMAGE_TABLES)
    unknown = set(wanted) - set(IMAGE_TABLES)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; choose from {IMAGE_TABLES}")
    frames: dict[str, pd.DataFrame] = {}
    if set(wanted) - {"history"}:
        found = index_with_findings(img, secrets="secrets" in wanted)
        if found is not None:
            frames["secrets"] = found
    for name in wanted:
        if name == "filesystem":
            frames[name] = img.filesystem()
        elif name != "secrets":  # already computed with the indexing pass
            frames[name] = getattr(img, name)
    return frames


def image_sql(img: Any, query: str, /, **extra: pd.DataFrame) -> pd.DataFrame:
    """Run ``query`` with the image's frames as tables.

    Tables: ``layers``, ``history``, ``files``, ``changes``, ``filesystem`` (final),
    ``deleted``, and ``secrets`` when the Image offers it; ``**extra`` adds your own frames.
    Only the tables the query mentions are computed.

    Returns
    -------
    DataFrame
        As :func:`sql`.
    """
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query.lower()))
    needed = [t for t in IMAGE_TABLES if t in words and t not in extra]
    return sql(query, **image_frames(img, needed), **extra)


# ---------------------------------------------------------------------------- Parquet
def image_key(img: Any) -> str:
    """The ``image`` value of an image's rows: its first tag, else ``sha256:`` + 12 hex."""
    return str(img.ref or img.image_id[:19])


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") or "image"


def to_parquet(
    img: Any,
    folder: str | os.PathLike[str],
    *,
    tables: Iterable[str] | None = None,
    key: str | None = None,
) -> dict[str, Path]:
    """Write the image's frames as ``folder/<table>/<key>.parquet``, with an ``image`` column.

    Call it for many images on the same folder, then :func:`read_parquet` (or DuckDB on
    ``folder/files/*.parquet``) reads them back as one table per frame. An ``images`` table
    (``image``, ``ref``, ``image_id``, ``platform``, ``format``, ``path``, ``layers``) is added.

    Parameters
    ----------
    img
        An opened Image.
    folder
        Output folder (created). Never inside the evidence.
    tables
        Which frames (default: all of :data:`IMAGE_TABLES` available).
    key
        The ``image`` value (default :func:`image_key`); the file name is derived from it.

    Returns
    -------
    dict
        ``{table: written path}``.
    """
    key = key or image_key(img)
    root = Path(folder)
    frames = image_frames(img, tables)
    frames["images"] = pd.DataFrame(
        {
            "ref": pd.array([img.ref], dtype="string"),
            "image_id": pd.array([img.image_id], dtype="string"),
            "platform": pd.array([img.platform], dtype="string"),
            "format": pd.array([img.format], dtype="string"),
            "path": pd.array([str(img.path)], dtype="string"),
            "layers": pd.array([img.layer_count], dtype="Int64"),
        }
    )
    written: dict[str, Path] = {}
    for name, df in track(list(frames.items()), "writing parquet"):
        out = _storable(name, df)
        out.insert(0, "image", pd.array([key] * len(out), dtype="string"))
        target = root / name / f"{_file_name(key)}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_arrow(out), target)
        written[name] = target
    return written


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if len(parts) == 1:
        return parts[0]
    cats: dict[str, list[Any]] = {}
    for p in parts:
        for col in p.columns:
            if isinstance(p[col].dtype, pd.CategoricalDtype):
                known = cats.setdefault(col, [])
                known.extend(c for c in p[col].cat.categories if c not in known)
    df = pd.concat(parts, ignore_index=True)
    for col, categories in cats.items():
        df[col] = pd.Categorical(df[col].astype("object"), categories=categories)
    return df


def read_parquet(
    folder: str | os.PathLike[str], *, tables: Iterable[str] | None = None, parse_json: bool = True
) -> dict[str, pd.DataFrame]:
    """Read a folder written by :func:`to_parquet` (any number of images) back.

    Returns
    -------
    dict
        ``{table: DataFrame}``, one frame per table holding every image's rows, ``image``
        first; dtypes as written (categories merged across images). With ``parse_json``,
        JSON columns (:data:`JSON_COLUMNS`) become dicts again.
    """
    root = Path(folder)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if tables is None else list(tables)
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        files = sorted((root / name).glob("*.parquet"))
        if not files:
            continue
        parts = [pq.read_table(f).to_pandas() for f in files]
        df = _concat(parts)
        if parse_json:
            for col in JSON_COLUMNS.get(name, []):
                if col in df:
                    df[col] = pd.Series(
                        [_from_json(v) for v in df[col]], index=df.index, dtype="object"
                    )
        out[name] = df
    return out


def parquet_sql(folder: str | os.PathLike[str], query: str) -> pd.DataFrame:
    """Run ``query`` with every table of a :func:`to_parquet` folder as a view (no loading)."""
    duckdb = _duckdb()
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        root = Path(folder)
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            glob = str(sub / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE VIEW {sub.name} AS SELECT * FROM read_parquet('{glob}', "
                "union_by_name=true)"
            )
        rel = con.sql(query)
        fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
        return _to_pandas(fetch())
    finally:
        con.close()
