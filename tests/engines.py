"""Drive real container engines to build test images (imported by the tests, never collected).

One :class:`EngineSession` per pytest session builds each test Dockerfile with a real engine and
exports the result in every encoding the engines on this machine can write:

==========================  ==========================================================
encoding                    how it is made
==========================  ==========================================================
``docker-save``             ``docker save`` by a private dockerd 20.10 (legacy layout)
``podman-docker-archive``   ``podman save --format docker-archive``
``podman-oci-archive``      ``podman save --format oci-archive`` (gzip layers)
``skopeo-oci-gzip``         ``skopeo copy ... oci:DIR:REF`` (gzip layers)
``skopeo-oci-zstd``         ``... --dest-compress-format zstd``
``skopeo-oci-uncompressed`` ``... --dest-decompress --dest-oci-accept-uncompressed-layers``
``skopeo-oci-archive-zstd`` ``skopeo copy ... oci-archive:FILE:REF`` with zstd layers
==========================  ==========================================================

Builders: ``docker`` (dockerd's classic builder, ``DOCKER_BUILDKIT=0``) and ``buildah``
(``buildah bud --layers --isolation chroot``). Both start ``FROM localhost/lf-base:1``, a busybox
image committed by ``buildah from scratch`` (no registry is ever contacted).

Everything is cached under ``tests/.engine-cache/`` (or ``$LAYERFORENSICS_ENGINE_CACHE``), one
folder per (builder, Dockerfile, context, build args, list of encodings), so a rerun touches no
engine at all. All encodings of one build come from the *same* build, which is what lets the
tests demand identical frames across encodings. buildah/podman/skopeo use a private
``containers/storage`` root (vfs driver) under the cache; dockerd runs with its own data-root,
exec-root and socket in a temporary folder and is stopped by pid when the session closes.

Environment: ``LAYERFORENSICS_ENGINE_CACHE`` (cache folder),
``LAYERFORENSICS_DOCKER_STORAGE_DRIVER``
(default ``overlay2``; ``vfs`` only where overlayfs cannot nest - the docker expectations about
opaque directories assume overlay2).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BASE_APPLETS",
    "BASE_REF",
    "BUILDERS",
    "ENCODINGS",
    "BuildCase",
    "EngineError",
    "EngineSession",
    "EngineUnavailable",
    "cache_root",
    "engine_problem",
]

#: Bump when the way images are built or exported changes: invalidates every cached output.
RECIPE_VERSION = "3"

BASE_REF = "localhost/lf-base:1"
#: busybox applets linked in the base image's /bin (besides /bin/busybox itself).
BASE_APPLETS = ("sh", "ls", "cat", "echo", "rm", "mkdir", "cp", "mv", "touch", "chmod", "ln")

BUILDERS = ("docker", "buildah")
ENCODINGS = (
    "docker-save",
    "podman-docker-archive",
    "podman-oci-archive",
    "skopeo-oci-gzip",
    "skopeo-oci-zstd",
    "skopeo-oci-uncompressed",
    "skopeo-oci-archive-zstd",
)
#: Encodings written as a directory (OCI layout) rather than one tar file.
DIR_ENCODINGS = frozenset({"skopeo-oci-gzip", "skopeo-oci-zstd", "skopeo-oci-uncompressed"})

REPO_ROOT = Path(__file__).resolve().parent.parent
_CMD_TIMEOUT = 300


class EngineUnavailable(Exception):
    """An engine this build needs is not installed or cannot run here (test should skip)."""


class EngineError(RuntimeError):
    """An engine is installed but a command failed (a real error in the test setup)."""


@dataclass(frozen=True)
class BuildCase:
    """A Dockerfile plus its build context.

    Parameters
    ----------
    name
        Short lowercase name, used in image tags and cache folder names.
    dockerfile
        The Dockerfile text (``FROM localhost/lf-base:1`` ...).
    context
        Relative path -> bytes of every file in the build context besides the Dockerfile.
    build_args
        ``--build-arg`` values passed to both builders.
    """

    name: str
    dockerfile: str
    context: Mapping[str, bytes] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hex sha256 over the Dockerfile, the context files and the build args."""
        h = hashlib.sha256()
        h.update(self.dockerfile.encode())
        for rel in sorted(self.context):
            h.update(b"\0" + rel.encode() + b"\0")
            h.update(hashlib.sha256(self.context[rel]).digest())
        for key in sorted(self.build_args):
            h.update(f"\0arg {key}={self.build_args[key]}".encode())
        return h.hexdigest()


