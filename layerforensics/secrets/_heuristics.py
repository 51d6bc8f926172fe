"""Cheap false-positive heuristics: known examples, placeholders, noisy paths, code-like values.

None of these drops a finding of a vendor-specific rule: they lower its confidence to ``low`` so
an incident responder still sees it. Only generic (keyword = value) rules drop values that are
plainly code (``self.password``, ``os.environ[...]``) or empty words (``None``, ``true``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

__all__ = [
    "KNOWN_EXAMPLES",
    "entropy",
    "is_code_like",
    "is_plain_words",
    "low_confidence_reason",
    "placeholder_host",
    "redact",
]

#: Values published in vendor documentation and tutorials.
KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "pk_test_TYooMQauvdEDq54NiTphI7jx",
    }
)
# jwt.io's sample payload {"sub":"1234567890","name":"John Doe","iat":1516239022}
_JWT_SAMPLE_PAYLOAD = "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"

_PLACEHOLDER_WORDS = re.compile(
    r"(?i)example|sample|dummy|fake|placeholder|changeme|change_me|change-me|your[_\-]|"
    r"<[a-z_\- ]+>|xxxx|\*\*\*\*|\.\.\.\.|redacted|insert[_\-]|replace[_\-]?me|todo|lorem|"
    r"foobar|not[_\-]?a[_\-]?real|test[_\-]?(?:key|token|secret|password)|^(?:password|secret|"
    r"token|admin|root|pass|passwd|test|guest|default|none|null|undefined)$"
)
_TEMPLATE = re.compile(
    r"\$\{|\{\{|\$\(|%\(|%s|<%|#\{|@@|^\$[A-Za-z_]|^%[A-Za-z_]+%$|^\{[A-Za-z_]+\}$"
)
_NOISY_PATH = re.compile(
    r"(?i)(?:^|/)(?:tests?|testing|testdata|test_data|__tests__|spec|specs|fixtures?|examples?|"
    r"samples?|docs?|documentation|man|vendor|node_modules|site-packages|dist-packages|"
    r"third[_\-]?party|\.dist-info|gems|pkg/mod)/|"
    r"^/usr/(?:share|include)/|^/usr/(?:local/)?lib/(?:python|ruby|perl|node|jvm|go)|"
    r"\.(?:md|rst|adoc|html?|ipynb)$|(?:^|/)[^/]*(?:_test|\.test|-test|test_|\.spec)[^/]*$|"
    r"^/usr/local/go/|^/opt/yarn"
)
_CODE_LIKE = re.compile(
    r"^(?:self|this|os|process|config|settings|env|args|opts|options|params|request|req|ctx|cls|"
    r"data|kwargs|conf|cfg|app)\b[.\[]|^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$|"
    r"^[A-Za-z_][A-Za-z0-9_]*\[|->|::|^(?:none|null|nil|true|false|undefined|required|optional|"
    r"string|str|bytes|int|dict|list|object|any|function|func|lambda|return|yes|no|on|off)$",
    re.IGNORECASE,
)


# Values that are not literals: Vim script scoped variables (s:netrw_passwd, a:dict.x), URLs
# without credentials (a token *link*), absolute file or settings paths (/usr/sbin/tool,
# /system/http_proxy/authentication_password), option names in a completion list (password=).
_NOT_A_LITERAL = re.compile(
    r"^[a-z_]+=$|^[sgabwtvl]:[A-Za-z_]|^[a-z][a-z0-9+.\-]*://[^:@/\s]+(?:/|$)|^(?:/[A-Za-z_][A-Za-z0-9_.\-]*){2,}/?$"
)

_VAR_REF = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%[A-Za-z_][A-Za-z0-9_]*%")


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _low_diversity(value: str) -> bool:
    core = re.sub(r"[^A-Za-z0-9]", "", value)
    if len(core) < 8:
        return False
    if len(set(core)) <= 4:
        return True
    # periodic ("KEYKEYKEY...", "abcabc...")
    for p in range(1, 9):
        if len(core) >= 3 * p and core == (core[:p] * (len(core) // p + 1))[: len(core)]:
            return True
    # long ascending runs ("0123456789", "abcdefgh")
    run = best = 1
    for a, b in itertools.pairwise(core):
        run = run + 1 if ord(b) - ord(a) == 1 else 1
        best = max(best, run)
    return best >= 10


def low_confidence_reason(secret: str, path: str | None) -> str | None:
    """Why a finding should be reported with ``low`` confidence, or ``None``.

    Reasons: ``known-example`` (vendor documentation values), ``placeholder`` (template or
    dummy text), ``low-diversity`` (repeated or sequential characters), ``noisy-path``
    (tests, docs, vendored packages, language runtimes).
    """
    s = secret.strip()
    if s in KNOWN_EXAMPLES or _JWT_SAMPLE_PAYLOAD in s:
        return "known-example"
    if _TEMPLATE.search(s) or _PLACEHOLDER_WORDS.search(s):
        return "placeholder"
    if "-----BEGIN" not in s and _low_diversity(s):
        return "low-diversity"
    if path and _NOISY_PATH.search(path):
        return "noisy-path"
    return None


def is_code_like(value: str, key: str = "") -> bool:
    """True when a generic rule's value is program text rather than a literal secret.

    Program text: attribute access, calls, subscripts, type names, ``None``/``true``; an
    indirection to a variable (``$TOKEN``, ``${TOKEN}``, ``%TOKEN%``); the key's own name.
    """
    v = value.strip().rstrip(".,;)")
    if _CODE_LIKE.search(v) or _VAR_REF.fullmatch(v) or _NOT_A_LITERAL.search(v):
        return True
    if key and v.lower().strip("_-=:") in key.lower():
        return True  # password=password, token=$token, "password=" in a completion list ...
    return bool(re.fullmatch(r"_*[a-z]+(?:_[a-z]+)+", v))  # snake_case identifier


def is_plain_words(value: str) -> bool:
    """Lower-case letters only, or lower-case words joined by ``-``/``_`` (``elevated-privileges``).

    Generic rules keep such values but at ``low`` confidence: they are usually settings or
    identifiers (lintian tags, option names), sometimes a passphrase.
    """
    return bool(re.fullmatch(r"[a-z]+(?:[-_][a-z]+)*", value))


# Documentation hosts in URLs with credentials: RFC 2606/6761 names and the usual stand-ins.
_PLACEHOLDER_HOST = re.compile(
    r"(?i)@(?:[a-z0-9\-]+\.)*(?:example\.(?:com|org|net)|[a-z0-9\-]+\.(?:example|invalid|test)|"
    r"bogus\.[a-z]+|some\.where\.[a-z]+|domain\.(?:com|tld)|your[\-_]?(?:domain|host|server)"
    r"[a-z0-9.\-]*|proxyhost|hostname|yourhost|(?:proxy)?host(?=[:/\s'\"]|$))"
)


def placeholder_host(text: str) -> bool:
    """True when a ``user:password@host`` match points at a documentation host
    (``example.com``, ``*.test``, ``proxyhost``, ``www.bogus.net`` ...)."""
    return _PLACEHOLDER_HOST.search(text) is not None


def redact(secret: str) -> str:
    """A redacted form: a short prefix (vendor prefixes stay readable) and ``********``."""
    s = secret
    if len(s) >= 24:
        keep = 6 if "-----BEGIN" not in s else s.find("-----", 5) + 5
        return s[:keep] + "********"
    if len(s) >= 12:
        return s[:3] + "********"
    return "********"
