"""Shared fixtures and the skip policy for tests that need real data or real engines.

Tests that need ``../shared/data`` or a container engine *skip* with a clear reason when it is
absent, except when ``LAYERFORENSICS_REQUIRE_ALL=1`` (CI), where they *fail* instead.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import random
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import engines
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def require_all() -> bool:
    """True when every optional prerequisite is mandatory (``LAYERFORENSICS_REQUIRE_ALL=1``)."""
    return os.environ.get("LAYERFORENSICS_REQUIRE_ALL", "").strip() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail when ``LAYERFORENSICS_REQUIRE_ALL=1``."""
    if require_all():
        pytest.fail(f"{reason} (LAYERFORENSICS_REQUIRE_ALL=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def require_shared_data() -> Path:
    """Path of the shared fixtures (``$LAYERFORENSICS_SHARED_DATA``, default ``../shared/data``)."""
    env = os.environ.get("LAYERFORENSICS_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        how = "LAYERFORENSICS_SHARED_DATA" if env else "default <repo>/../shared/data"
        missing(f"shared fixtures not found at {path} ({how})")
    return path.resolve()


def require_engine(name: str) -> None:
    """Skip (or fail under REQUIRE_ALL) unless engine ``name`` can run here.

    ``name`` is one of ``docker`` (dockerd + CLI), ``buildah``, ``podman``, ``skopeo``,
    ``containerd`` (daemon + ``ctr``).
    """
    problem = engines.engine_problem(name)
    if problem:
        missing(problem)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` fixture folder (skips when absent)."""
    return require_shared_data()


@pytest.fixture(scope="session")
def engine_session() -> Iterator[engines.EngineSession]:
    """One :class:`engines.EngineSession` (one private dockerd at most) for the whole run."""
    session = engines.EngineSession()
    try:
        yield session
    finally:
        session.close()
        if session.timings:
            timings = {k: round(v, 1) for k, v in session.timings.items()}
            print("\nengine build timings (s):", timings)


EngineImages = Callable[..., dict[str, Path]]


@pytest.fixture(scope="session")
def engine_guard() -> Callable[..., Any]:
    """``engine_guard(fn, *args)``: call ``fn``; a missing engine skips (fails if REQUIRE_ALL)."""

    def guard(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except engines.EngineUnavailable as exc:
            missing(str(exc))

    return guard


@pytest.fixture(scope="session")
def engine_image(engine_session: engines.EngineSession) -> EngineImages:
    """``engine_image(case, builder, encodings=ENCODINGS) -> {encoding: path}``.

    Builds (or takes from the cache) ``case`` with ``builder``; skips / fails per the policy
    when an engine is missing. A failing engine command is an error in any mode.
    """
    failures: dict[tuple[str, str], str] = {}

    def get(
        case: engines.BuildCase, builder: str, encodings: Sequence[str] = engines.ENCODINGS
    ) -> dict[str, Path]:
        key = (case.fingerprint(), builder)
        if key in failures:  # don't retry a missing engine for every parametrised test
            missing(failures[key])
        try:
            return engine_session.image(case, builder, encodings)
        except engines.EngineUnavailable as exc:
            failures[key] = f"cannot build {case.name!r} with {builder}: {exc}"
            missing(failures[key])

    return get


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example images of ``data/make_examples.py``, built fresh into a temp folder."""
    from _examples import build_examples

    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture()
def classic(examples: dict[str, Path]) -> Any:
    """``classic-secret``: a secret written in one layer and deleted in the next."""
    import layerforensics as lf

    return lf.open_image(examples["classic-secret"])


@pytest.fixture()
def demo(examples: dict[str, Path]) -> Any:
    """``layers-demo``: overwrite, opaque directory, hardlink, symlink, copy-up, whiteout."""
    import layerforensics as lf

    return lf.open_image(examples["layers-demo"])


#: Values a damaged or hand-made JSON document may hold where another type belongs.
ODD_JSON: list[Any] = [
    None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True, "sha256:zz", "../../etc/passwd",
]  # fmt: skip


def damage_json(doc: Any, rng: random.Random) -> Any:
    """Replace one value anywhere in ``doc`` by a value of another JSON type (or, in an object,
    remove it); returns the document (a new one when ``doc`` itself is replaced)."""
    slots: list[tuple[Any, Any]] = []

    def collect(value: Any) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            slots.append((value, key))
            if isinstance(child, dict | list):
                collect(child)

    if isinstance(doc, dict | list):
        collect(doc)
    if not slots:
        return rng.choice(ODD_JSON)
    container, key = rng.choice(slots)
    if isinstance(container, dict) and rng.random() < 0.3:
        del container[key]
    else:
        container[key] = rng.choice(ODD_JSON)
    return doc


_ESTARGZ = {"/stargz.index.json", "/.prefetch.landmark", "/.no.prefetch.landmark"}


def tarfile_reference(img: Any) -> dict[str, tuple[str, object]]:
    """The merged filesystem by an independent, simple application of the OCI layer rules to
    each layer as Python's :mod:`tarfile` reads it: ``path -> (type, size or link target)``."""
    from layerforensics._blobs import open_decompressed

    state: dict[str, tuple[str, object]] = {}

    def drop(path: str, itself: bool) -> None:
        prefix = path.rstrip("/") + "/"
        for p in [p for p in state if p.startswith(prefix)]:
            del state[p]
        if itself:
            state.pop(path, None)

    for n in range(img.layer_count):
        with img._container.open(img._record.layers[n].member) as raw:
            data = b"".join(open_decompressed(raw, "reference"))
        if not data:
            continue  # a pre-1.10 empty layer
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            members = [(posixpath.normpath("/" + m.name), m) for m in t]
        for name, _m in members:  # opaque markers, then whiteouts, act on lower layers
            if posixpath.basename(name) == ".wh..wh..opq":
                drop(posixpath.dirname(name), itself=False)
        for name, _m in members:
            base = posixpath.basename(name)
            if base.startswith(".wh.") and not base.startswith(".wh..wh."):
                drop(posixpath.join(posixpath.dirname(name), base[4:]), itself=True)
        for name, m in members:
            if posixpath.basename(name).startswith(".wh.") or name in _ESTARGZ or name == "/":
                continue
            if m.isdir():
                kind, detail = "dir", None
            elif m.issym():
                kind, detail = "symlink", m.linkname
            elif m.islnk():
                kind, detail = "hardlink", None
            elif m.isfile():
                kind, detail = "file", m.size
            else:
                kind, detail = "other", None
            if state.get(name, ("",))[0] == "dir" and kind != "dir":
                drop(name, itself=False)
            state[name] = (kind, detail)
    return state


def merged_view(img: Any) -> dict[str, tuple[str, object]]:
    """``img.filesystem()`` in the shape of :func:`tarfile_reference`."""
    out: dict[str, tuple[str, object]] = {}
    for row in img.filesystem().itertuples():
        kind = str(row.type)
        if kind not in ("dir", "symlink", "hardlink", "file"):
            kind = "other"
        detail = row.linkname if kind == "symlink" else row.size if kind == "file" else None
        out[row.path] = (kind, detail)
    return out


def tree_digest(root: Path) -> str:
    """Content + metadata of every node below ``root`` (links not followed)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = Path(dirpath) / name
            st = os.lstat(p)
            h.update(str(p.relative_to(root)).encode())
            h.update(
                f"{st.st_mode} {st.st_uid} {st.st_gid} {st.st_size} {st.st_mtime_ns} "
                f"{st.st_rdev}".encode()
            )
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(hashlib.sha256(p.read_bytes()).digest())
            try:
                for x in sorted(os.listxattr(p, follow_symlinks=False)):
                    h.update(x.encode() + os.getxattr(p, x, follow_symlinks=False))
            except OSError:
                pass
    return h.hexdigest()
