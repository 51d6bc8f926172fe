"""Secrets in container images: every layer's files (deleted and overwritten versions included),
history ``created_by`` (build args parsed) and config, as pandas DataFrames.

>>> import layerforensics as lf
>>> from layerforensics.secrets import find_secrets, secret_groups, recover
>>> img = lf.open_image("image.tar")                       # doctest: +SKIP
>>> df = find_secrets(img)                                 # doctest: +SKIP
>>> df[df.status == "deleted"]                             # doctest: +SKIP
"""

from __future__ import annotations

from layerforensics.secrets._engine import Engine, is_binary
from layerforensics.secrets._heuristics import entropy, low_confidence_reason, redact
from layerforensics.secrets._metadata import guess_base_layers, parse_build_args
from layerforensics.secrets._rules import Rule, RuleSet, builtin_rules, load_rules
from layerforensics.secrets._sarif import to_sarif
from layerforensics.secrets._scan import (
    DEFAULT_MAX_FILE_SIZE,
    FINDING_COLUMNS,
    SecretScanner,
    find_secrets,
    fingerprint,
    recover,
    redact_frame,
    scan_bytes,
    secret_groups,
)

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "FINDING_COLUMNS",
    "Engine",
    "Rule",
    "RuleSet",
    "SecretScanner",
    "builtin_rules",
    "entropy",
    "find_secrets",
    "fingerprint",
    "guess_base_layers",
    "is_binary",
    "load_rules",
    "low_confidence_reason",
    "parse_build_args",
    "recover",
    "redact",
    "redact_frame",
    "scan_bytes",
    "secret_groups",
    "to_sarif",
]
