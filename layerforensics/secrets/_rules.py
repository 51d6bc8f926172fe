"""Secret-detection rules: the data model, the built-in TOML set and a gitleaks-format loader."""

from __future__ import annotations

import re
import tomllib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from layerforensics.errors import LayerForensicsError

__all__ = ["Rule", "RuleSet", "builtin_rules", "load_rules"]

SEVERITIES = ("low", "medium", "high", "critical")
CONFIDENCES = ("low", "medium", "high")
SOURCES = ("file", "history", "config")


@dataclass(frozen=True, eq=False)
class Rule:
    """One detection rule.

    Attributes mirror the TOML keys documented in ``layerforensics/secrets/rules/README.md``.
    ``regex``, ``path``, ``requires``, ``allow`` and ``stop_match`` are compiled ``re`` patterns
    on bytes.
    """

    id: str
    regex: re.Pattern[bytes]
    title: str = ""
    category: str = "Other"
    severity: str = "medium"
    confidence: str = "high"
    keywords: tuple[str, ...] = ()
    secret_group: int = 1
    entropy: float = 0.0
    min_length: int = 0
    path: re.Pattern[str] | None = None
    requires: re.Pattern[bytes] | None = None
    sources: frozenset[str] = frozenset(SOURCES)
    generic: bool = False
    priority: int = 2
    allow: tuple[re.Pattern[bytes], ...] = ()
    stop_match: tuple[re.Pattern[bytes], ...] = ()
    origin: str = "builtin"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RuleSet:
    """An ordered collection of :class:`Rule` with a name (where the rules came from)."""

    rules: list[Rule]
    name: str = "builtin"

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def __add__(self, other: RuleSet) -> RuleSet:
        seen = {r.id for r in other.rules}
        return RuleSet(
            [r for r in self.rules if r.id not in seen] + list(other.rules),
            f"{self.name}+{other.name}",
        )


def _bytes_re(pattern: str, source: str, rule_id: str) -> re.Pattern[bytes]:
    pattern = _go_to_python(pattern)
    try:
        return re.compile(pattern.encode("utf-8"), re.MULTILINE)
    except re.error as exc:
        raise LayerForensicsError(source, f"rule {rule_id!r}: bad regex: {exc}") from exc


def _go_to_python(pattern: str) -> str:
    """Translate the few Go/RE2 regex spellings Python's ``re`` rejects."""
    pattern = pattern.replace(r"\z", r"\Z")
    # Python wants global inline flags at the very start; Go allows them anywhere.
    flags = re.findall(r"\(\?([imsU]+)\)", pattern)
    if flags:
        inner = re.sub(r"\(\?[imsU]+\)", "", pattern)
        letters = "".join(sorted(set("".join(flags)) - {"U"}))
        pattern = (f"(?{letters})" if letters else "") + inner
    return pattern


def _rule_from_table(t: dict[str, Any], source: str, origin: str) -> Rule:
    try:
        rid = str(t["id"])
        regex_text = str(t["regex"])
    except KeyError as exc:
        raise LayerForensicsError(source, f"a rule lacks the key {exc.args[0]!r}") from exc
    regex = _bytes_re(regex_text, source, rid)
    severity = str(t.get("severity", "medium")).lower()
    if severity not in SEVERITIES:
        raise LayerForensicsError(source, f"rule {rid!r}: unknown severity {severity!r}")
    generic = bool(t.get("generic", False))
    confidence = str(t.get("confidence", "medium" if generic else "high")).lower()
    if confidence not in CONFIDENCES:
        raise LayerForensicsError(source, f"rule {rid!r}: unknown confidence {confidence!r}")
    sg = t.get("secret_group")
    if sg is None:
        sg = 1 if regex.groups >= 1 else 0
    sources = frozenset(t.get("sources", SOURCES))
    if not sources <= set(SOURCES):
        raise LayerForensicsError(source, f"rule {rid!r}: unknown sources {sorted(sources)}")
    path = t.get("path")
    requires = t.get("requires")
    priority = int(t.get("priority", 1 if generic else 2))
    return Rule(
        id=rid,
        regex=regex,
        title=str(t.get("title", rid)),
        category=str(t.get("category", "Other")),
        severity=severity,
        confidence=confidence,
        keywords=tuple(str(k).lower() for k in t.get("keywords", ())),
        secret_group=int(sg),
        entropy=float(t.get("entropy", 0.0)),
        min_length=int(t.get("min_length", 0)),
        path=re.compile(_go_to_python(path)) if path else None,
        requires=_bytes_re(requires, source, rid) if requires else None,
        sources=sources,
        generic=generic,
        priority=priority,
        allow=tuple(_bytes_re(a, source, rid) for a in t.get("allow", ())),
        stop_match=tuple(_bytes_re(a, source, rid) for a in t.get("stop_match", ())),
        origin=origin,
    )


