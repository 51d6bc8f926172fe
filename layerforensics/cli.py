"""The ``layerforensics`` command line: every frame of an image, for scripts and CI.

Each subcommand prints one frame (``--format table|csv|json``); ``cat`` writes a file's bytes to
stdout and ``extract`` exports safely. Errors about the input are reported in one line naming
the file and the problem, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from . import __version__
from ._output import FORMATS, human_size, print_frame
from .errors import LayerForensicsError
from .image import Image, list_images, open_image

#: Feature modules that add their own subcommands through ``add_parser(subparsers)``.
PLUGINS = ("layerforensics._cli_waste", "layerforensics.secrets._cli", "layerforensics.host._cli")


def image_arguments(
    p: argparse.ArgumentParser, *, formats: tuple[str, ...] | None = FORMATS
) -> None:
    """The arguments every image subcommand takes (feature modules use it too)."""
    p.add_argument("image", help="docker save archive, OCI layout (dir or tar), ...")
    p.add_argument("--ref", help="which image, when the archive holds several (tag or id)")
    p.add_argument("--platform", help="os/arch[/variant] for multi-platform layouts")
    p.add_argument("--strict", action="store_true", help="fail on any digest mismatch")
    if formats:
        p.add_argument("--format", choices=formats, default="table", help="output format")


def open_from_args(args: argparse.Namespace) -> Image:
    """Open the image named on the command line with its --ref/--platform/--strict options."""
    return open_image(args.image, ref=args.ref, platform=args.platform, strict=args.strict)


def _cmd_info(args: argparse.Namespace) -> int:
    img = open_from_args(args)
    layers = img.layers
    info = {
        "path": img.path,
        "format": img.format,
        "ref": img.ref,
        "tags": img.tags,
        "image_id": img.image_id,
        "platform": img.platform,
        "created": img.config.get("created"),
        "layers": len(layers),
        "size": int(layers["size"].sum()),
        "compressed_size": int(layers["compressed_size"].sum()),
        "entries": int(layers["entries"].sum()),
        "history_steps": len(img.history),
        "deleted_paths": len(img.deleted),
        "all_verified": bool(layers["verified"].fillna(True).all()),
        "warnings": img.warnings,
    }
    if args.format == "json":
        json.dump(info, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif args.format == "csv":
        for key, value in info.items():
            print(f"{key},{json.dumps(value, default=str)}")
    else:
        for key, value in info.items():
            if key in ("size", "compressed_size"):
                value = f"{human_size(value)} ({value} B)"
            elif isinstance(value, list):
                value = ", ".join(map(str, value)) or "-"
            print(f"{key:>16}: {value}")
    return 0


def _frame_command(name: str):
    def run(args: argparse.Namespace) -> int:
        img = open_from_args(args)
        df = img.filesystem(args.layer) if name == "filesystem" else getattr(img, name)
        if name == "files" and args.layer is not None:
            df = df[df["layer"] == img._check_layer(args.layer)]
        print_frame(df, args.format)
        return 0

    return run


def _cmd_images(args: argparse.Namespace) -> int:
    print_frame(list_images(args.image), args.format)
    return 0


def _cmd_cat(args: argparse.Namespace) -> int:
    img = open_from_args(args)
    sys.stdout.buffer.write(img.read(args.path, layer=args.layer))
    sys.stdout.buffer.flush()
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    img = open_from_args(args)
    written = img.extract(args.dest, layer=args.layer, path=args.path, merged=args.merged)
    print(f"wrote {len(written)} files under {args.dest}", file=sys.stderr)
    return 0


def _cmd_dockerfile(args: argparse.Namespace) -> int:
    sys.stdout.write(open_from_args(args).dockerfile())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerforensics",
        description="Container images as tables: layers, history, files, changes, deleted files.",
    )
    parser.add_argument("--version", action="version", version=f"layerforensics {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summary of one image")
    image_arguments(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("images", help="every image in an archive")
    p.add_argument("image")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_cmd_images)

    for name, text in [
        ("layers", "one row per layer"),
        ("history", "every history step, empty ones included"),
        ("files", "one row per tar entry per layer"),
        ("changes", "added / modified / deleted per layer"),
        ("deleted", "paths whose bytes survive only in lower layers"),
        ("filesystem", "the merged filesystem (after --layer)"),
    ]:
        p = sub.add_parser(name, help=text)
        image_arguments(p)
        if name in ("files", "filesystem"):
            p.add_argument("--layer", type=int, help="only this layer / as of this layer")
        p.set_defaults(func=_frame_command(name))

    p = sub.add_parser("cat", help="write a file's bytes (from any layer) to stdout")
    image_arguments(p, formats=None)
    p.add_argument("path")
    p.add_argument("--layer", type=int, help="the layer whose version to read (default: final)")
    p.set_defaults(func=_cmd_cat)

    p = sub.add_parser("extract", help="export a layer, a path or the merged filesystem safely")
    image_arguments(p, formats=None)
    p.add_argument("dest", help="export folder (nothing is written outside it)")
    p.add_argument("--layer", type=int)
    p.add_argument("--path", help="only this path and below")
    p.add_argument("--merged", action="store_true", help="the filesystem as of --layer")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("dockerfile", help="a Dockerfile reconstructed from the history")
    image_arguments(p, formats=None)
    p.set_defaults(func=_cmd_dockerfile)

    for module in PLUGINS:
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # that feature is not installed in this build
            raise
        plugin.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``layerforensics`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LayerForensicsError as exc:
        print(f"layerforensics: error: {exc}", file=sys.stderr)
        return 2
    except (IndexError, KeyError) as exc:
        print(f"layerforensics: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
