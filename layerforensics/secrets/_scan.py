"""Secrets in an image: every file version of every layer, history and config, with status."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from layerforensics.errors import LayerForensicsError
from layerforensics.secrets._engine import Engine, Match, is_binary
from layerforensics.secrets._heuristics import redact
from layerforensics.secrets._metadata import Field, config_fields, guess_base_layers, history_fields
from layerforensics.secrets._rules import CONFIDENCES, SEVERITIES, Rule, RuleSet, load_rules

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "FINDING_COLUMNS",
    "SecretScanner",
    "find_secrets",
    "recover",
    "redact_frame",
    "scan_bytes",
    "secret_groups",
]

#: Files larger than this (bytes) are not scanned by default (Trivy warns at 10 MB; TruffleHog
#: skips at 50 MB). Pass ``max_file_size=None`` to scan everything.
DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024

STATUSES = ("present", "deleted", "overwritten", "history", "config")
SOURCES = ("file", "history", "config")

#: Columns of :func:`find_secrets` in order.
FINDING_COLUMNS = (
    "rule",
    "title",
    "category",
    "severity",
    "confidence",
    "source",
    "path",
    "field",
    "layer",
    "entry",
    "step",
    "created_by",
    "line",
    "status",
    "status_layer",
    "version_status",
    "alive_as",
    "base_layer",
    "secret",
    "fingerprint",
    "entropy",
    "reason",
    "context",
)

_BUILTIN_ENGINE: list[Engine] = []


def _engine(rules: str | Path | RuleSet | Sequence[Rule] | Engine | None) -> Engine:
    if isinstance(rules, Engine):
        return rules
    if rules is None:
        if not _BUILTIN_ENGINE:
            _BUILTIN_ENGINE.append(Engine(load_rules(None)))
        return _BUILTIN_ENGINE[0]
    return Engine(load_rules(rules))


def fingerprint(secret: str) -> str:
    """SHA-256 (hex) of the raw secret value: stable across images, never of redacted text."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _record(m: Match, *, redact_values: bool, **where: Any) -> dict[str, Any]:
    return {
        "rule": m.rule.id,
        "title": m.rule.title,
        "category": m.rule.category,
        "severity": m.rule.severity,
        "confidence": m.confidence,
        "line": m.line,
        "secret": redact(m.secret) if redact_values else m.secret,
        "fingerprint": fingerprint(m.secret),
        "entropy": m.entropy,
        "reason": m.reason,
        "context": m.context if redact_values else m.raw_context,
        "_raw": m.secret,
        **where,
    }


def scan_bytes(
    data: bytes,
    *,
    path: str | None = None,
    source: str = "file",
    redact: bool = True,
    rules: str | Path | RuleSet | Sequence[Rule] | None = None,
) -> pd.DataFrame:
    """Scan one buffer (no image needed): the engine on its own.

    Parameters
    ----------
    data
        Bytes to scan. Binary data (a NUL in the first 8 KiB) yields no rows.
    path
        Path the bytes would have in an image (enables sensitive-file rules).
    source, redact, rules
        As in :func:`find_secrets`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`find_secrets`; image columns (layer, status, ...) are missing values.
    """
    eng = _engine(rules)
    rows: list[dict[str, Any]] = []
    if source != "file" or not is_binary(data):
        for m in eng.scan(data, path=path, source=source):
            rows.append(_record(m, redact_values=redact, source=source, path=path))
    return _frame(rows)


