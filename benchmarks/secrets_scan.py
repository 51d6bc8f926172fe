"""Secret-scan throughput: the engine alone, find_secrets end to end, and against baselines.

Usage::

    python benchmarks/secrets_scan.py [--corpus DIR] [--limit-mb 60] [--out benchmarks/out]
    python benchmarks/secrets_scan.py --image benchmarks/out/image-*/bench-docker.tar [--repeat 3]

Corpus mode (default: this Python's standard library plus /usr/share/doc and /etc, read into
memory): ``engine`` rows time :meth:`Engine.scan` over every text file with each installed
prefilter backend (hyperscan, re2, ahocorasick, bytes) and with no prefilter at all (every rule's
regex on every file); ``image`` rows build a gzip OCI image of the same files (under ``--out``,
git-ignored), then time ``find_secrets(img, sources=["file"])`` on a fresh open.

Image mode (``--image PATH``, a ``docker save`` tar or an OCI layout), side by side, best of
``--repeat``, with the load average printed next to each figure:

1. baseline: every layer's tar extracted to stdout (``tar -xO``) piped into ONE
   ``LC_ALL=C grep -ciE`` of all rule keywords (case-insensitive, as the scan is);
2. layerforensics: ``open_image`` + ``find_secrets`` (every file version of every layer,
   history, config), one fresh process per run (so the rule compile is included);
3. findings by rule and confidence on that real content (false-positive review);
4. detect-secrets 1.5.0 (if installed), in-process, one core, on a random sample of the same
   text files extracted to a temp dir, and our engine on the same files read from disk;
5. recall of both tools on fixtures: one file per planted fake secret
   (``tests/secrets_fakes.py``, one sample per rule) plus the realistic files of the
   real-engine test image (``tests/test_secrets_engine_images.py``).

MB = 10**6 bytes of uncompressed file content.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

import layerforensics as lf
from layerforensics.builder import File, ImageBuilder
from layerforensics.secrets import (
    DEFAULT_MAX_FILE_SIZE,
    builtin_rules,
    find_secrets,
    is_binary,
    scan_bytes,
)
from layerforensics.secrets._engine import PREFILTERS, Engine


def load_corpus(roots: list[Path], limit: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    total = 0
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for n in sorted(names):
                p = Path(dirpath) / n
                try:
                    if not p.is_file() or p.is_symlink() or p.stat().st_size > 4_000_000:
                        continue
                    data = p.read_bytes()
                except OSError:
                    continue
                if is_binary(data):
                    continue
                out.append(("/corpus" + str(p), data))
                total += len(data)
                if total >= limit:
                    return out
    return out


def time_engine(
    eng: Engine, corpus: list[tuple[str, bytes]], no_prefilter: bool
) -> tuple[float, int]:
    hits = 0
    t = time.perf_counter()
    for path, data in corpus:
        if no_prefilter:
            for r in eng.rules:
                if r.path is None or r.path.search(path):
                    hits += sum(1 for _ in r.regex.finditer(data))
        else:
            hits += len(eng.scan(data, path=path))
    return time.perf_counter() - t, hits


# ------------------------------------------------------------------------------ image mode
TESTS = Path(__file__).resolve().parent.parent / "tests"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def keyword_pattern() -> str:
    kws = sorted({k for r in builtin_rules() for k in r.keywords})
    return "|".join(re.escape(k) for k in kws)


def layer_commands(image: Path) -> list[str]:
    """Shell commands writing each layer's tar to stdout (decompressed)."""
    with lf.open_image(image) as img:
        layers = img.layers
        digests = layers["digest"].astype(str).tolist()
        comps = layers["compression"].astype(str).tolist()
    unpack = {"none": "", "gzip": " | gzip -dc", "zstd": " | zstd -dc", "xz": " | xz -dc"}
    cmds = []
    if image.is_dir():  # OCI layout: blobs/<alg>/<hex>
        for dig, comp in zip(digests, comps, strict=True):
            alg, hexd = dig.split(":", 1)
            blob = shlex.quote(str(image / "blobs" / alg / hexd))
            cmds.append(f"cat {blob}{unpack[comp]}")
        return cmds
    with tarfile.open(image) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    for member, comp in zip(manifest[0]["Layers"], comps, strict=True):
        cmds.append(f"tar -xOf {shlex.quote(str(image))} {shlex.quote(member)}{unpack[comp]}")
    return cmds