_BUILTIN: RuleSet | None = None


def builtin_rules() -> RuleSet:
    """The rules shipped in ``layerforensics/secrets/rules/*.toml`` (cached)."""
    global _BUILTIN
    if _BUILTIN is None:
        rules: list[Rule] = []
        folder = resources.files("layerforensics.secrets") / "rules"
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".toml"):
                continue
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            rules.extend(_rule_from_table(t, entry.name, "builtin") for t in data.get("rule", []))
        ids = [r.id for r in rules]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise LayerForensicsError("layerforensics/secrets/rules", f"duplicate ids {dupes}")
        _BUILTIN = RuleSet(rules, "builtin")
    return _BUILTIN


def _gitleaks_rule(t: dict[str, Any], source: str) -> Rule | None:
    rid = str(t.get("id", "unnamed"))
    regex = t.get("regex")
    path = t.get("path")
    if not regex and not path:
        return None
    if not regex:  # path-only rule (e.g. pkcs12-file): report the file itself
        regex = r"\A[\s\S]{0,64}"
    table: dict[str, Any] = {
        "id": rid,
        "title": t.get("description", rid),
        "category": "gitleaks",
        "severity": "medium",
        "confidence": "medium",
        "keywords": t.get("keywords", []),
        "regex": regex,
        "entropy": t.get("entropy", 0.0),
    }
    if "secretGroup" in t:
        table["secret_group"] = t["secretGroup"]
    if path:
        table["path"] = path
    allows = []
    stop = []
    for al in [*t.get("allowlists", []), *([t["allowlist"]] if "allowlist" in t else [])]:
        target = al.get("regexTarget", "secret")
        for rx in al.get("regexes", []):
            (allows if target == "secret" else stop).append(rx)
        for word in al.get("stopwords", []):
            allows.append(re.escape(word))
    table["allow"] = allows
    table["stop_match"] = stop
    try:
        return _rule_from_table(table, source, "gitleaks")
    except LayerForensicsError as exc:
        warnings.warn(f"skipping gitleaks rule: {exc}", stacklevel=3)
        return None


def load_rules(
    spec: str | Path | RuleSet | Sequence[Rule] | None = None, *, extend_builtin: bool | None = None
) -> RuleSet:
    """Resolve the ``rules=`` argument of the scanners into a :class:`RuleSet`.

    Parameters
    ----------
    spec
        ``None`` for the built-in rules; a :class:`RuleSet` or list of :class:`Rule`; or the path
        of a TOML file, either in layerforensics' own format (``[[rule]]`` tables) or in gitleaks'
        format (``[[rules]]`` tables with ``id``, ``regex``, ``secretGroup``, ``entropy``,
        ``keywords``, ``path`` and ``allowlists``; ``[extend] useDefault = true`` adds the
        built-in rules).
    extend_builtin
        Force adding (True) or not adding (False) the built-in rules; default: only when the
        file asks for it (``[extend] useDefault``).

    Returns
    -------
    RuleSet
    """
    if spec is None:
        return builtin_rules()
    if isinstance(spec, RuleSet):
        return builtin_rules() + spec if extend_builtin else spec
    if not isinstance(spec, str | Path):
        rs = RuleSet(list(spec), "custom")
        return builtin_rules() + rs if extend_builtin else rs
    path = Path(spec)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LayerForensicsError(str(path), f"cannot read rules: {exc}") from exc
    rules: list[Rule] = []
    use_default = False
    if "rules" in data:  # gitleaks format
        for t in data["rules"]:
            r = _gitleaks_rule(t, str(path))
            if r is not None:
                rules.append(r)
        use_default = bool(data.get("extend", {}).get("useDefault", False))
    for t in data.get("rule", []):
        rules.append(_rule_from_table(t, str(path), "user"))
    if not rules:
        raise LayerForensicsError(str(path), "no [[rule]] or [[rules]] tables found")
    rs = RuleSet(rules, path.name)
    if extend_builtin or (extend_builtin is None and use_default):
        rs = builtin_rules() + rs
    return rs


def rule_table(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """Plain dicts describing rules (id, title, category, severity, ...), e.g. for SARIF."""
    return [
        {
            "id": r.id,
            "title": r.title,
            "category": r.category,
            "severity": r.severity,
            "confidence": r.confidence,
            "generic": r.generic,
            "path_scoped": r.path is not None,
        }
        for r in rules
    ]
