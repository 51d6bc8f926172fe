"""Where secrets hide outside layer files: history ``created_by``, config and legacy layer json.

Each function yields :class:`Field` records (a name such as ``Env[3]`` or
``history[5].args.TOKEN`` plus the text to scan). ``KEY=value`` pairs are scanned as the text
``KEY=value`` so generic and sensitive-name rules see the variable name.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "config_fields", "guess_base_layers", "history_fields", "parse_build_args"]


@dataclass(frozen=True, slots=True)
class Field:
    """One piece of metadata text.

    Attributes
    ----------
    source
        ``history`` or ``config``.
    field
        Its name: ``Env[3]``, ``Labels.org.example.token``, ``Cmd``, ``history[5].created_by``,
        ``history[5].args.NPM_TOKEN``, ``layer_json[2].config.Env[1]`` ...
    text
        The text to scan.
    step
        History index, for history fields.
    layer
        The layer the field belongs to (history entries that made a layer, legacy layer json).
    created_by
        The history ``created_by`` of the step or layer, when known.
    pair
        True when ``text`` is a ``KEY=value`` pair.
    """

    source: str
    field: str
    text: str
    step: int | None = None
    layer: int | None = None
    created_by: str | None = None
    pair: bool = False


_SHELL_PREFIX = re.compile(r"^/bin/(?:ba)?sh -c\s+")
_NOP = re.compile(r"^#\(nop\)\s*")
_BUILD_ARGS = re.compile(r"^(?:RUN\s+)?\|(\d+)\s+(.*)$", re.DOTALL)
_INSTR = re.compile(r"^(ENV|LABEL|ARG)\s+(.*)$", re.DOTALL | re.IGNORECASE)


def parse_build_args(created_by: str) -> tuple[list[tuple[str, str]], str]:
    """Split ``RUN |N K=V ... cmd`` into its build args and the command.

    Both the classic builder (``|2 A=1 B=2 /bin/sh -c cmd``) and BuildKit
    (``RUN |2 A=1 B=2 /bin/sh -c cmd``) spellings are understood.

    Returns
    -------
    (pairs, rest)
        ``[(name, value), ...]`` and the remaining command text.
    """
    m = _BUILD_ARGS.match(created_by.strip())
    if not m:
        return [], created_by
    n = int(m.group(1))
    rest = m.group(2)
    pairs: list[tuple[str, str]] = []
    for _ in range(n):
        tok = re.match(r"([A-Za-z_][A-Za-z0-9_.\-]*)=(\S*)\s*", rest)
        if not tok:
            break
        pairs.append((tok.group(1), tok.group(2)))
        rest = rest[tok.end() :]
    return pairs, rest


def _instruction(created_by: str) -> str:
    text = created_by.strip()
    text = _SHELL_PREFIX.sub("", text)
    return _NOP.sub("", text).strip()


def _pairs(body: str) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` or legacy ``K V`` into pairs."""
    try:
        toks = shlex.split(body, posix=True)
    except ValueError:
        toks = body.split()
    if toks and all("=" in t for t in toks):
        return [tuple(t.split("=", 1)) for t in toks]  # type: ignore[misc]
    if toks and "=" not in toks[0]:  # legacy "ENV KEY value with spaces"
        return [(toks[0], body.split(None, 1)[1].strip() if len(toks) > 1 else "")]
    return [tuple(t.split("=", 1)) for t in toks if "=" in t]  # type: ignore[misc]


