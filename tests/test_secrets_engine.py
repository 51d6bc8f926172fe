"""The secrets engine on plain bytes: rules, heuristics, redaction, loaders."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

import pytest
from conftest import missing
from secrets_fakes import ALNUM, Fakes

from layerforensics.errors import LayerForensicsError
from layerforensics.secrets import (
    builtin_rules,
    fingerprint,
    load_rules,
    parse_build_args,
    scan_bytes,
)
from layerforensics.secrets._engine import PREFILTERS, Engine


def test_rule_set_is_large_and_well_formed() -> None:
    rules = builtin_rules()
    assert len(rules) >= 120
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    cats = {r.category for r in rules}
    for needed in (
        "AWS",
        "GCP",
        "Azure",
        "GitHub",
        "GitLab",
        "Bitbucket",
        "Package registry",
        "Slack",
        "Discord",
        "Teams",
        "Stripe",
        "Private key",
        "JWT",
        "Database",
        "Sensitive file",
        "Generic",
    ):
        assert needed in cats, needed
    for r in rules:
        # every rule is gated by keywords, a path, or is metadata-only
        assert r.keywords or r.path is not None or "file" not in r.sources, r.id
        assert all(k == k.lower() for k in r.keywords), r.id
    assert sum(r.path is not None for r in rules) >= 30


def test_rules_are_re2_compatible() -> None:
    import re2

    for r in builtin_rules():
        # raises on look-around / back-references; \Z is Python's spelling of RE2's \z
        re2.compile(r.regex.pattern.replace(rb"\Z", rb"\z"))


@pytest.mark.parametrize("rule_id", sorted(Fakes().samples()))
def test_each_sample_is_found_by_its_rule(rule_id: str) -> None:
    fakes = Fakes(seed=zlib.crc32(rule_id.encode()))
    text = fakes.samples()[rule_id]()
    df = scan_bytes(("prefix line\n" + text + "\n").encode(), path="/app/config.txt")
    assert rule_id in set(df["rule"]), (rule_id, text, df[["rule", "secret"]])
    row = df[df["rule"] == rule_id].iloc[0]
    assert row["line"] == 2
    assert row["confidence"] in ("high", "medium")


def test_secret_value_and_fingerprint() -> None:
    tok = "ghp_" + Fakes(7).s("ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789", 36)
    data = f"export GH={tok}\n".encode()
    red = scan_bytes(data)
    raw = scan_bytes(data, redact=False)
    assert raw["secret"].tolist() == [tok]
    assert red["secret"].iloc[0] != tok and tok not in red["context"].iloc[0]
    assert red["secret"].iloc[0].startswith("ghp_") and red["secret"].iloc[0].endswith("*")
    assert (
        red["fingerprint"].iloc[0] == hashlib.sha256(tok.encode()).hexdigest() == fingerprint(tok)
    )
    assert raw["context"].iloc[0] == f"export GH={tok}"


def test_two_secrets_on_one_line_are_both_redacted() -> None:
    f = Fakes(3)
    a, b = f"ghp_{f.s('abcdefghijkmnopqrstuvwxyz23456789', 36)}", f"sk_live_{f.s('ABCDEFGHJK', 24)}"
    df = scan_bytes(f"{a} {b}\n".encode())
    assert set(df["rule"]) == {"github-pat", "stripe-secret-key"}
    for ctx in df["context"]:
        assert a not in ctx and b not in ctx


def test_known_examples_placeholders_and_docs_paths_are_low() -> None:
    f = Fakes(11)
    decoys = [
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "jwt: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpva"
        "G4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "password: ${DB_PASSWORD}",
        "api_token = {{ vault_api_token }}",
        "client_secret = <your-client-secret-here>",
        "DB_PASSWORD=changeme",
        "token: xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "stripe_key = sk_live_EXAMPLEKEY000000000000000",
    ]
    df = scan_bytes("\n".join(decoys).encode(), path="/app/settings.env")
    assert (df["confidence"] != "high").all(), df[["rule", "confidence", "context"]]
    real = f"ghp_{f.s('abcdefghijkmnopqrstuvwxyz23456789', 36)}"
    for docs in (
        "/usr/share/doc/tool/README.md",
        "/app/tests/test_auth.py",
        "/usr/lib/python3.11/site-packages/x/examples/conf.py",
    ):
        d = scan_bytes(f"token = {real}\n".encode(), path=docs)
        assert d["confidence"].tolist() == ["low"], docs
        assert d["reason"].tolist() == ["noisy-path"]
    assert scan_bytes(f"token = {real}\n".encode(), path="/app/conf.py")["confidence"].tolist() == [
        "high"
    ]


def test_generic_rules_ignore_code_and_respect_entropy() -> None:
    code = b"""
