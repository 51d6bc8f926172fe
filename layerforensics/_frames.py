"""Typed DataFrame construction shared by every frame: one place decides the dtypes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

FILE_TYPES = [
    "file",
    "dir",
    "symlink",
    "hardlink",
    "char",
    "block",
    "fifo",
    "whiteout",
    "opaque",
    "aufs-meta",
]
COMPRESSIONS = ["none", "gzip", "zstd", "xz", "bzip2"]


def category(values: Iterable[Any], categories: Sequence[str] | None = None) -> pd.Categorical:
    """A categorical; with known ``categories`` it is built from codes (fast on big frames)."""
    if categories is None:
        return pd.Categorical(list(values), categories=categories)
    code = {c: i for i, c in enumerate(categories)}
    codes = np.fromiter((code.get(v, -1) for v in values), dtype="int8")
    return pd.Categorical.from_codes(codes, categories=categories)


def string(values: Iterable[Any]) -> pd.array:
    """Text (None becomes <NA>) as pandas' Arrow-backed ``string`` dtype, built by Arrow directly
    (several times faster than element-wise conversion on large frames)."""
    return pd.arrays.ArrowStringArray(pa.array(list(values), type=pa.large_string()))


def nullable_int(values: Iterable[Any]) -> pd.array:
    """Integers where None or -1 means missing, as a nullable ``Int64`` array."""
    if isinstance(values, np.ndarray):
        arr = values.astype("int64", copy=False)
    else:
        arr = np.fromiter((-1 if v is None else v for v in values), dtype="int64")
    return pd.arrays.IntegerArray(arr, arr == -1)


def ints(values: Iterable[int]) -> pd.array:
    """Non-null integers as a nullable ``Int64`` array (built from numpy, not element-wise)."""
    arr = np.fromiter(values, dtype="int64")
    return pd.arrays.IntegerArray(arr, np.zeros(len(arr), dtype=bool))


def boolean(values: Iterable[Any]) -> pd.array:
    """Booleans (None becomes <NA>) as a nullable ``boolean`` array."""
    values = list(values)
    if None in values:
        return pd.array(values, dtype="boolean")
    flags = np.array(values, dtype=bool)
    return pd.arrays.BooleanArray(flags, np.zeros(len(flags), dtype=bool))


#: The seconds pandas' nanosecond datetimes can hold (years 1677 to 2262).
_DATETIME_SECONDS = (-9_223_372_036.0, 9_223_372_036.0)


def utc_seconds(values: Iterable[float | None]) -> tuple[pd.Series, int]:
    """Seconds since the epoch as UTC datetimes, and how many could not be represented.

    None becomes NaT; so does a value outside years 1677-2262 (a tar header can hold any
    number): the count lets the caller say so.
    """
    values = list(values)
    if None in values:
        values = [np.nan if v is None else v for v in values]
    seconds = np.array(values, dtype="float64")
    low, high = _DATETIME_SECONDS
    outside = (seconds < low) | (seconds > high)
    if outside.any():
        seconds[outside] = np.nan
    return pd.to_datetime(pd.Series(seconds), unit="s", utc=True), int(outside.sum())


def utc_text(values: Iterable[str | None]) -> pd.Series:
    """RFC 3339 strings (any precision, any offset) to UTC datetimes; unparsable become NaT."""
    return pd.to_datetime(
        pd.Series(list(values), dtype="object"), utc=True, errors="coerce", format="ISO8601"
    )


# pandas imports (and compiles) its Arrow version checks on the first Arrow-backed array; done
# here, at import, rather than inside the first frame a user asks for.
string([])