class SecretScanner:
    """A file-content visitor: feed it ``(FileRow, bytes)`` pairs as a layer is read.

    This is what lets the secret scan ride on the core's single decompression pass: the core can
    call :meth:`visit` from its tar walk, or :func:`find_secrets` drives it from
    ``img.iter_contents()``.

    Parameters
    ----------
    rules
        Rules (see :func:`layerforensics.secrets.load_rules`).
    max_file_size
        Skip files larger than this many bytes (``None``: no limit).
    """

    def __init__(
        self,
        rules: str | Path | RuleSet | Sequence[Rule] | Engine | None = None,
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        self.engine = _engine(rules)
        self.max_file_size = max_file_size
        self.hits: list[tuple[Any, Match]] = []
        self.scanned_files = 0
        self.scanned_bytes = 0
        self.skipped_binary = 0
        self.skipped_large = 0

    def visit(self, row: Any, data: bytes) -> None:
        """Scan one file version (``row`` is a ``files`` row: layer, entry, path, ...)."""
        size = len(data)
        if self.max_file_size is not None and size > self.max_file_size:
            self.skipped_large += 1
            return
        if is_binary(data):
            self.skipped_binary += 1
            return
        self.scanned_files += 1
        self.scanned_bytes += size
        for m in self.engine.scan(data, path=str(row.path), source="file"):
            self.hits.append((row, m))


def hardlink_survivors(filesystem: pd.DataFrame) -> dict[tuple[int, int], list[str]]:
    """Map file versions ``(layer, entry)`` to final-filesystem hardlink paths that keep them.

    Uses the ``content_layer``/``content_entry`` columns of ``img.filesystem()``: the version a
    hardlink resolves to, even when its source path was deleted later.
    """
    out: dict[tuple[int, int], list[str]] = {}
    links = filesystem[filesystem["type"] == "hardlink"].dropna(
        subset=["content_layer", "content_entry"]
    )
    for path, layer, entry in zip(
        links["path"], links["content_layer"], links["content_entry"], strict=True
    ):
        out.setdefault((int(layer), int(entry)), []).append(str(path))
    return out


def _status_of(version_status: str | None) -> str:
    if version_status in ("overwritten", "shadowed"):
        return "overwritten"
    if version_status == "deleted":
        return "deleted"
    return "present"


def _scan_fields(
    eng: Engine, fields: Iterable[Field], redact_values: bool, base: set[int]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int | None, str]] = set()  # (source, step/field group, fingerprint)
    for f in fields:
        group = f"{f.source}:{f.step}" if f.step is not None else f"{f.source}:{f.field}"
        for m in eng.scan(f.text.encode("utf-8", "surrogateescape"), path=None, source=f.source):
            fp = fingerprint(m.secret)
            key = (group, None, fp)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                _record(
                    m,
                    redact_values=redact_values,
                    source=f.source,
                    field=f.field,
                    layer=f.layer,
                    step=f.step,
                    created_by=f.created_by,
                    status=f.source,
                    base_layer=(f.layer in base) if f.layer is not None else pd.NA,
                    line=pd.NA if f.pair or "\n" not in f.text else m.line,
                )
            )
    return rows