password = self.password
token = request.headers.get("x")
secret = os.environ["SECRET"]
api_key: str = None
password_hash = hashlib.sha256(x)
csrf_token = "abcdefabcdefabcdefabcdefabcd"
password = None
"""
    assert scan_bytes(code).empty


def test_private_key_with_empty_body_is_suppressed() -> None:
    data = b"-----BEGIN RSA PRIVATE KEY----- -----END RSA PRIVATE KEY-----\n"
    assert scan_bytes(data).empty
    pem = Fakes(5).pem()
    df = scan_bytes(("x\n" + pem).encode(), path="/root/.ssh/id_rsa")
    assert df["rule"].tolist() == ["ssh-private-key-file"]
    assert df["line"].tolist() == [2]


def test_binary_content_is_skipped() -> None:
    tok = "ghp_" + Fakes(9).s("abcdefghijkmnopqrstuvwxyz23456789", 36)
    assert scan_bytes(b"\x7fELF\x00\x00 " + tok.encode()).empty
    assert len(scan_bytes(b"\x7fELF " + tok.encode())) == 1


def test_sensitive_files_need_path_and_evidence() -> None:
    f = Fakes(21)
    pw = f.s("abcdefghijkmnopqrstuvwxyz23456789", 14)
    netrc = f"machine example.org login bob password {pw}\n".encode()
    df = scan_bytes(netrc, path="/root/.netrc", redact=False)
    assert df["rule"].tolist() == ["netrc-password"] and df["secret"].tolist() == [pw]
    assert scan_bytes(netrc, path="/root/notes.txt").empty  # same text elsewhere: no rule
    gitcfg = f'[remote "origin"]\n\turl = https://ci:{pw}@git.corp.net/app.git\n'.encode()
    df = scan_bytes(gitcfg, path="/src/app/.git/config", redact=False)
    assert df["rule"].tolist() == ["git-config-credentials"] and df["secret"].tolist() == [pw]
    env = f"DEBUG=1\nDB_PASSWORD={pw}\nNAME=x\n".encode()
    df = scan_bytes(env, path="/app/.env", redact=False)
    assert df["rule"].tolist() == ["dotenv-secret"] and df["line"].tolist() == [2]
    hist = f"ls\nmysql -u root -p{pw} app\n".encode()
    df = scan_bytes(hist, path="/root/.bash_history", redact=False)
    assert df["secret"].tolist() == [pw] and df["line"].tolist() == [2]
    base64_auth = base64.b64encode(f"bob:{pw}".encode()).decode()
    dcfg = json.dumps({"auths": {"registry.corp.net": {"auth": base64_auth}}}).encode()
    df = scan_bytes(dcfg, path="/root/.docker/config.json", redact=False)
    assert df["rule"].tolist() == ["docker-config-file"] and df["secret"].tolist() == [base64_auth]


def test_metadata_only_rules_do_not_fire_on_files() -> None:
    assert scan_bytes(b"MY_KEY=some-value-123\n", path="/app/x.txt").empty
    df = scan_bytes(b"MY_KEY=Zq8vT2LmN4pR7sW1", source="config", redact=False)
    assert df["rule"].tolist() == ["sensitive-variable"]
    assert scan_bytes(b"GPG_KEY=B42F6819007F00F88E364FD4036A9C25BF357DD4", source="config").empty
    assert scan_bytes(b"PUBLIC_KEY=Zq8vT2LmN4pR7sW1", source="config").empty


def test_parse_build_args() -> None:
    pairs, rest = parse_build_args("RUN |2 NPM_TOKEN=npm_abc VERSION=1.2 /bin/sh -c npm ci")
    assert pairs == [("NPM_TOKEN", "npm_abc"), ("VERSION", "1.2")]
    assert rest == "/bin/sh -c npm ci"
    pairs, rest = parse_build_args("|1 TOKEN=x /bin/sh -c make")
    assert pairs == [("TOKEN", "x")] and rest == "/bin/sh -c make"
    assert parse_build_args("/bin/sh -c make") == ([], "/bin/sh -c make")


def test_gitleaks_config_is_loaded(tmp_path) -> None:
    f = Fakes(31)
    cfg = tmp_path / "gitleaks.toml"
    cfg.write_text(
        """
title = "custom"
[extend]
useDefault = true