def history_fields(history: Any) -> Iterator[Field]:
    """Fields of every history entry.

    Parameters
    ----------
    history
        The ``img.history`` frame (columns ``step``, ``layer``, ``created_by``) or the config's
        ``history`` list.
    """
    if hasattr(history, "itertuples"):
        rows = [
            (
                int(r.step),
                None if _isna(r.layer) else int(r.layer),
                "" if _isna(r.created_by) else str(r.created_by),
            )
            for r in history.itertuples(index=False)
        ]
    else:
        rows = []
        layer = 0
        for i, h in enumerate(history or []):
            empty = bool(h.get("empty_layer", False))
            rows.append((i, None if empty else layer, str(h.get("created_by", "") or "")))
            layer += 0 if empty else 1
    for step, layer, created_by in rows:
        if not created_by:
            continue
        base = f"history[{step}]"
        args, rest = parse_build_args(created_by)
        for name, value in args:
            yield Field(
                "history", f"{base}.args.{name}", f"{name}={value}", step, layer, created_by, True
            )
        instr = _instruction(rest)
        m = _INSTR.match(instr)
        if m:
            for k, v in _pairs(m.group(2)):
                yield Field(
                    "history", f"{base}.created_by", f"{k}={v}", step, layer, created_by, True
                )
        yield Field(
            "history", f"{base}.created_by", rest if args else created_by, step, layer, created_by
        )


def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return v is None


def _join(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _container_fields(cfg: Any, prefix: str) -> Iterator[tuple[str, str, bool]]:
    # Damaged or hand-made configs put anything anywhere: whatever is not of the expected
    # shape is scanned as its JSON text rather than skipped.
    if not isinstance(cfg, Mapping):
        yield prefix.rstrip(".") or "config", json.dumps(cfg, default=str), False
        return
    env = cfg.get("Env") or []
    for i, e in enumerate(env if isinstance(env, list) else [env]):
        yield f"{prefix}Env[{i}]", str(e), "=" in str(e)
    labels = cfg.get("Labels") or {}
    if isinstance(labels, Mapping):
        for k, v in labels.items():
            yield f"{prefix}Labels.{k}", f"{k}={v}", True
    else:
        yield f"{prefix}Labels", str(labels), False
    for key in ("Cmd", "Entrypoint"):
        if cfg.get(key):
            yield f"{prefix}{key}", _join(cfg[key]), False
    hc = cfg.get("Healthcheck") or {}
    test = hc.get("Test") if isinstance(hc, Mapping) else hc
    if test:
        yield f"{prefix}Healthcheck.Test", _join(test), False
    onbuild = cfg.get("OnBuild") or []
    for i, ob in enumerate(onbuild if isinstance(onbuild, list) else [onbuild]):
        yield f"{prefix}OnBuild[{i}]", str(ob), False
    if cfg.get("User"):
        yield f"{prefix}User", str(cfg["User"]), False


def config_fields(
    config: Mapping[str, Any], legacy: Mapping[int, Mapping[str, Any]] | None = None
) -> Iterator[Field]:
    """Fields of the image config (``config`` and legacy ``container_config``) and of legacy
    per-layer ``json`` files (``legacy``: layer index -> parsed json)."""
    for sect, prefix in (("config", ""), ("container_config", "container_config.")):
        cfg = config.get(sect) or {}
        for name, text, pair in _container_fields(cfg, prefix):
            yield Field("config", name, text, pair=pair)
    for layer, js in sorted((legacy or {}).items()):
        for sect in ("config", "container_config"):
            cfg = js.get(sect) or {}
            for name, text, pair in _container_fields(cfg, f"layer_json[{layer}].{sect}."):
                yield Field("config", name, text, layer=layer, pair=pair)


def guess_base_layers(history: Any) -> set[int]:
    """Layers that probably come from the base image (Trivy's heuristic, used to FLAG, not skip).

    The base image's own ``CMD`` is an empty-layer history entry followed by layer-making entries
    of the derived image; every layer made before the last such ``CMD`` is a base layer.
    """
    if not hasattr(history, "itertuples"):
        return set()
    rows = list(history.itertuples(index=False))
    cmd_step = None
    seen_layer_after = False
    for r in reversed(rows):
        has_layer = not _isna(r.layer)
        cb = "" if _isna(r.created_by) else str(r.created_by)
        if has_layer:
            seen_layer_after = True
        elif seen_layer_after and re.search(r"(?:#\(nop\)\s+|^)CMD\b", _instruction(cb)):
            cmd_step = int(r.step)
            break
    if cmd_step is None:
        return set()
    return {int(r.layer) for r in rows if not _isna(r.layer) and int(r.step) < cmd_step}
