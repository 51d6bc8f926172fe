"""``layerforensics host PATH images|containers|changes CONTAINER|timeline|verify``.

The lead wires :func:`add_parser` into ``layerforensics/cli.py``; ``args.func(args)`` returns
the exit status (0; 1 when ``verify`` finds a problem; 2 on an error the library reports).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._output import print_frame
from ..errors import LayerForensicsError
from ._host import open_host

VIEWS = ("images", "containers", "changes", "timeline", "verify")


def add_parser(subparsers: Any) -> None:
    """Add the ``host`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "host",
        help="offline forensics of a seized /var/lib/docker, containers/storage or containerd",
        description=(
            "Read a container host's storage (a directory or a tar of one) read-only: "
            "images, containers, one container's changes, a timeline, or a tamper check "
            "of every image layer against its tar-split record (containerd: its layer blob)."
        ),
    )
    p.add_argument("path", help="/var/lib/docker (or a mount / tar holding it)")
    p.add_argument("view", choices=VIEWS)
    p.add_argument("container", nargs="?", help="container name or id prefix (for changes)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        with open_host(args.path) as host:
            if args.view == "images":
                df = host.images
            elif args.view == "containers":
                df = host.containers
            elif args.view == "changes":
                if not args.container:
                    print("layerforensics host: changes needs a CONTAINER", file=sys.stderr)
                    return 2
                df = host.container(args.container).changes
            elif args.view == "timeline":
                df = host.timeline()
            else:
                df = host.verify()
            print_frame(df, args.format)
            return 1 if args.view == "verify" and len(df) else 0
    except LayerForensicsError as exc:
        print(f"layerforensics host: {exc}", file=sys.stderr)
        return 2
