"""Printing frames for the command line: readable tables, complete machine formats."""

from __future__ import annotations

import json
import math
import shutil
import sys
from typing import Any, Literal, TextIO

import pandas as pd

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")


def human_size(n: Any, _pos: object = None) -> str:
    """A byte count as decimal SI text, as dive (go-humanize) and ``docker images`` print it.

    One decimal below 10 of a unit, none above (``6.4 kB``, ``13 kB``, ``1.2 MB``); missing
    values (None, <NA>, NaN) give ``""``. The unused second argument lets matplotlib use it as
    a tick formatter.
    """
    if n is None or n is pd.NA or (isinstance(n, float) and math.isnan(n)):
        return ""
    value = float(n)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            if unit == "B":
                return f"{sign}{value:.0f} B"
            return f"{sign}{value:.1f} {unit}" if value < 10 else f"{sign}{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _jsonable(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "item"):
        return value.item()
    return value


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row as a JSON-ready dict (all columns, full values)."""
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def print_frame(df: pd.DataFrame, fmt: Format = "table", out: TextIO | None = None) -> None:
    """Write ``df`` to ``out`` (stdout) as an aligned table, CSV or JSON records.

    Tables shorten long cells and show sizes in decimal units so they fit a terminal; CSV and
    JSON carry every column at full precision.
    """
    out = out or sys.stdout
    if fmt == "json":
        json.dump(frame_records(df), out, indent=2, default=str)
        out.write("\n")
    elif fmt == "csv":
        df.to_csv(out, index=False)
    else:
        shown = df.copy()
        for col in shown.columns:
            if col in ("size", "compressed_size", "tar_size", "total_size", "kept_size"):
                shown[col] = shown[col].map(human_size)
            elif col in ("diff_id", "digest", "sha256", "fingerprint"):
                shown[col] = shown[col].astype("string").str.slice(0, 19)
            elif shown[col].dtype == object or isinstance(shown[col].dtype, pd.StringDtype):
                shown[col] = shown[col].astype("string").str.slice(0, 60)
        width = shutil.get_terminal_size((160, 40)).columns
        with pd.option_context(
            "display.max_rows",
            None,
            "display.max_columns",
            None,
            "display.width",
            width,
            "display.max_colwidth",
            60,
        ):
            text = shown.to_string(index=False) if len(shown) else "(no rows)"
        out.write(text + "\n")
