"""Build steps from history ``created_by`` strings, and a Dockerfile reconstructed from them.

``created_by`` comes in several dialects:

- classic builder: ``/bin/sh -c #(nop)  ENV A=b`` for metadata steps, ``/bin/sh -c cmd`` for RUN,
  and ``|2 K=V K2=V2 /bin/sh -c cmd`` when build args were in effect;
- BuildKit: ``RUN /bin/sh -c cmd # buildkit``, ``COPY a /b # buildkit``, ``ENV A=b``;
- buildah appends ``|key=value`` metadata; kaniko writes the instruction as typed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

_BUILD_ARGS = re.compile(r"^\|(\d+)\s+")
_SHELL_PREFIX = re.compile(r"^(?:/bin/(?:ba)?sh|sh|bash)\s+-c\s+")


@dataclass(slots=True)
class BuildStep:
    """One history entry, parsed.

    Attributes
    ----------
    instruction
        RUN, COPY, ADD, ENV, ... or None when ``created_by`` is empty or unrecognised.
    arguments
        The instruction's arguments, with shell and builder decorations removed.
    build_args
        ``KEY -> value`` from a ``|N KEY=value ...`` prefix (the effective build args of a RUN).
    """

    instruction: str | None
    arguments: str
    build_args: dict[str, str] = field(default_factory=dict)


def parse_created_by(created_by: str | None) -> BuildStep:
    """Parse one ``created_by`` string into a :class:`BuildStep`."""
    if not created_by or not created_by.strip():
        return BuildStep(None, "")
    text = created_by.strip()
    build_args: dict[str, str] = {}
    m = _BUILD_ARGS.match(text)
    if m:
        count = int(m.group(1))
        rest = text[m.end() :]
        try:
            tokens = shlex.split(rest, posix=True)
        except ValueError:
            tokens = rest.split()
        # The first `count` tokens are KEY=value pairs; the command follows.
        for token in tokens[:count]:
            key, _, value = token.partition("=")
            build_args[key] = value
        consumed = _skip_tokens(rest, count)
        text = consumed.strip()
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    shell = _SHELL_PREFIX.match(text)
    if shell:
        text = text[shell.end() :]
        if text.startswith("#(nop)"):
            text = text[len("#(nop)") :].strip()
        else:
            return BuildStep("RUN", text, build_args)
    word, _, rest = text.partition(" ")
    upper = word.upper()
    if upper in INSTRUCTIONS:
        args = rest.strip()
        if upper == "RUN":
            shell = _SHELL_PREFIX.match(args)
            if shell:
                args = args[shell.end() :]
        return BuildStep(upper, args, build_args)
    return BuildStep("RUN" if build_args else None, text, build_args)


def _skip_tokens(text: str, count: int) -> str:
    """The remainder of ``text`` after ``count`` shell words (quotes respected)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    for _ in range(count):
        try:
            lexer.get_token()
        except ValueError:
            break
    return lexer.instream.read() if hasattr(lexer.instream, "read") else ""


def reconstruct(steps: list[tuple[BuildStep, bool]], base_hint: str | None = None) -> str:
    """A Dockerfile from parsed history steps (``(step, empty_layer)`` pairs, oldest first)."""
    lines = [
        "# Reconstructed from the image history by layerforensics.",
        "# Base-image steps are included; COPY/ADD sources are build-context paths or hashes.",
    ]
    lines.append(f"FROM {base_hint or 'scratch'}")
    declared: set[str] = set()
    for step, _empty in steps:
        if step.instruction is None:
            if step.arguments:
                lines.append(f"# (unparsed step) {step.arguments}")
            continue
        for key, value in step.build_args.items():
            if key not in declared:
                declared.add(key)
                lines.append(f"ARG {key}={shlex.quote(value) if value else ''}".rstrip("="))
        args = step.arguments
        if step.instruction == "ARG":
            declared.add(args.split("=", 1)[0])
        lines.append(f"{step.instruction} {args}".rstrip())
    return "\n".join(lines) + "\n"
