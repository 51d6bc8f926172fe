"""SARIF 2.1.0 output for :func:`layerforensics.secrets.find_secrets` results."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from layerforensics.secrets._rules import Rule

__all__ = ["SARIF_SCHEMA_URI", "to_sarif"]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}


def _val(v: Any) -> Any:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return v.item()
    return v


def to_sarif(
    findings: pd.DataFrame,
    *,
    rules: Iterable[Rule] = (),
    image: str | None = None,
    tool_version: str = "0.1.0",
) -> dict[str, Any]:
    """Convert a findings frame to a SARIF 2.1.0 log (a dict ready for ``json.dump``).

    File sightings get a physical location (``uri`` = the path inside the image, relative,
    ``uriBaseId`` = ``LAYER<n>``, with the line); metadata sightings get a logical location
    named after the field. ``partialFingerprints["secretSha256/v1"]`` carries the fingerprint.
    Values are taken from the frame as they are (redacted or not).

    Parameters
    ----------
    findings
        The frame returned by :func:`find_secrets`.
    rules
        Rule objects to describe in ``tool.driver.rules`` (those referenced by findings are
        always described, from the frame's columns, when not given here).
    image
        The image path or reference, recorded as the run's artifact.
    """
    described: dict[str, dict[str, Any]] = {}
    for r in rules:
        described[r.id] = {"title": r.title, "category": r.category, "severity": r.severity}
    for row in (
        findings[["rule", "title", "category", "severity"]]
        .drop_duplicates("rule")
        .itertuples(index=False)
    ):
        described.setdefault(
            str(row.rule),
            {"title": str(row.title), "category": str(row.category), "severity": str(row.severity)},
        )
    used = list(dict.fromkeys(findings["rule"].astype(str)))
    order = used + [k for k in described if k not in used]
    index = {rid: i for i, rid in enumerate(order)}
    driver_rules = []
    for rid in order:
        d = described[rid]
        driver_rules.append(
            {
                "id": rid,
                "name": "".join(p.capitalize() for p in rid.replace("_", "-").split("-")),
                "shortDescription": {"text": d["title"]},
                "defaultConfiguration": {"level": _LEVEL.get(d["severity"], "warning")},
                "properties": {
                    "category": d["category"],
                    "severity": d["severity"],
                    "security-severity": _SCORE.get(d["severity"], "5.5"),
                    "tags": ["security", "secret"],
                },
            }
        )
    results = []
    base_ids: dict[str, dict[str, Any]] = {}
    for rec in findings.to_dict(orient="records"):
        rec = {k: _val(v) for k, v in rec.items()}
        src = rec["source"]
        where = rec["path"] if src == "file" else rec["field"]
        status = rec["status"]
        msg = f"{rec['title']} ({status}"
        if rec.get("status_layer") is not None:
            msg += f" by layer {rec['status_layer']}"
        msg += f") in {src} {where}"
        if rec.get("layer") is not None:
            msg += f", layer {rec['layer']}"
        if rec.get("created_by"):
            msg += f", added by: {str(rec['created_by'])[:200]}"
        result: dict[str, Any] = {
            "ruleId": rec["rule"],
            "ruleIndex": index[rec["rule"]],
            "level": _LEVEL.get(rec["severity"], "warning"),
            "message": {"text": msg},
            "partialFingerprints": {"secretSha256/v1": rec["fingerprint"]},
            "properties": {
                k: rec.get(k)
                for k in (
                    "confidence",
                    "source",
                    "status",
                    "status_layer",
                    "layer",
                    "entry",
                    "step",
                    "field",
                    "alive_as",
                    "base_layer",
                    "secret",
                    "context",
                    "reason",
                )
                if rec.get(k) is not None
            },
        }
        if src == "file":
            base = f"LAYER{rec['layer']}"
            base_ids.setdefault(base, {"description": {"text": f"root of layer {rec['layer']}"}})
            loc: dict[str, Any] = {
                "physicalLocation": {
                    "artifactLocation": {"uri": str(rec["path"]).lstrip("/"), "uriBaseId": base}
                }
            }
            if rec.get("line") is not None:
                loc["physicalLocation"]["region"] = {
                    "startLine": int(rec["line"]),
                    "snippet": {"text": str(rec.get("context") or "")},
                }
        else:
            loc = {
                "logicalLocations": [
                    {"name": str(where), "fullyQualifiedName": f"{src}:{where}", "kind": "member"}
                ]
            }
        result["locations"] = [loc]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "layerforensics-secrets",
                "version": tool_version,
                "informationUri": "https://pypi.org/project/layerforensics/",
                "rules": driver_rules,
            }
        },
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if base_ids:
        run["originalUriBaseIds"] = base_ids
    if image:
        run["artifacts"] = [{"location": {"uri": str(image)}, "roles": ["analysisTarget"]}]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": [run]}
