"""The matching engine: one prefilter pass, then per-rule regexes only where they can match.

The prefilter reports which rule keywords occur (case-insensitively, overlaps included), using
the fastest backend installed (:data:`PREFILTERS`): Hyperscan (``pip install hyperscan``), whose
one pass also reports which rule regexes match anywhere in the buffer, so the extracting regex
runs only where it will find something; else one ``re2.Set`` DFA pass (google-re2, a
dependency); else a ``pyahocorasick`` automaton; else ``bytes.lower()`` plus ``in``. The rule
regexes themselves run on RE2 when it is installed (linear time: hostile input cannot make them
backtrack), else on Python's ``re`` (the built-in rules are written RE2- and
Hyperscan-compatible, and every backend gives the same matches, which the tests check).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from layerforensics.secrets._heuristics import (
    entropy,
    is_code_like,
    is_plain_words,
    low_confidence_reason,
    placeholder_host,
)
from layerforensics.secrets._rules import Rule, RuleSet

__all__ = ["BINARY_SNIFF", "PREFILTERS", "Engine", "Match", "is_binary"]

#: Bytes inspected by :func:`is_binary`.
BINARY_SNIFF = 8192
_CONF_ORDER = {"low": 0, "medium": 1, "high": 2}


def is_binary(data: bytes) -> bool:
    """Content sniffing: a NUL byte in the first 8 KiB means binary (git's rule)."""
    return b"\x00" in data[:BINARY_SNIFF]


@dataclass(slots=True)
class Match:
    """One accepted match in one piece of data."""

    rule: Rule
    start: int  # byte offset of the secret
    end: int
    secret: str
    line: int
    context: str  # the line, with every accepted secret on it replaced by its redaction
    raw_context: str  # the same line unredacted
    confidence: str
    reason: str | None
    entropy: float


#: Prefilter backends, fastest first (measured on the 0.7 GB benchmark image's 173 MB of text,
#: one core: hyperscan ~1.5 GB/s for the keywords alone, re2.Set ~490 MB/s, pyahocorasick
#: ~80 MB/s, bytes.lower()+in ~8 MB/s).
PREFILTERS = ("hyperscan", "re2", "ahocorasick", "bytes")


def _hs_pattern(rule: Rule) -> bytes:
    return rule.regex.pattern.replace(rb"\Z", rb"$")


class _KeywordScreen:
    """Find which keywords occur in a buffer, in one pass.

    With Hyperscan, the same pass also tells which rule regexes match anywhere in the buffer
    (the rule patterns are compiled into the same database, as Nosey Parker does), so the exact
    regex (RE2 or ``re``, which extracts the secret group) only runs where it will find
    something. Without Hyperscan the keyword hit alone decides.

    Parameters
    ----------
    keywords
        Lower-case literal keywords, matched case-insensitively.
    regexes
        ``rule id -> rule`` whose regex Hyperscan should confirm (ignored by other backends;
        a rule Hyperscan cannot compile is simply not confirmed, i.e. keyword-gated only).
    prefilter
        ``"auto"`` (the fastest installed, see :data:`PREFILTERS`) or one backend name.
    """

    def __init__(
        self,
        keywords: Iterable[str],
        regexes: dict[str, Rule] | None = None,
        prefilter: str = "auto",
    ) -> None:
        self.keywords = sorted({k for k in keywords if k}, key=len, reverse=True)
        self.backend = "none"
        self.confirmed_rules: frozenset[str] = frozenset()
        self._hs: Any = None
        self._hs_scratch: Any = None
        self._hs_rule_ids: list[str] = []
        self._local = threading.local()
        self._re2 = None
        self._aho = None
        if prefilter not in ("auto", *PREFILTERS):
            raise ValueError(f"unknown prefilter {prefilter!r}; choose from {PREFILTERS}")
        if not self.keywords:
            return
        order = PREFILTERS if prefilter == "auto" else (prefilter,)
        for name in order:
            try:
                getattr(self, f"_init_{name}")(regexes or {})
            except Exception:  # optional accelerator: any failure falls back
                if prefilter != "auto":
                    raise
                continue
            self.backend = name
            return

    # -- backends ---------------------------------------------------------------------------
    def _init_hyperscan(self, regexes: dict[str, Rule]) -> None:
        import hyperscan  # type: ignore[import-not-found]

        kw_flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
        rx_flags = (
            hyperscan.HS_FLAG_SINGLEMATCH
            | hyperscan.HS_FLAG_MULTILINE
            | hyperscan.HS_FLAG_ALLOWEMPTY
        )
        kw_exprs = [re.escape(k.encode("latin-1")) for k in self.keywords]

        def build(rids: list[str]) -> Any:
            exprs = kw_exprs + [_hs_pattern(regexes[r]) for r in rids]
            flags = [kw_flags] * len(kw_exprs) + [rx_flags] * len(rids)
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(
                expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags
            )
            return db

        rule_ids = list(regexes)
        try:
            db = build(rule_ids)
        except Exception:  # some pattern is rejected: keep those keyword-gated only
            ok = []
            for rid in rule_ids:
                try:
                    probe = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                    probe.compile(
                        expressions=[_hs_pattern(regexes[rid])],
                        ids=[0],
                        elements=1,
                        flags=[rx_flags],
                    )
                except Exception:
                    continue
                ok.append(rid)
            rule_ids = ok
            db = build(rule_ids)
        self._hs = db
        self._hs_scratch = hyperscan.Scratch(db)
        self._hs_rule_ids = rule_ids
        self.confirmed_rules = frozenset(rule_ids)

    def _init_re2(self, regexes: dict[str, Rule]) -> None:
        import re2  # type: ignore[import-not-found]

        opts = re2.Options()
        opts.case_sensitive = False
        opts.encoding = re2.Options.Encoding.LATIN1
        opts.max_mem = 256 << 20
        kwset = re2.Set.SearchSet(opts)
        for k in self.keywords:
            kwset.Add(re.escape(k.encode("latin-1")))
        kwset.Compile()
        self._re2 = kwset

    def _init_ahocorasick(self, regexes: dict[str, Rule]) -> None:
        import ahocorasick  # type: ignore[import-not-found]

        aho = ahocorasick.Automaton()
        for k in self.keywords:
            aho.add_word(k, k)
        aho.make_automaton()
        self._aho = aho

    def _init_bytes(self, regexes: dict[str, Rule]) -> None:
        return None

    # -- matching ---------------------------------------------------------------------------
    def screen(self, data: bytes) -> tuple[set[str], set[str]]:
        """``(keywords found, ids of confirmed rules whose regex matches somewhere)``.

        The second set is only meaningful for rules in :attr:`confirmed_rules` (Hyperscan).
        """
        if self._hs is None:
            return self.hits(data), set()
        ids: set[int] = set()
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:  # Hyperscan scratch space is per thread
            scratch = self._local.scratch = self._hs_scratch.clone()
        self._hs.scan(
            data,
            match_event_handler=lambda i, _f, _t, _fl, _c: ids.add(i),
            scratch=scratch,
        )
        nk = len(self.keywords)
        kws = {self.keywords[i] for i in ids if i < nk}
        rules = {self._hs_rule_ids[i - nk] for i in ids if i >= nk}
        return kws, rules

    def hits(self, data: bytes) -> set[str]:
        """The keywords (lower case) that occur in ``data``, case-insensitively."""
        if not self.keywords:
            return set()
        if self._hs is not None:
            return self.screen(data)[0]
        if self._re2 is not None:  # one DFA pass reports every keyword, overlaps included
            return {self.keywords[i] for i in (self._re2.Match(data) or ())}
        low = data.lower()
        if self._aho is not None:
            return {k for _, k in self._aho.iter(low.decode("latin-1"))}
        return {k for k in self.keywords if k.encode("latin-1") in low}


def _compile_re2_text(pattern: str) -> Any:
    """A ``str`` pattern compiled with RE2 (for paths), or ``None``."""
    try:
        import re2  # type: ignore[import-not-found]

        return re2.compile(pattern)
    except Exception:  # RE2 missing or the pattern needs Python's re
        return None


def _compile_re2(rule: Rule) -> Any:
    """The rule's regex compiled with RE2 (linear time), or ``None`` if RE2 cannot take it."""
    try:
        import re2  # type: ignore[import-not-found]

        opts = re2.Options()
        opts.encoding = re2.Options.Encoding.LATIN1
        opts.max_mem = 64 << 20
        return re2.compile(b"(?m)" + rule.regex.pattern.replace(rb"\Z", rb"\z"), opts)
    except Exception:  # look-around etc.: Python's re runs it
        return None


class Engine:
    """Scan byte buffers with a :class:`RuleSet`.

    Parameters
    ----------
    rules
        The rules to apply.
    prefilter
        ``"auto"`` (fastest installed) or one of :data:`PREFILTERS`; naming a backend that is
        not installed raises ``ImportError``.
    """

    def __init__(self, rules: RuleSet, *, prefilter: str = "auto") -> None:
        self.rules = rules
        self._by_kw: dict[str, list[Rule]] = {}
        self._always: dict[str, list[Rule]] = {s: [] for s in ("file", "history", "config")}
        self._path_rules: list[Rule] = [r for r in rules if r.path is not None]
        for r in rules:
            if r.path is not None:
                continue
            if r.keywords:
                for k in r.keywords:
                    self._by_kw.setdefault(k, []).append(r)
            else:
                for s in r.sources:
                    self._always[s].append(r)
        kws = {k for r in rules for k in r.keywords}
        keyword_rules = {r.id: r for r in rules if r.path is None and r.keywords}
        self.screen = _KeywordScreen(kws, keyword_rules, prefilter)
        self._confirmed = self.screen.confirmed_rules
        # rule regexes: RE2 when installed (linear time, ~4.5x faster than re here), else re
        self._rx: dict[str, Any] = {}
        for r in rules:
            rx = _compile_re2(r)
            if rx is not None:
                self._rx[r.id] = rx
        self._order = {r.id: i for i, r in enumerate(rules)}
        if self._path_rules:
            self._any_path = re.compile("|".join(f"(?:{r.path.pattern})" for r in self._path_rules))
            self._any_path_fast = _compile_re2_text(self._any_path.pattern)
        else:
            self._any_path = None
            self._any_path_fast = None

    # ------------------------------------------------------------------ candidates
    def _path_may_match(self, path: str) -> bool:
        if self._any_path is None:
            return False
        if self._any_path_fast is not None:
            return self._any_path_fast.search(path) is not None
        return self._any_path.search(path) is not None

    def candidates(self, data: bytes, *, path: str | None, source: str) -> list[Rule]:
        """Rules worth running on ``data`` (keyword hit and, with Hyperscan, a regex hit; path
        match; source)."""
        hits, matched = self.screen.screen(data)
        confirmed = self._confirmed
        chosen: dict[str, Rule] = {}
        for k in hits:
            for r in self._by_kw.get(k, ()):
                if source in r.sources and (r.id not in confirmed or r.id in matched):
                    chosen[r.id] = r
        for r in self._always[source]:
            chosen[r.id] = r
        if path is not None and self._path_may_match(path):
            for r in self._path_rules:
                if (
                    source in r.sources
                    and r.path.search(path)
                    and (not r.keywords or hits.intersection(r.keywords))
                ):
                    chosen[r.id] = r
        if len(chosen) < 2:
            return list(chosen.values())
        return sorted(chosen.values(), key=lambda r: self._order[r.id])

    # ------------------------------------------------------------------ scanning
    def scan(self, data: bytes, *, path: str | None = None, source: str = "file") -> list[Match]:
        """All accepted matches in ``data``.

        Parameters
        ----------
        data
            The bytes of one file version, or one metadata field encoded as UTF-8.
        path
            Absolute path of the file (enables sensitive-file rules and path heuristics).
        source
            ``file``, ``history`` or ``config``: rules declare where they apply.
        """
        raw: list[tuple[Rule, int, int, str, str | None]] = []
        for rule in self.candidates(data, path=path, source=source):
            if rule.requires is not None and rule.requires.search(data) is None:
                continue
            for m in self._rx.get(rule.id, rule.regex).finditer(data):
                found = self._accept(rule, m, path, data)
                if found is not None:
                    raw.append((rule, *found))
        if not raw:
            return []
        # overlap resolution: higher priority, then longer span, then non-generic, then rule order
        raw.sort(
            key=lambda t: (-t[0].priority, -(t[2] - t[1]), t[1], t[0].generic, self._order[t[0].id])
        )
        kept: list[tuple[Rule, int, int, str, str | None]] = []
        for cand in raw:
            if any(cand[1] < k[2] and k[1] < cand[2] for k in kept):
                continue
            kept.append(cand)
        kept.sort(key=lambda t: t[1])
        return self._finish(data, kept)

    def _accept(
        self, rule: Rule, m: re.Match[bytes], path: str | None, data: bytes
    ) -> tuple[int, int, str, str | None] | None:
        g = rule.secret_group
        if g > rule.regex.groups:
            g = 0
        if m.group(g) is None:  # alternation rules: take the first group that matched
            g = next((i for i in range(1, rule.regex.groups + 1) if m.group(i) is not None), 0)
        start, end = m.span(g)
        secret = m.group(g).decode("utf-8", "replace")
        if rule.min_length:
            body = m.group(1) if g == 0 and rule.regex.groups >= 1 and m.group(1) else m.group(g)
            if len(re.sub(rb"\s", b"", body or b"")) < rule.min_length:
                return None
        ent = entropy(secret)
        if rule.entropy and ent <= rule.entropy:
            return None
        sb = m.group(g)
        if any(a.search(sb) for a in rule.allow):
            return None
        whole = m.group(0)
        if any(s.search(whole) for s in rule.stop_match):
            return None
        if rule.generic:
            key = (
                m.group(1).decode("utf-8", "replace")
                if rule.regex.groups >= 2 and g != 1 and m.group(1)
                else ""
            )
            if is_code_like(secret, key) or data[end : end + 1] == b"(":
                return None  # program text, or a function call
        reason = low_confidence_reason(secret, path)
        if reason is None and rule.generic and is_plain_words(secret):
            reason = "plain-word"  # "pwd: expected", "passwd: elevated-privileges" ...
        if reason is None and b"@" in whole and placeholder_host(whole.decode("latin-1")):
            reason = "placeholder"  # http://proxyuser:proxypass@proxyhost:port in a comment
        return start, end, secret, reason

    def _finish(
        self, data: bytes, kept: list[tuple[Rule, int, int, str, str | None]]
    ) -> list[Match]:
        from layerforensics.secrets._heuristics import redact

        out: list[Match] = []
        line, counted = 1, 0  # kept is sorted by start: count newlines incrementally
        for rule, start, end, secret, reason in kept:
            ls = data.rfind(b"\n", 0, start) + 1
            le = data.find(b"\n", start)
            if le == -1:
                le = len(data)
            line += data.count(b"\n", counted, start)
            counted = start
            # redact every kept secret that touches this line
            pieces: list[bytes] = []
            pos = ls
            for _, s2, e2, sec2, _r in kept:
                if e2 <= ls or s2 >= le or s2 < pos:
                    continue
                pieces.append(data[pos:s2])
                pieces.append(redact(sec2).encode())
                pos = min(e2, le)
            pieces.append(data[pos:le])
            ctx = b"".join(pieces).decode("utf-8", "replace").strip()
            raw_ctx = data[ls:le].decode("utf-8", "replace").strip()
            if len(ctx) > 300:
                ctx = ctx[:297] + "..."
            if len(raw_ctx) > 300:
                raw_ctx = raw_ctx[:297] + "..."
            conf = "low" if reason else rule.confidence
            out.append(
                Match(
                    rule,
                    start,
                    end,
                    secret,
                    line,
                    ctx,
                    raw_ctx,
                    conf,
                    reason,
                    round(entropy(secret), 3),
                )
            )
        return out