def find_secrets(
    image: Any,
    *,
    redact: bool = True,
    rules: str | Path | RuleSet | Sequence[Rule] | None = None,
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    sources: Sequence[str] = SOURCES,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Every sighting of a secret in an image: files of every layer, history and config.

    Every regular-file version of every layer is scanned, deleted and overwritten ones included,
    base layers included (flagged in ``base_layer``, not skipped). Binary files (a NUL byte in
    the first 8 KiB) and files over ``max_file_size`` are skipped; the counts are in
    ``df.attrs["scan"]``.

    Parameters
    ----------
    image
        An opened :class:`layerforensics.Image`.
    redact
        Replace secret values (in ``secret`` and ``context``) with a short prefix and ``********``.
        ``fingerprint`` is always the SHA-256 of the raw value.
    rules
        ``None`` (built-in rules), a :class:`RuleSet`, or a TOML path (own or gitleaks format).
    max_file_size
        Size cap in bytes for file contents (default 10 MiB); ``None`` for no cap.
    sources
        Any of ``"file"``, ``"history"``, ``"config"``.
    progress
        Optional callback ``(files_scanned, bytes_scanned)``.

    Returns
    -------
    pandas.DataFrame
        One row per sighting, columns:

        - ``rule`` (string): rule id; ``title`` (string); ``category`` (category).
        - ``severity`` (ordered category low < medium < high < critical).
        - ``confidence`` (ordered category low < medium < high): generic keyword=value rules
          start at ``medium``, vendor and sensitive-file rules at ``high``; ``low`` for known
          example values, placeholders, repeated/sequential values, test/vendor/docs paths and
          plain lowercase words under generic rules (see ``reason``).
        - ``source`` (category: file, history, config).
        - ``path`` (string): file path, for file sightings.
        - ``field`` (string): metadata field (``Env[3]``, ``Labels.x``, ``Cmd``,
          ``history[5].created_by``, ``history[5].args.NAME`` for a build arg,
          ``layer_json[2].config.Env[1]`` for legacy per-layer json).
        - ``layer`` (Int64): layer holding the file version (or the history step's layer).
        - ``entry`` (Int64): position of the file in its layer tar (for :func:`recover`).
        - ``step`` (Int64): history index, for history sightings.
        - ``created_by`` (string): the build step that wrote the file (or the history entry).
        - ``line`` (Int64): 1-based line of the match start.
        - ``status`` (category: present, deleted, overwritten, history, config).
        - ``status_layer`` (Int64): layer that deleted or overwrote this file version.
        - ``version_status`` (string): the ``files`` frame status of the version (present,
          overwritten, shadowed, deleted) before hardlink survival is applied.
        - ``alive_as`` (string): final-filesystem hardlink path(s) that keep this version's bytes
          reachable (then ``status`` is ``present``), comma-separated.
        - ``base_layer`` (boolean): the layer looks inherited from the base image.
        - ``secret`` (string): the value, redacted unless ``redact=False``.
        - ``fingerprint`` (string): SHA-256 hex of the raw value.
        - ``entropy`` (Float64): Shannon entropy of the value, bits/char.
        - ``reason`` (string): why confidence was lowered: ``known-example``, ``placeholder``,
          ``low-diversity``, ``noisy-path`` or ``plain-word``.
        - ``context`` (string): the line, redacted like ``secret``.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise LayerForensicsError(
            "find_secrets", f"unknown sources {sorted(unknown)}; choose from {list(SOURCES)}"
        )
    eng = _engine(rules)
    rows: list[dict[str, Any]] = []
    history = image.history
    base = set(guess_base_layers(history))
    scan_info: dict[str, Any] = {"rules": len(eng.rules), "prefilter": eng.screen.backend}
    if "file" in sources:
        scanner = SecretScanner(eng, max_file_size=max_file_size)
        for row, data in image.iter_contents(max_size=max_file_size):
            scanner.visit(row, data)
            if progress is not None:
                progress(scanner.scanned_files, scanner.scanned_bytes)
        rows.extend(_file_rows(image, scanner, redact, base))
        scan_info.update(
            files=scanner.scanned_files,
            bytes=scanner.scanned_bytes,
            skipped_binary=scanner.skipped_binary,
            skipped_large=scanner.skipped_large,
        )
    if "history" in sources:
        rows.extend(_scan_fields(eng, history_fields(history), redact, base))
    if "config" in sources:
        legacy = image.legacy_layer_json
        rows.extend(_scan_fields(eng, config_fields(image.config, legacy), redact, base))
    if redact:
        _redact_created_by(rows)
    df = _frame(rows)
    df.attrs["scan"] = scan_info
    return df


def _redact_created_by(rows: list[dict[str, Any]]) -> None:
    """History text repeats build args and ENV values: redact every raw secret found in it."""
    raws = {r["_raw"] for r in rows if r.get("_raw")}
    ordered = sorted(raws, key=len, reverse=True)
    for r in rows:
        cb = r.get("created_by")
        if cb:
            for s in ordered:
                if s in cb:
                    cb = cb.replace(s, redact(s))
            r["created_by"] = cb


def redact_frame(
    frame: pd.DataFrame,
    image: Any,
    *,
    columns: Sequence[str] = ("created_by",),
    rules: str | Path | RuleSet | Sequence[Rule] | None = None,
) -> pd.DataFrame:
    """A copy of ``frame`` with every secret found in the image's metadata redacted.

    For displaying ``img.history`` or ``img.layers`` without exposing build arguments and
    ``ENV`` values: the history and config are scanned (files are not), and every raw value
    found is replaced by its redaction (see :func:`redact`) in ``columns``.

    Parameters
    ----------
    frame
        Any frame, typically ``img.history`` or ``img.layers``.
    image
        The image whose history and config are scanned.
    columns
        Text columns to redact (those missing from ``frame`` are ignored).
    rules
        As in :func:`find_secrets`.

    Returns
    -------
    pandas.DataFrame
        Same index, columns and dtypes as ``frame``.
    """
    found = find_secrets(image, redact=False, rules=rules, sources=("history", "config"))
    raws = sorted(set(found["secret"].dropna()), key=len, reverse=True)
    out = frame.copy()
    for c in columns:
        if c not in out or not raws:
            continue

        def clean(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            for raw in raws:
                if raw in v:
                    v = v.replace(raw, redact(raw))
            return v

        out[c] = out[c].map(clean).astype(frame[c].dtype)
    return out


def _file_rows(
    image: Any, scanner: SecretScanner, redact_values: bool, base: set[int]
) -> list[dict[str, Any]]:
    if not scanner.hits:
        return []
    files = image.files
    idx = files.set_index(["layer", "entry"])
    survivors = hardlink_survivors(image.filesystem())
    layers = image.layers
    created = dict(zip(layers["layer"].astype(int), layers["created_by"], strict=True))
    rows = []
    for row, m in scanner.hits:
        key = (int(row.layer), int(row.entry))
        rec = idx.loc[key]
        vs, sl = str(rec["status"]), rec["status_layer"]
        alive = survivors.get(key)
        status = "present" if alive else _status_of(vs)
        cb = created.get(key[0])
        rows.append(
            _record(
                m,
                redact_values=redact_values,
                source="file",
                path=str(row.path),
                layer=key[0],
                entry=key[1],
                created_by=None if cb is None or pd.isna(cb) else str(cb),
                status=status,
                status_layer=pd.NA if status == "present" or sl is None else sl,
                version_status=vs,
                alive_as=", ".join(alive) if alive else None,
                base_layer=key[0] in base,
            )
        )
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    for c in (
        "rule",
        "title",
        "path",
        "field",
        "created_by",
        "version_status",
        "alive_as",
        "secret",
        "fingerprint",
        "reason",
        "context",
    ):
        df[c] = df[c].astype("string")
    for c in ("layer", "entry", "step", "line", "status_layer"):
        df[c] = pd.array(df[c].where(df[c].notna(), None).tolist(), dtype="Int64")
    df["entropy"] = df["entropy"].astype("Float64")
    df["base_layer"] = pd.array(
        df["base_layer"].where(df["base_layer"].notna(), None).tolist(), dtype="boolean"
    )
    df["category"] = df["category"].astype("category")
    df["severity"] = pd.Categorical(df["severity"], categories=SEVERITIES, ordered=True)
    df["confidence"] = pd.Categorical(df["confidence"], categories=CONFIDENCES, ordered=True)
    df["source"] = pd.Categorical(df["source"], categories=SOURCES)
    df["status"] = pd.Categorical(df["status"], categories=STATUSES)
    return df


def secret_groups(image_or_findings: Any, **kwargs: Any) -> pd.DataFrame:
    """One row per distinct secret (by fingerprint) with every place it appears.

    Parameters
    ----------
    image_or_findings
        An image (then its cached ``image.secrets(**kwargs)`` is used) or a findings frame.

    Returns
    -------
    pandas.DataFrame
        Sorted by severity then confidence (highest first); columns:

        - ``fingerprint`` (string), ``secret`` (string, as in the findings: redacted or not).
        - ``rule`` (string): the rule of the most severe sighting; ``rules`` (string): all rules.
        - ``category`` (string), ``severity``, ``confidence`` (ordered categories): the maximum.
        - ``sightings`` (Int64): number of rows; ``sources``, ``statuses`` (string, comma-joined).
        - ``layers`` (string): comma-joined layer indexes; ``first_layer`` (Int64).
        - ``locations`` (string): ``path@layer`` for files, the field name for metadata,
          separated by ``; ``.
        - ``deleted_only`` (boolean): every file sighting is deleted/overwritten and none is in
          metadata — the secret is only reachable by layer archaeology.
        - ``in_final_view`` (boolean): visible without layer archaeology (present file, config,
          or history).
    """
    df = image_or_findings
    if not isinstance(df, pd.DataFrame):
        df = image_or_findings.secrets(**kwargs)  # the Image caches it: no second scan
    cols = [
        "fingerprint",
        "secret",
        "rule",
        "rules",
        "category",
        "severity",
        "confidence",
        "sightings",
        "sources",
        "statuses",
        "layers",
        "first_layer",
        "locations",
        "deleted_only",
        "in_final_view",
    ]
    if len(df) == 0:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in cols})
    out = []
    for fp, g in df.groupby("fingerprint", sort=False, observed=True):
        g = g.sort_values(["severity", "confidence"], ascending=False)
        locs = []
        for r in g.itertuples(index=False):
            locs.append(f"{r.path}@{r.layer}" if r.source == "file" else str(r.field))
        statuses = set(g["status"].astype(str))
        layers = sorted({int(x) for x in g["layer"].dropna()})
        out.append(
            {
                "fingerprint": fp,
                "secret": g["secret"].iloc[0],
                "rule": g["rule"].iloc[0],
                "rules": ", ".join(dict.fromkeys(g["rule"].astype(str))),
                "category": str(g["category"].iloc[0]),
                "severity": g["severity"].max(),
                "confidence": g["confidence"].max(),
                "sightings": len(g),
                "sources": ", ".join(sorted(set(g["source"].astype(str)))),
                "statuses": ", ".join(s for s in STATUSES if s in statuses),
                "layers": ", ".join(map(str, layers)),
                "first_layer": layers[0] if layers else None,
                "locations": "; ".join(dict.fromkeys(locs)),
                "deleted_only": statuses <= {"deleted", "overwritten"},
                "in_final_view": bool(statuses & {"present", "config", "history"}),
            }
        )
    res = pd.DataFrame(out, columns=cols)
    for c in (
        "fingerprint",
        "secret",
        "rule",
        "rules",
        "category",
        "sources",
        "statuses",
        "layers",
        "locations",
    ):
        res[c] = res[c].astype("string")
    res["severity"] = pd.Categorical(res["severity"], categories=SEVERITIES, ordered=True)
    res["confidence"] = pd.Categorical(res["confidence"], categories=CONFIDENCES, ordered=True)
    res["sightings"] = res["sightings"].astype("Int64")
    res["first_layer"] = pd.array(res["first_layer"].tolist(), dtype="Int64")
    res["deleted_only"] = res["deleted_only"].astype("boolean")
    res["in_final_view"] = res["in_final_view"].astype("boolean")
    return res.sort_values(["severity", "confidence", "sightings"], ascending=False).reset_index(
        drop=True
    )


def recover(image: Any, row: Mapping[str, Any] | Any) -> bytes:
    """The bytes of the file version that held a secret, read from its own layer.

    Parameters
    ----------
    image
        The image the finding came from.
    row
        A row of :func:`find_secrets` (Series, dict or namedtuple) with ``source == "file"``.

    Returns
    -------
    bytes
        ``image.read_entry(row.layer, row.entry)`` — works for deleted and overwritten versions.
    """
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    if str(get("source")) != "file" or pd.isna(get("layer")) or pd.isna(get("entry")):
        where = get("field") or get("path") or "?"
        raise LayerForensicsError(
            str(where),
            f"only file sightings can be recovered (this one is source={get('source')!s})",
        )
    return image.read_entry(int(get("layer")), int(get("entry")))