def cache_root() -> Path:
    """The folder cached engine outputs live in (``$LAYERFORENSICS_ENGINE_CACHE`` overrides)."""
    env = os.environ.get("LAYERFORENSICS_ENGINE_CACHE")
    return Path(env).resolve() if env else REPO_ROOT / "tests" / ".engine-cache"


def _docker_cli() -> str | None:
    """The docker CLI shipped next to dockerd (a newer CLI earlier on PATH may not match)."""
    dockerd = shutil.which("dockerd")
    if dockerd:
        for d in {Path(dockerd).parent, Path(os.path.realpath(dockerd)).parent}:
            for cand in (d / "docker", d.parent / "bin" / "docker"):
                if cand.is_file() and os.access(cand, os.X_OK):
                    return str(cand)
    return shutil.which("docker")


def engine_problem(name: str) -> str | None:
    """Why engine ``name`` (docker, buildah, podman, skopeo, containerd) cannot be used here,
    or None."""
    if name not in ("docker", "buildah", "podman", "skopeo", "containerd"):
        raise ValueError(f"unknown engine {name!r}")
    if name == "containerd" and shutil.which("ctr") is None:
        return "containerd's ctr not installed (apt-get install containerd)"
    if name == "docker":
        missing = [b for b in ("dockerd", "containerd", "runc") if shutil.which(b) is None]
        if _docker_cli() is None:
            missing.append("docker")
        if missing:
            return (
                f"docker engine not installed (missing {', '.join(missing)}; "
                "apt-get install docker.io)"
            )
    elif shutil.which(name) is None:
        return f"{name} not installed (apt-get install {name})"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return f"{name} tests need root (private storage, chroot isolation, dockerd)"
    if name in ("docker", "buildah") and not Path("/bin/busybox").is_file():
        return "/bin/busybox missing (apt-get install busybox-static) to build the base image"
    return None