def time_baseline(image: Path) -> tuple[float, str]:
    """``tar -xO`` of every layer into one ``grep -ciE`` of the keywords."""
    layers = "; ".join(f"{c} | tar -xO" for c in layer_commands(image))
    cmd = f"( {layers} ) | LC_ALL=C grep -ciE {shlex.quote(keyword_pattern())}"
    t = time.perf_counter()
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return time.perf_counter() - t, out.stdout.strip()


_CHILD = """
import json, sys, time
t = time.perf_counter()
import layerforensics as lf
from layerforensics.secrets import find_secrets
with lf.open_image(sys.argv[1]) as img:
    t1 = time.perf_counter()
    df = find_secrets(img)
t2 = time.perf_counter()
if len(sys.argv) > 2:
    df.to_pickle(sys.argv[2])
print(json.dumps({"open": t1 - t, "scan": t2 - t1, "total": t2 - t, **df.attrs["scan"]}))
"""


def time_ours(image: Path, keep: Path | None = None) -> dict:
    args = [sys.executable, "-c", _CHILD, str(image)] + ([str(keep)] if keep else [])
    t = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - t  # includes interpreter start and imports
    return res


def text_files(image: Path) -> list[tuple[str, bytes]]:
    with lf.open_image(image) as img:
        return [
            (str(r.path), bytes(d))
            for r, d in img.iter_contents(max_size=DEFAULT_MAX_FILE_SIZE)
            if not is_binary(d)
        ]