[[rules]]
id = "acme-internal-token"
description = "ACME internal token"
regex = '''(?i)\\b(acme_[a-z0-9]{32})(?:[^a-z0-9]|$)'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]
  [[rules.allowlists]]
  stopwords = ["acme_00000000000000000000000000000000"]

[[rules]]
id = "acme-pkcs12"
description = "ACME key store by path"
path = '''\\.acmekey$'''
""",
        encoding="utf-8",
    )
    rules = load_rules(cfg)
    assert {"acme-internal-token", "acme-pkcs12", "github-pat"} <= {r.id for r in rules}
    tok = "acme_" + f.s("abcdefghijklmnopqrstuvwxyz0123456789", 32)
    df = scan_bytes(f"x = {tok}\n".encode(), rules=rules, redact=False)
    assert df["rule"].tolist() == ["acme-internal-token"] and df["secret"].tolist() == [tok]
    assert scan_bytes(b"x = acme_00000000000000000000000000000000\n", rules=rules).empty
    assert scan_bytes(b"anything", path="/k/store.acmekey", rules=rules)["rule"].tolist() == [
        "acme-pkcs12"
    ]
    only = load_rules(cfg, extend_builtin=False)
    assert {r.id for r in only} == {"acme-internal-token", "acme-pkcs12"}


def test_bad_rule_file_raises_library_error(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\nid='x'\nregex='(unclosed'\n", encoding="utf-8")
    with pytest.raises(LayerForensicsError):
        load_rules(bad)
    with pytest.raises(LayerForensicsError):
        load_rules(tmp_path / "missing.toml")


@pytest.mark.parametrize("backend", PREFILTERS)
def test_prefilter_backends_agree(backend: str) -> None:
    f = Fakes(41)
    text = "\n".join(gen() for gen in f.samples().values()).encode()
    decoys = b"\n".join(
        [b"password = self.password", b"aws_key = os.environ['X']", b"https://example.com/x"]
    )
    ref = sorted(
        (m.rule.id, m.start)
        for m in Engine(builtin_rules(), prefilter="bytes").scan(text + decoys, path="/x")
    )
    try:
        eng = Engine(builtin_rules(), prefilter=backend)
    except ImportError:
        missing(f"optional prefilter backend {backend} not installed")
    assert eng.screen.backend == backend
    got = sorted((m.rule.id, m.start) for m in eng.scan(text + decoys, path="/x"))
    assert got == ref and len(got) >= 40
    if backend == "hyperscan":  # every built-in keyword rule compiles into the one database
        assert len(eng.screen.confirmed_rules) == sum(
            1 for r in builtin_rules() if r.path is None and r.keywords
        )


def test_auto_prefilter_is_the_fastest_installed() -> None:
    rules = builtin_rules()
    eng = Engine(rules)
    for name in PREFILTERS:
        try:
            Engine(rules, prefilter=name)
        except ImportError:
            continue
        assert eng.screen.backend == name
        break
    with pytest.raises(ValueError):
        Engine(builtin_rules(), prefilter="grep")


# Lines found in the 0.7 GB benchmark image (Debian /usr/share, Python stdlib) that used to give
# medium/high findings once their file was moved out of a noisy path (benchmarks/secrets_scan.py).
REAL_CONTENT_DECOYS = [
    'let pwd = a:dict.istemp ? a:dict.tmpdir : ""',
    "let s:netrw_hup[host].passwd = s:netrw_passwd",
    "let indtokens = s:all_tokens[lnum]",
    "authentication-password = /system/http_proxy/authentication_password",
    "nagios\t\tALL=NOPASSWD: /usr/sbin/needrestart -p",
    "passwd: elevated-privileges 4755 root/root [usr/bin/passwd]",
    "#password_encryption = scram-sha-256\t# scram-sha-256 or md5",
    '"($help -)*:secret:__docker_complete_secrets" && ret=0',
    "'Pod::Simple::PullParserEndToken'=> 'https://github.com/perl-pod/pod-simple/issues',",
    '__mvncomp "username= message= passphrase= password= scmVersion="',
    '# export http_proxy="http://proxyuser:proxypass@proxyhost:port".',
    "#     http://jschmoe:xyzzy@www.bogus.net:8000/foo/bar.tml?q=foo#changes",
    "io.jsonwebtoken:jjwt-jackson\t0.13.0\t0.11.2",
]


def test_real_content_decoys_are_not_confident() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(4000)).decode()  # zero runs -> AAAA...
    text = "\n".join([*REAL_CONTENT_DECOYS, f'<image xlink:href="data:image/png;base64,{png}"/>'])
    df = scan_bytes(text.encode(), path="/app/notes.txt")
    assert (df["confidence"] == "low").all(), df[["rule", "confidence", "context"]]
    assert "twitter-bearer-token" not in set(df["rule"])


def test_real_content_fixes_keep_true_positives() -> None:
    f = Fakes(77)
    tw = "A" * 22 + f.s(ALNUM, 90)
    pw = f.s(ALNUM, 18)
    text = f"bearer = {tw}\nhttps://deploy:{pw}@git.corp.net/app.git\npassword = hunter-two-words\n"
    df = scan_bytes(text.encode(), path="/app/conf.txt", redact=False)
    got = {r.secret: (r.rule, r.confidence, r.reason) for r in df.itertuples()}
    assert got[tw][:2] == ("twitter-bearer-token", "high")
    assert got[pw][:2] == ("url-credentials", "high")
    # lower-case words are kept (a passphrase is possible) but only at low confidence
    assert got["hunter-two-words"] == ("generic-password", "low", "plain-word")


def test_one_engine_scans_from_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    eng = Engine(builtin_rules())
    text = "\n".join(gen() for gen in Fakes(5).samples().values()).encode() * 20
    ref = sorted((m.rule.id, m.start) for m in eng.scan(text, path="/x"))
    with ThreadPoolExecutor(4) as pool:
        runs = list(
            pool.map(
                lambda _: sorted((m.rule.id, m.start) for m in eng.scan(text, path="/x")), range(8)
            )
        )
    assert all(r == ref for r in runs) and len(ref) >= 40 * 20
