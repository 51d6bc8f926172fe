"""Rich display: the summary card behind ``Image._repr_html_`` and shared HTML helpers.

Everything here presents what the library computes (frames, efficiency, secret findings); it
computes nothing of its own. Secret values are masked wherever a build step is shown.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._output import human_size
from ._progress import ensure_indexed
from .errors import LayerForensicsError

if TYPE_CHECKING:
    from .image import Image
    from .waste import Efficiency

__all__ = [
    "CARD_CSS",
    "human_size",
    "image_efficiency",
    "image_secrets",
    "index_with_findings",
    "mask_text",
    "summary_html",
]


# ---------------------------------------------------------------------------- masking
#: Token formats masked in any displayed build step (vendor prefixes stay readable).
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_])("
    r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{30,}|"
    r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}|"
    r"npm_[A-Za-z0-9]{36}|glpat-[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}|"
    r"(?:sk|rk)_live_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_\-]{35}|"
    r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+"
    r")"
)
#: ``NAME=value`` where NAME looks sensitive (ENV lines, build args, shell assignments).
_PAIR_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9_])([A-Za-z0-9_.\-]*(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|"
    r"access[_\-]?key|private[_\-]?key|credentials?|auth)[A-Za-z0-9_.\-]*)"
    r"(=|:\s*)(\"[^\"]*\"|'[^']*'|[^\s\"']+)"
)


def _redact(secret: str) -> str:
    try:
        from .secrets import redact
    except Exception:  # the secrets package is optional for display
        keep = 6 if len(secret) >= 24 else 3 if len(secret) >= 12 else 0
        return secret[:keep] + "********"
    return str(redact(secret))


def mask_text(text: str | None, secrets: Iterable[str] = ()) -> str:
    """``text`` with secret values masked: known token formats, sensitive ``NAME=value``
    pairs (the value only) and every string of ``secrets`` (raw values from a scan).

    Variable references (``$TOKEN``, ``${TOKEN}``) are not values and are kept.
    """
    if text is None or text is pd.NA:
        return ""
    out = str(text)
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        out = out.replace(s, _redact(s))
    out = _TOKEN_RE.sub(lambda m: _redact(m.group(1)), out)

    def pair(m: re.Match[str]) -> str:
        value = m.group(3)
        bare = value.strip("\"'")
        if not bare or bare.startswith("$") or "********" in bare:
            return m.group(0)
        quote = value[0] if value[0] in "\"'" and value[-1] == value[0] else ""
        return f"{m.group(1)}{m.group(2)}{quote}{_redact(bare)}{quote}"

    return _PAIR_RE.sub(pair, out)


# ---------------------------------------------------------------------------- analyses
def image_secrets(img: Image, **kwargs: Any) -> pd.DataFrame | None:
    """``img.secrets(**kwargs)``; None when damaged input stops the scan.

    A display must still show what it can: the reason is added to ``img.warnings`` (which the
    card lists) instead of being raised.
    """
    try:
        return img.secrets(**kwargs)
    except LayerForensicsError as exc:
        img.warnings.append(f"secret scan failed: {exc}")
        return None


def index_with_findings(
    img: Image, *, secrets: bool, desc: str = "indexing layers"
) -> pd.DataFrame | None:
    """Index every layer exactly once, returning the secret findings when asked for.

    With ``secrets`` the scan *is* the indexing pass (file contents ride on it, one
    decompression per layer); indexing first and scanning afterwards would decompress every
    compressed layer a second time. Without it, layers are indexed with a progress bar.
    """
    findings = image_secrets(img) if secrets else None
    ensure_indexed(img, desc)  # a no-op when the scan has indexed everything
    return findings


def image_efficiency(img: Image) -> Efficiency | None:
    """``img.efficiency()``; None (reason in ``img.warnings``) when damaged input stops it."""
    try:
        return img.efficiency()
    except LayerForensicsError as exc:
        img.warnings.append(f"efficiency failed: {exc}")
        return None


# ---------------------------------------------------------------------------- the card
CARD_CSS = """
<style>
.lf-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;
  border:1px solid var(--jp-border-color1,#ccc);border-radius:6px;padding:8px 12px;
  max-width:1000px;color:var(--jp-ui-font-color1,#222);background:var(--jp-layout-color1,#fff)}
.lf-card h4{margin:0 0 6px 0;font-size:14px}
.lf-card .lf-kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin-bottom:6px}
.lf-card .lf-kv span:nth-child(odd){color:var(--jp-ui-font-color2,#666)}
.lf-card table{border-collapse:collapse;font-size:12px}
.lf-card td,.lf-card th{padding:1px 8px;text-align:left;vertical-align:top}
.lf-card td.num,.lf-card th.num{text-align:right;font-variant-numeric:tabular-nums}
.lf-card code{font-size:12px}
.lf-badge{display:inline-block;border-radius:8px;padding:0 7px;margin-right:4px;font-size:12px}
.lf-bad{background:#fde2e1;color:#9b1c1c}.lf-warn{background:#fff1cc;color:#7a5200}
.lf-ok{background:#def7ec;color:#03543f}
</style>
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None or x is pd.NA else str(x))


def summary_html(
    img: Any, *, max_layers: int = 30, step_width: int = 90, secrets: bool = True
) -> str:
    """The summary card of an image (what ``Image._repr_html_`` shows).

    Lists the reference, image id, platform, format, creation time, layer count and sizes,
    the efficiency score (when ``img.efficiency`` exists), deleted-but-recoverable files, secret
    findings (when ``img.secrets`` exists and ``secrets`` is true), warnings, and one row per
    layer with its build step. Secret values in build steps are masked with :func:`mask_text`.

    Parameters
    ----------
    img
        An opened :class:`layerforensics.Image`.
    max_layers
        Layers listed before the table is cut (the top layers are kept).
    step_width
        Build steps are shortened to this many characters.
    secrets
        Include the secret-finding counts (runs the scan if the Image has not cached it).

    Returns
    -------
    str
        Self-contained HTML (inline CSS using JupyterLab theme variables).
    """
    findings = index_with_findings(img, secrets=secrets)
    layers: pd.DataFrame = img.layers
    deleted: pd.DataFrame = img.deleted
    eff = image_efficiency(img)

    stored = int(layers["size"].fillna(0).sum())
    compressed = layers["compressed_size"].dropna()
    badges = []
    if findings is not None:
        n = len(findings)
        sev = findings["severity"].astype("string").value_counts() if n else pd.Series(dtype=int)
        detail = ", ".join(f"{int(v)} {k}" for k, v in sev.items())
        cls = "lf-bad" if n else "lf-ok"
        badges.append(
            f"<span class='lf-badge {cls}'>{n} secret finding{'s' * (n != 1)}"
            + (f" ({_esc(detail)})" if detail else "")
            + "</span>"
        )
    nd = len(deleted)
    badges.append(
        f"<span class='lf-badge {'lf-warn' if nd else 'lf-ok'}'>{nd} deleted file"
        f"{'s' * (nd != 1)} recoverable ({_esc(human_size(int(deleted['size'].fillna(0).sum())))})"
        "</span>"
    )
    if img.warnings:
        badges.append(f"<span class='lf-badge lf-warn'>{len(img.warnings)} warnings</span>")

    kv: list[tuple[str, str]] = [
        ("reference", _esc(img.ref or "(untagged)")),
        ("image id", f"<code>{_esc(img.image_id[:19])}</code>"),
        ("platform", _esc(img.platform or "unknown")),
        ("format", _esc(img.format)),
        ("created", _esc(img.config.get("created", ""))),
        ("layers", f"{len(layers)} ({int((layers['entries'].fillna(0)).sum()):,} tar entries)"),
        (
            "size",
            _esc(human_size(stored))
            + " of file data"
            + (
                f", {_esc(human_size(int(compressed.sum())))} of layer blobs"
                if len(compressed)
                else ""
            ),
        ),
    ]
    if eff is not None:
        score = eff.score
        text = (
            "n/a"
            if score is None or (isinstance(score, float) and math.isnan(score))
            else f"{score:.1%}"
        )
        wasted = eff.reclaimable_bytes
        kv.append(
            (
                "efficiency",
                _esc(text)
                + (
                    f" ({_esc(human_size(wasted))} reclaimable by squashing)"
                    if wasted is not None
                    else ""
                ),
            )
        )

    raw_secrets = []
    if findings is not None and "secret" in findings:
        raw_secrets = [s for s in findings["secret"].dropna().astype(str) if "********" not in s]
    shown = layers.tail(max_layers) if len(layers) > max_layers else layers
    rows = []
    for r in shown.itertuples(index=False):
        step = mask_text(r.created_by, raw_secrets).strip()
        step = step.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
        if len(step) > step_width:
            step = step[: step_width - 1] + "…"
        rows.append(
            f"<tr><td class='num'>{int(r.layer)}</td>"
            f"<td class='num'>{_esc(human_size(r.size))}</td>"
            f"<td>{_esc(r.instruction)}</td><td><code>{_esc(step)}</code></td></tr>"
        )
    cut = (
        f"<tr><td colspan='4'>… {len(layers) - len(shown)} lower layers not shown</td></tr>"
        if len(shown) < len(layers)
        else ""
    )
    body = "".join(f"<span>{k}</span><span>{v}</span>" for k, v in kv)
    return (
        CARD_CSS
        + "<div class='lf-card'>"
        + f"<h4>layerforensics image <code>{_esc(img.ref or img.image_id[:19])}</code></h4>"
        + f"<div class='lf-kv'>{body}</div>"
        + f"<div style='margin-bottom:6px'>{''.join(badges)}</div>"
        + "<table><tr><th class='num'>layer</th><th class='num'>size</th><th>step</th>"
        + f"<th>created by</th></tr>{cut}{''.join(rows)}</table>"
        + "</div>"
    )