def run_detect_secrets(paths: list[Path]) -> tuple[float, dict[str, list[int]]]:
    """detect-secrets' default plugins and filters, in process, one core."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    t = time.perf_counter()
    with default_settings():
        sc = SecretsCollection()
        for p in paths:
            sc.scan_file(str(p))
    dt = time.perf_counter() - t
    found: dict[str, list[int]] = {}
    for fname, secrets in sc.data.items():
        found[str(Path(fname).resolve())] = sorted(s.line_number for s in secrets)
    return dt, found


def fixtures() -> list[tuple[str, bytes, str]]:
    """(relative path, content, planted secret): one planted secret per file."""
    sys.path.insert(0, str(TESTS))
    from secrets_fakes import ALNUM, Fakes

    f = Fakes(20261127)
    out = []
    for rule, gen in sorted(f.samples().items()):
        text = gen()
        if text.startswith("-----"):
            secret = "-----BEGIN"
        elif rule == "curl-user-password":  # curl -u user:PASSWORD https://...
            secret = text.split()[2].split(":", 1)[1]
        else:
            secret = text.split()[-1].strip("'\"")
        out.append((f"srv/conf/{rule}.conf", f"# {rule}\n{text}\n".encode(), secret))
    aws_id, aws_secret = f.aws_pair()
    gh = "ghp_" + f.s(ALNUM, 36)
    pw = f.s(ALNUM, 20)
    npm = "npm_" + f.s(ALNUM, 36)
    realistic = [
        ("app/.env", f"AWS_ACCESS_KEY_ID={aws_id}\n", aws_id),
        ("app/aws.env", f"AWS_SECRET_ACCESS_KEY={aws_secret}\n", aws_secret),
        ("app/gh.env", f"GITHUB_TOKEN={gh}\n", gh),
        (
            "app/.git/config",
            f'[remote "origin"]\n\turl = https://deploy:{pw}@git.corp.net/shop/app.git\n',
            pw,
        ),
        ("root/.npmrc", f"//registry.npmjs.org/:_authToken={npm}\n", npm),
        ("history.txt", f"|1 NPM_TOKEN={npm} /bin/sh -c npm ci\n", npm),
        ("root/.ssh/id_ed25519", f.pem("OPENSSH PRIVATE KEY"), "-----BEGIN"),
    ]
    out += [(p, t.encode(), sec) for p, t, sec in realistic]
    return out


def recall(tmp: Path) -> None:
    fx = fixtures()
    paths = []
    for rel, data, _ in fx:
        p = tmp / "fixtures" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p.resolve())
    ours_any = ours_conf = 0
    ours_missed = []
    for rel, data, secret in fx:
        df = scan_bytes(data, path="/" + rel, redact=False)
        hit = df[
            df["secret"].str.contains(secret[:40], regex=False)
            | df["secret"].map(lambda v, s=secret: v in s)
        ]
        ours_any += len(hit) > 0
        ours_conf += bool((hit["confidence"] != "low").any())
        if hit.empty:
            ours_missed.append(rel)
    print(f"\nrecall on {len(fx)} fixture files (one planted fake secret each):")
    print(
        f"  layerforensics: {ours_any}/{len(fx)} found, {ours_conf} at medium/high confidence;"
        f" missed: {', '.join(ours_missed) or 'none'}"
    )
    try:
        _, found = run_detect_secrets(paths)
    except ImportError:
        print("  detect-secrets: not installed (pip install detect-secrets)")
        return
    ds = sum(1 for p in paths if found.get(str(p)))
    missed = [rel for (rel, _, _), p in zip(fx, paths, strict=True) if not found.get(str(p))]
    print(f"  detect-secrets: {ds}/{len(fx)} found; missed: {', '.join(missed)}")


def detect_secrets_speed(files: list[tuple[str, bytes]], sample_mb: float, tmp: Path) -> None:
    rng = random.Random(4)
    pool = files[:]
    rng.shuffle(pool)
    chosen, total = [], 0
    for path, data in pool:
        if total >= sample_mb * 1e6:
            break
        chosen.append((path, data))
        total += len(data)
    paths = []
    for i, (path, data) in enumerate(chosen):
        p = tmp / "sample" / f"{i:05d}" / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    mb = total / 1e6
    eng = Engine(builtin_rules())
    t = time.perf_counter()
    n = 0
    for p, (path, _) in zip(paths, chosen, strict=True):
        n += len(eng.scan(p.read_bytes(), path=path))
    ours = time.perf_counter() - t
    print(f"\nsame {len(paths)} text files ({mb:.1f} MB) extracted to {tmp}, one core [{load()}]:")
    print(f"  layerforensics engine: {ours:7.2f} s {mb / ours:8.1f} MB/s {n} findings")
    try:
        ds, found = run_detect_secrets(paths)
    except ImportError:
        print("  detect-secrets: not installed (pip install detect-secrets)")
        return
    nds = sum(len(v) for v in found.values())
    print(f"  detect-secrets 1.5.0:  {ds:7.2f} s {mb / ds:8.2f} MB/s {nds} findings [{load()}]")
    print(f"  speed ratio: {ds / ours:.0f}x")


def neutral_paths(files: list[tuple[str, bytes]]) -> None:
    """The same files as if they were the application's own (``/app/<basename>``).

    In place, /usr/share and language runtimes are ``noisy-path`` (low confidence); moved out of
    those folders, only the rules and value heuristics decide: the rule-quality check.
    """
    eng = Engine(builtin_rules())
    rows = []
    for path, data in files:
        for m in eng.scan(data, path="/app/" + path.rsplit("/", 1)[-1]):
            rows.append((m.rule.id, m.confidence, path, m.raw_context[:100]))
    df = pd.DataFrame(rows, columns=["rule", "confidence", "path", "context"])
    print(f"\nsame content at neutral paths (/app/<basename>): {len(df)} findings")
    if len(df):
        print(df.groupby(["rule", "confidence"]).size().unstack(fill_value=0).to_string())
        conf = df[df["confidence"] != "low"]
        if len(conf):
            print("medium/high at neutral paths:")
            print(conf[["rule", "confidence", "path"]].to_string())


def image_mode(args: argparse.Namespace) -> int:
    image: Path = args.image
    print(f"image {image}, {os.cpu_count()} cores, python {sys.version.split()[0]} [{load()}]")
    base_t, ours_t = [], []
    pickle_path = Path(tempfile.mkdtemp(prefix="lf-secbench-")) / "findings.pkl"
    res: dict = {}
    for i in range(args.repeat):
        dt, count = time_baseline(image)
        base_t.append(dt)
        print(f"  run {i + 1}: tar -xO | grep -ciE: {dt:6.2f} s ({count} lines) [{load()}]")
        res = time_ours(image, pickle_path if i == 0 else None)
        ours_t.append(res["total"])
        print(
            f"  run {i + 1}: open_image + find_secrets: {res['total']:6.2f} s (open "
            f"{res['open']:.2f}, scan {res['scan']:.2f}; process wall {res['wall']:.2f}) "
            f"[{load()}]"
        )
    b, o = min(base_t), min(ours_t)
    mb = res["bytes"] / 1e6
    print(
        f"best of {args.repeat}: tar|grep {b:.2f} s, layerforensics {o:.2f} s -> ratio {o / b:.2f}x"
        f" (target <= 4x); scanned {res['files']} text files, {mb:.1f} MB "
        f"({mb / o:.0f} MB/s end to end), skipped {res['skipped_binary']} binary, "
        f"{res['skipped_large']} large; prefilter {res['prefilter']}, {res['rules']} rules"
    )
    df = pd.read_pickle(pickle_path)
    print(f"\nfindings on real content: {len(df)}")
    if len(df):
        tab = df.groupby(["rule", "confidence"], observed=True).size().unstack(fill_value=0)
        print(tab.to_string())
        high = df[df["confidence"] == "high"]
        if len(high):
            print("\nhigh-confidence findings:")
            print(high[["rule", "path", "layer", "line", "secret"]].to_string())
    shutil.rmtree(pickle_path.parent, ignore_errors=True)
    files = text_files(image)
    neutral_paths(files)
    with tempfile.TemporaryDirectory(prefix="lf-secbench-") as tmp:
        detect_secrets_speed(files, args.ds_mb, Path(tmp))
        recall(Path(tmp))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ap.add_argument(
        "--corpus", nargs="*", type=Path, default=[stdlib, Path("/usr/share/doc"), Path("/etc")]
    )
    ap.add_argument("--limit-mb", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--skip-naive", action="store_true", help="skip the no-prefilter row (slow)")
    ap.add_argument("--image", type=Path, help="compare with tar|grep and detect-secrets")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ds-mb", type=float, default=5.0, help="detect-secrets sample size (MB)")
    args = ap.parse_args()
    if args.image:
        return image_mode(args)

    corpus = load_corpus(args.corpus, int(args.limit_mb * 1e6))
    mb = sum(len(d) for _, d in corpus) / 1e6
    print(
        f"corpus: {len(corpus)} text files, {mb:.1f} MB, {len(builtin_rules())} rules, "
        f"python {sys.version.split()[0]}"
    )
    print(f"{'what':34} {'seconds':>8} {'MB/s':>8} {'matches':>8}")
    for backend in PREFILTERS:
        try:
            eng = Engine(builtin_rules(), prefilter=backend)
        except ImportError:
            print(f"engine, prefilter={backend:12} (not installed)")
            continue
        dt, hits = time_engine(eng, corpus, no_prefilter=False)
        print(f"engine, prefilter={backend:16} {dt:8.2f} {mb / dt:8.1f} {hits:8d}")
    if not args.skip_naive:
        sub = corpus[: max(1, len(corpus) // 10)]
        smb = sum(len(d) for _, d in sub) / 1e6
        dt, hits = time_engine(Engine(builtin_rules()), sub, no_prefilter=True)
        print(f"engine, no prefilter (10% subset)  {dt:8.2f} {smb / dt:8.1f} {hits:8d}")

    args.out.mkdir(parents=True, exist_ok=True)
    image = args.out / "secrets-bench.tar"
    b = ImageBuilder()
    half = len(corpus) // 2
    b.layer([File(p, d) for p, d in corpus[:half]], created_by="COPY corpus-a /corpus")
    b.layer([File(p, d) for p, d in corpus[half:]], created_by="COPY corpus-b /corpus")
    b.save_oci(image, compression="gzip")
    t = time.perf_counter()
    with lf.open_image(image) as img:
        df = find_secrets(img, sources=["file"])
    dt = time.perf_counter() - t
    scanned = df.attrs["scan"]["bytes"] / 1e6
    print(f"image (gzip OCI), find_secrets      {dt:8.2f} {scanned / dt:8.1f} {len(df):8d}")
    image.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