def _run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = _CMD_TIMEOUT,
) -> str:
    """Run a command, return stdout; raise EngineError with its output on failure."""
    args = [str(c) for c in cmd]
    try:
        proc = subprocess.run(
            args,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"timed out after {timeout}s: {' '.join(args)}") from exc
    if proc.returncode != 0:
        raise EngineError(
            f"command failed ({proc.returncode}): {' '.join(args)}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


class _Dockerd:
    """One private dockerd (overlay2, no networking), stopped by pid."""

    def __init__(self) -> None:
        problem = engine_problem("docker")
        if problem:
            raise EngineUnavailable(problem)
        self.cli = _docker_cli() or "docker"
        # Short path: the unix socket path must stay under ~108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="lfd-"))
        self.sock = self.dir / "docker.sock"
        (self.dir / "daemon.json").write_text("{}\n")
        (self.dir / "cli").mkdir()
        self.env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_BUILDKIT": "0",
            "DOCKER_CONFIG": str(self.dir / "cli"),
            "DOCKER_CLI_HINTS": "false",
        }
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.pop("DOCKER_TLS_VERIFY", None)
        self.log = self.dir / "dockerd.log"
        cmd = [
            shutil.which("dockerd") or "dockerd",
            "--config-file",
            str(self.dir / "daemon.json"),
            "--storage-driver",
            # overlay2 as on real hosts; a CI box whose /tmp is itself overlayfs can say vfs.
            os.environ.get("LAYERFORENSICS_DOCKER_STORAGE_DRIVER", "overlay2"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--data-root",
            str(self.dir / "root"),
            "--exec-root",
            str(self.dir / "exec"),
            "--pidfile",
            str(self.dir / "dockerd.pid"),
            "--host",
            f"unix://{self.sock}",
            # If a system containerd is running, dockerd uses it: keep our objects apart.
            "--containerd-namespace",
            f"lftest{os.getpid()}",
            "--containerd-plugins-namespace",
            f"lftest{os.getpid()}p",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                code = self.proc.returncode
                raise EngineUnavailable(f"dockerd exited at start ({code}):\n{tail}")
            if self.sock.exists():
                probe = subprocess.run(
                    [self.cli, "version", "--format", "{{.Server.Version}}"],
                    env=self.env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=30,
                )
                if probe.returncode == 0:
                    self.version = probe.stdout.strip()
                    return
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise EngineUnavailable(f"dockerd not ready after {timeout}s:\n{tail}")

    def docker(self, *args: str | os.PathLike[str], cwd: Path | None = None) -> str:
        return _run([self.cli, *args], env=self.env, cwd=cwd)

    def stop(self) -> None:
        """SIGTERM dockerd (it stops its own containerd), SIGKILL stragglers, remove the dir."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # The containerd dockerd supervised (if any) records its pid in the exec-root.
        for pidfile in (self.dir / "exec").glob("**/containerd.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pidfile.read_text().strip())
                if _cmdline_mentions(pid, str(self.dir)):
                    os.kill(pid, signal.SIGKILL)
        # Any process still started from our folder (a shim of a build container) is ours.
        for pid in _pids_mentioning(str(self.dir)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _unmount_below(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def _cmdline_mentions(pid: int, text: str) -> bool:
    try:
        return text in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def _pids_mentioning(text: str) -> list[int]:
    own = os.getpid()
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != own and _cmdline_mentions(int(p.name), text):
            pids.append(int(p.name))
    return pids


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything dockerd left mounted under ``root`` (deepest first)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root) + "/"
    fields = [m.split() for m in mounts]
    targets = [f[1] for f in fields if len(f) > 1 and f[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


class EngineSession:
    """Builds and caches engine images for one test session; call :meth:`close` at the end.

    Parameters
    ----------
    cache
        Folder for cached outputs and the private containers/storage root.
    """

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache or cache_root()
        self.cache.mkdir(parents=True, exist_ok=True)
        self.storage_root = self.cache / "storage" / "root"
        self.storage_runroot = self.cache / "storage" / "run"
        self._dockerd: _Dockerd | None = None
        self._docker_loaded: set[str] = set()
        self._memo: dict[tuple[str, str], dict[str, Path]] = {}
        self.timings: dict[str, float] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="lf-engines-"))

    # -- environment ---------------------------------------------------------------------
    @property
    def _cs_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STORAGE_DRIVER"] = "vfs"
        env["BUILDAH_ISOLATION"] = "chroot"
        env["TMPDIR"] = str(self._tmp)
        env.pop("CONTAINERS_STORAGE_CONF", None)
        return env

    @property
    def _cs_flags(self) -> list[str]:
        return [
            "--root",
            str(self.storage_root),
            "--runroot",
            str(self.storage_runroot),
            "--storage-driver",
            "vfs",
        ]

    def _cs_ref(self, name: str) -> str:
        return f"containers-storage:[vfs@{self.storage_root}+{self.storage_runroot}]{name}"

    def _need(self, *engines: str) -> None:
        for name in engines:
            problem = engine_problem(name)
            if problem:
                raise EngineUnavailable(problem)

    def buildah(self, *args: str | os.PathLike[str], cwd: Path | None = None) -> str:
        self._need("buildah")
        return _run(["buildah", *self._cs_flags, *args], env=self._cs_env, cwd=cwd)

    def podman(self, *args: str | os.PathLike[str]) -> str:
        self._need("podman")
        flags = [*self._cs_flags, "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
        return _run(["podman", *flags, *args], env=self._cs_env)

    def skopeo(self, *args: str | os.PathLike[str]) -> str:
        self._need("skopeo")
        return _run(["skopeo", "--insecure-policy", *args], env=self._cs_env)

    @property
    def dockerd(self) -> _Dockerd:
        if self._dockerd is None:
            t0 = time.monotonic()
            self._dockerd = _Dockerd()
            self.timings["dockerd-start"] = time.monotonic() - t0
        return self._dockerd

    def versions(self) -> dict[str, str]:
        """Versions of the engines on PATH (for the report; no daemon needed)."""
        out = {}
        for name, cmd in {
            "dockerd": ["dockerd", "--version"],
            "docker-cli": [_docker_cli() or "docker", "--version"],
            "buildah": ["buildah", "--version"],
            "podman": ["podman", "--version"],
            "skopeo": ["skopeo", "--version"],
        }.items():
            try:
                out[name] = _run(cmd, timeout=30).strip()
            except (EngineError, OSError):
                out[name] = "unavailable"
        return out

    # -- base image ----------------------------------------------------------------------
    def _storage_has(self, ref: str) -> bool:
        try:
            self.buildah("inspect", "--type", "image", ref)
        except EngineError:
            return False
        return True

    def ensure_base_in_storage(self) -> None:
        """Commit ``localhost/lf-base:1`` (busybox from busybox-static) into the private storage."""
        if self._storage_has(BASE_REF):
            return
        t0 = time.monotonic()
        ctr = self.buildah("from", "--pull=never", "scratch").strip()
        try:
            mnt = Path(self.buildah("mount", ctr).strip())
            for d in ("bin", "etc", "tmp", "root"):
                (mnt / d).mkdir(mode=0o755, exist_ok=True)
            shutil.copy2("/bin/busybox", mnt / "bin" / "busybox")
            for applet in BASE_APPLETS:
                (mnt / "bin" / applet).symlink_to("busybox")
            self.buildah("umount", ctr)
            self.buildah("config", "--cmd", "/bin/sh", ctr)
            self.buildah("commit", "--rm", ctr, BASE_REF)
        except BaseException:
            with contextlib.suppress(EngineError):
                self.buildah("rm", ctr)
            raise
        self.timings["base-build"] = time.monotonic() - t0

    def _base_archive(self) -> Path:
        """The base image as a docker-archive (cached), for ``docker load``."""
        out = self.cache / f"base-{RECIPE_VERSION}.tar"
        if not out.exists():
            self.ensure_base_in_storage()
            tmp = self._tmp / "base.tar"
            tmp.unlink(missing_ok=True)
            self.skopeo("copy", "-q", self._cs_ref(BASE_REF), f"docker-archive:{tmp}:{BASE_REF}")
            shutil.move(tmp, out)
        return out

    def _ensure_base_in_docker(self) -> None:
        if BASE_REF not in self._docker_loaded:
            self.dockerd.docker("load", "-i", self._base_archive())
            self._docker_loaded.add(BASE_REF)

    # -- builds --------------------------------------------------------------------------
    def _key(self, case: BuildCase, builder: str, encodings: Sequence[str]) -> str:
        h = hashlib.sha256()
        driver = os.environ.get("LAYERFORENSICS_DOCKER_STORAGE_DRIVER", "overlay2")
        h.update(f"{RECIPE_VERSION}\0{builder}\0{driver}\0{','.join(encodings)}\0".encode())
        h.update(case.fingerprint().encode())
        return h.hexdigest()[:16]

    def _write_context(self, case: BuildCase) -> Path:
        ctx = Path(tempfile.mkdtemp(prefix=f"ctx-{case.name}-", dir=self._tmp))
        (ctx / "Dockerfile").write_text(case.dockerfile)
        for rel, data in case.context.items():
            p = ctx / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            p.chmod(0o644)
        return ctx

    def image(
        self, case: BuildCase, builder: str, encodings: Sequence[str] = ENCODINGS
    ) -> dict[str, Path]:
        """Build ``case`` with ``builder`` (docker|buildah); return encoding -> path.

        Raises
        ------
        EngineUnavailable
            An engine needed for a cache miss is missing (callers turn this into a skip).
        EngineError
            An engine command failed.
        """
        if builder not in BUILDERS:
            raise ValueError(f"unknown builder {builder!r}")
        encodings = tuple(encodings)
        memo_key = (case.fingerprint(), builder + "/" + ",".join(encodings))
        if memo_key in self._memo:
            return self._memo[memo_key]
        key = self._key(case, builder, encodings)
        out = self.cache / "images" / f"{case.name}-{builder}-{key}"
        paths = {e: out / (e if e in DIR_ENCODINGS else f"{e}.tar") for e in encodings}
        if not (out / ".complete").exists():
            t0 = time.monotonic()
            work = out.with_name(out.name + ".partial")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            self._build_and_export(case, builder, encodings, work)
            (work / ".complete").write_text(json.dumps({"case": case.name, "builder": builder}))
            shutil.rmtree(out, ignore_errors=True)
            work.rename(out)
            self.timings[f"{case.name}/{builder}"] = time.monotonic() - t0
        self._memo[memo_key] = paths
        return paths

    def _build_and_export(
        self, case: BuildCase, builder: str, encodings: Sequence[str], work: Path
    ) -> None:
        name = f"localhost/lf-{case.name}:{builder}"
        ctx = self._write_context(case)
        build_args = [a for k, v in case.build_args.items() for a in ("--build-arg", f"{k}={v}")]
        need_storage = any(e != "docker-save" and not e.startswith("skopeo") for e in encodings)
        if builder == "docker":
            # dockerd's classic builder; docker save is the hub for every other encoding.
            self._ensure_base_in_docker()
            self.dockerd.docker(
                "build",
                "--network",
                "none",
                "--no-cache",
                "--rm",
                *build_args,
                "-t",
                name,
                str(ctx),
            )
            hub = work / "docker-save.tar" if "docker-save" in encodings else self._tmp / "hub.tar"
            self.dockerd.docker("save", "-o", hub, name)
            hub.chmod(0o644)
            source = f"docker-archive:{hub}"
            if need_storage:
                self.skopeo("copy", "-q", source, self._cs_ref(name))
        else:
            self.ensure_base_in_storage()
            self.buildah(
                "bud",
                "--layers",
                "--isolation",
                "chroot",
                "--pull=never",
                *build_args,
                "-t",
                name,
                "-f",
                ctx / "Dockerfile",
                ctx,
            )
            source = self._cs_ref(name)
            if "docker-save" in encodings:
                tmp = self._tmp / f"{case.name}-to-docker.tar"
                tmp.unlink(missing_ok=True)
                self.skopeo("copy", "-q", source, f"docker-archive:{tmp}:{name}")
                self._ensure_base_in_docker()
                self.dockerd.docker("load", "-i", tmp)
                self.dockerd.docker("save", "-o", work / "docker-save.tar", name)
                (work / "docker-save.tar").chmod(0o644)
                tmp.unlink()
        ref = f"{case.name}-{builder}"
        for enc in encodings:
            dest = work / (enc if enc in DIR_ENCODINGS else f"{enc}.tar")
            if enc == "docker-save":
                continue
            if enc == "podman-docker-archive":
                self.podman("save", "--format", "docker-archive", "-o", dest, name)
            elif enc == "podman-oci-archive":
                self.podman("save", "--format", "oci-archive", "-o", dest, name)
            elif enc == "skopeo-oci-gzip":
                self.skopeo("copy", "-q", source, f"oci:{dest}:{ref}")
            elif enc == "skopeo-oci-zstd":
                self.skopeo(
                    "copy", "-q", "--dest-compress-format", "zstd", source, f"oci:{dest}:{ref}"
                )
            elif enc == "skopeo-oci-uncompressed":
                # --dest-decompress alone only affects the dir: transport; oci: needs the
                # second flag to keep layers uncompressed (their media type still says gzip).
                flags = ["--dest-decompress", "--dest-oci-accept-uncompressed-layers"]
                self.skopeo("copy", "-q", *flags, source, f"oci:{dest}:{ref}")
            elif enc == "skopeo-oci-archive-zstd":
                self.skopeo(
                    "copy",
                    "-q",
                    "--dest-compress-format",
                    "zstd",
                    source,
                    f"oci-archive:{dest}:{ref}",
                )
            else:
                raise ValueError(f"unknown encoding {enc!r}")
        shutil.rmtree(ctx, ignore_errors=True)

    def multi_save(self, cases: Sequence[BuildCase], tags: Sequence[str]) -> Path:
        """``docker save tag1 tag2 ... -o multi.tar`` of the docker builds of ``cases``."""
        h = hashlib.sha256(RECIPE_VERSION.encode())
        singles = []
        for case, tag in zip(cases, tags, strict=True):
            single = self.image(case, "docker")["docker-save"]
            singles.append((single, tag, f"localhost/lf-{case.name}:docker"))
            h.update(f"\0{tag}\0{single.parent.name}".encode())
        out = self.cache / "images" / f"multi-{h.hexdigest()[:16]}.tar"
        if not out.exists():
            t0 = time.monotonic()
            for single, tag, name in singles:
                self.dockerd.docker("load", "-i", single)
                self.dockerd.docker("tag", name, tag)
            tmp = self._tmp / "multi.tar"
            self.dockerd.docker("save", "-o", tmp, *tags)
            tmp.chmod(0o644)
            shutil.move(tmp, out)
            self.timings["multi"] = time.monotonic() - t0
        return out

    # -- teardown ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop dockerd (by pid) and remove temporary folders; safe to call twice."""
        if self._dockerd is not None:
            self._dockerd.stop()
            self._dockerd = None
        shutil.rmtree(self._tmp, ignore_errors=True)
