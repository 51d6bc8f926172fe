"""``layerforensics secrets IMAGE``: secrets in every layer, the history and the config.

Exit status: 0 when no finding reaches ``--fail-on``'s confidence (or without ``--fail-on``),
1 when one does, 2 on errors (handled by ``cli.main``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from layerforensics.cli import image_arguments, open_from_args
from layerforensics.secrets._rules import CONFIDENCES, load_rules
from layerforensics.secrets._sarif import to_sarif
from layerforensics.secrets._scan import DEFAULT_MAX_FILE_SIZE, find_secrets

_TABLE_COLUMNS = [
    "rule",
    "confidence",
    "source",
    "status",
    "status_layer",
    "layer",
    "path",
    "field",
    "line",
    "secret",
    "fingerprint",
]


def add_parser(subparsers: Any) -> None:
    """Add the ``secrets`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "secrets",
        help="secrets in every layer (deleted and overwritten files too), history and config",
        description=(
            "Scan every file version of every layer, the history (build args parsed) and the "
            "config for secrets. Values are redacted unless --show-secrets; the fingerprint is "
            "the SHA-256 of the raw value."
        ),
    )
    image_arguments(p, formats=("table", "json", "sarif"))
    p.add_argument("--show-secrets", action="store_true", help="print raw values (careful)")
    p.add_argument(
        "--fail-on",
        choices=CONFIDENCES[::-1],
        default=None,
        help="exit 1 when a finding of at least this confidence exists",
    )
    p.add_argument(
        "--rules", default=None, help="extra rules: a TOML file (own format or gitleaks format)"
    )
    p.add_argument(
        "--max-file-size",
        type=int,
        default=DEFAULT_MAX_FILE_SIZE,
        help=f"skip files larger than this many bytes (default {DEFAULT_MAX_FILE_SIZE})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Any = None) -> int:
    """Run the subcommand; returns the exit status."""
    import layerforensics as lf
    from layerforensics._output import print_frame

    out = out or sys.stdout
    rules = load_rules(args.rules, extend_builtin=True) if args.rules else None
    with open_from_args(args) as img:
        df = find_secrets(
            img, redact=not args.show_secrets, rules=rules, max_file_size=args.max_file_size
        )
    df = df.sort_values(["confidence", "severity"], ascending=False, kind="stable")
    if args.format == "sarif":
        json.dump(to_sarif(df, image=args.image, tool_version=lf.__version__), out, indent=2)
        out.write("\n")
    elif args.format == "json":
        print_frame(df, "json", out)
    else:
        print_frame(df[_TABLE_COLUMNS], "table", out)
    if args.fail_on is None:
        return 0
    threshold = CONFIDENCES.index(args.fail_on)
    worst = df["confidence"].map(CONFIDENCES.index).max() if len(df) else -1
    return 1 if worst >= threshold else 0
