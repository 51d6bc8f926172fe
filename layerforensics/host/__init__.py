"""Offline, read-only forensics of a container host's runtime storage.

>>> host = open_host("/mnt/evidence/var/lib/docker")   # or a tar of it
>>> host.images, host.containers                        # what was there
>>> host.container("web").changes                       # what a container changed
>>> host.timeline()                                     # when
>>> host.verify()                                       # image layers tampered with on disk?

Docker's classic store (overlay2, overlay, aufs, vfs; pre-1.10 ``graph/`` too) and
containers/storage (podman, buildah, CRI-O; podman's container states from its
``libpod/bolt_state.db``) and containerd's ``/var/lib/containerd`` (Kubernetes nodes; the
overlayfs snapshotter) are recognised. Nothing is written under the evidence and no symbolic
link inside it is followed.
"""

from __future__ import annotations

from ._host import Host, HostContainer, open_host

__all__ = ["Host", "HostContainer", "open_host"]
