"""``layerforensics waste IMAGE``: wasted space, dive's numbers or corrected ones, and a CI gate.

The lead wires :func:`add_parser` into ``layerforensics/cli.py``; ``args.func(args)`` returns
the exit status: 0 when every CI rule passes (or without ``--ci``), 1 when a rule fails,
2 when the rules are misconfigured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, TextIO

import pandas as pd

from . import waste as _waste
from ._output import frame_records, human_size
from .cli import image_arguments, open_from_args
from .errors import LayerForensicsError

_RULE_FLAGS = (
    ("--lowest-efficiency", "lowestEfficiency", "fail when the score is below this ratio"),
    ("--highest-wasted-bytes", "highestWastedBytes", "fail above this size (20MB, 20MiB)"),
    ("--highest-user-wasted-percent", "highestUserWastedPercent", "fail above this ratio"),
)


def add_parser(subparsers: Any) -> None:
    """Add the ``waste`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "waste",
        help="wasted space per path and per layer; dive-compatible efficiency and CI gate",
        description=(
            "Report the bytes an image stores more than once or deletes later. "
            "--mode dive reproduces dive's numbers exactly; the default mode counts what "
            "squashing the image would save. --ci evaluates dive's rules "
            "(defaults: lowest-efficiency 0.9, highest-wasted-bytes disabled, "
            "highest-user-wasted-percent 0.1; a .dive-ci file in the working directory or "
            "--ci-config overrides the defaults, flags override both)."
        ),
    )
    image_arguments(p, formats=("table", "json"))
    p.add_argument("--mode", choices=("layerforensics", "dive"), default="layerforensics")
    p.add_argument("--top", type=int, default=20, help="paths shown in table format (default 20)")
    p.add_argument("--ci", action="store_true", help="evaluate the CI rules; exit 1 on failure")
    p.add_argument("--ci-config", default=None, help="rules file in dive's .dive-ci format")
    for flag, _name, text in _RULE_FLAGS:
        p.add_argument(flag, default=None, help=text + " ('disabled' turns it off)")
    p.set_defaults(func=run)


def _rules(args: argparse.Namespace) -> tuple[dict[str, str], str | None]:
    rules: dict[str, str] = {}
    source = args.ci_config
    if source is None and os.path.isfile(".dive-ci"):
        source = ".dive-ci"
    if source is not None:
        rules.update(_waste.read_dive_ci(source))
    for flag, name, _text in _RULE_FLAGS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            rules[name] = value
    return rules, source


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``layerforensics waste``; returns the exit status."""
    out = out or sys.stdout
    try:
        rules, rules_source = _rules(args) if args.ci else ({}, None)
        image = open_from_args(args)
        result = _waste.efficiency(image, mode=args.mode)
        checks = _waste.check_rules(result, rules) if args.ci else None
    except LayerForensicsError as exc:
        print(f"layerforensics waste: {exc}", file=sys.stderr)
        return 2
    failed = checks is not None and bool((checks["status"] == "fail").any())
    if args.format == "json":
        doc: dict[str, Any] = {
            "image": args.image,
            "summary": result.to_dict(),
            "layers": frame_records(_waste.layer_waste(image)),
            "paths": frame_records(_waste.waste(image)),
        }
        if checks is not None:
            doc["ci"] = {
                "passed": not failed,
                "rules_file": rules_source,
                "rules": frame_records(checks),
            }
        json.dump(doc, out, indent=2, allow_nan=False, default=str)
        out.write("\n")
    else:
        _table(image, result, checks, args.top, out)
    return 1 if failed else 0


def _pct(x: float) -> str:
    if math.isnan(x):
        return "n/a (no user layers)"
    return "inf" if math.isinf(x) else f"{100 * x:.2f} %"


def _table(
    image: Any, result: _waste.Efficiency, checks: pd.DataFrame | None, top: int, out: TextIO
) -> None:
    h = human_size
    out.write(f"Image: {image.path}  ({len(image.layers)} layers, mode={result.mode})\n")
    out.write(f"  efficiency:        {100 * result.score:.2f} %\n")
    out.write(f"  wasted bytes:      {result.wasted_bytes} bytes ({h(result.wasted_bytes)})\n")
    out.write(f"  user wasted:       {_pct(result.user_wasted_percent)}\n")
    out.write(f"  size:              {result.size_bytes} bytes ({h(result.size_bytes)})\n")
    out.write(f"  user size:         {result.user_size_bytes} bytes\n")
    out.write(
        f"  reclaimable:       {result.reclaimable_bytes} bytes "
        f"({h(result.reclaimable_bytes)}, what squashing saves)\n\n"
    )
    ineff = result.inefficient
    title = "Inefficient files (as dive lists them)" if result.mode == "dive" else "Wasted paths"
    out.write(f"{title}: {len(ineff)}\n")
    if len(ineff):
        shown = ineff.head(top).assign(wasted=lambda d: [h(int(v)) for v in d["wasted_bytes"]])[
            ["count", "wasted", "wasted_bytes", "path"]
        ]
        out.write(shown.to_string(index=False) + "\n")
        if len(ineff) > top:
            out.write(f"... {len(ineff) - top} more (use --format json for all)\n")
    out.write("\nPer layer:\n")
    lw = _waste.layer_waste(image)
    cols = ["layer", "instruction", "stored_bytes", "reclaimable_bytes", "deleted_bytes"]
    out.write(lw[cols].to_string(index=False) + "\n")
    if checks is None:
        return
    out.write("\nCI rules:\n")
    for r in checks.itertuples():
        out.write(f"  {str(r.status).upper():4}  {r.rule} ({r.threshold}): {r.message}\n")
    counts = checks["status"].value_counts()
    failed = int(counts.get("fail", 0))
    tally = " ".join(f"{k}:{int(counts.get(k, 0))}" for k in ("pass", "fail", "skip"))
    out.write(f"{'FAIL' if failed else 'PASS'} [{tally}]\n")
