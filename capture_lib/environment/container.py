"""The container this process runs in: runtime and id, from marker files, /proc and the
environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from capture_lib.environment.core import Scalar, cached, exists, read_text

# Files probed for a container (module attributes so that tests can point them elsewhere).
PROC_CGROUP = Path("/proc/self/cgroup")
PROC_MOUNTINFO = Path("/proc/self/mountinfo")
DOCKERENV = Path("/.dockerenv")
CONTAINERENV = Path("/run/.containerenv")

_HEX64 = r"[0-9a-f]{64}"
# docker: /docker/<id>, /system.slice/docker-<id>.scope; containerd: cri-containerd-<id>;
# CRI-O: crio-<id>; podman: libpod-<id>[.scope/container]; kubernetes: /kubepods/.../<id>.
_CGROUP_ID = re.compile(
    rf"(?:^|[/-])(?P<runtime>docker|cri-containerd|containerd|crio|libpod|kubepods)"
    rf"(?:[^\n]*?[/-])?(?P<id>{_HEX64})(?:\.scope)?(?:/container)?\s*$"
)
_CGROUP_RUNTIME = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
    "kubepods": "kubernetes",
}
# The files a runtime bind-mounts into a container name the container in their source path.
_MOUNT_ID = (
    (re.compile(rf"/docker/containers/(?P<id>{_HEX64})/"), "docker"),
    (re.compile(rf"/overlay-containers/(?P<id>{_HEX64})/"), "podman"),
)
_MOUNT_TARGETS = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"})


def container(environ: Mapping[str, str]) -> dict[str, Scalar]:
    runtime_hint, container_id = cached("container", None, container_files)
    runtime: str | None = None
    if environ.get("KUBERNETES_SERVICE_HOST"):
        runtime = "kubernetes"
    elif environ.get("APPTAINER_CONTAINER"):
        runtime = "apptainer"
    elif environ.get("SINGULARITY_CONTAINER"):
        runtime = "singularity"
    else:
        runtime = runtime_hint
    return {"container": runtime, "container_id": container_id}


def container_files() -> tuple[str | None, str | None]:
    """(runtime, id) from the marker files and /proc; (None, None) on bare metal."""
    runtime: str | None = None
    if exists(CONTAINERENV):
        runtime = "podman"
    elif exists(DOCKERENV):
        runtime = "docker"
    found = container_from_cgroup(read_text(PROC_CGROUP))
    if found is None:
        found = container_from_mountinfo(read_text(PROC_MOUNTINFO))
    if found is None:
        return runtime, None
    return runtime or found[0], found[1]


def container_from_cgroup(text: str) -> tuple[str, str] | None:
    """(runtime, 64-hex id) from the contents of /proc/self/cgroup (cgroup v1 or v2)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        match = _CGROUP_ID.search(path)
        if match:
            return _CGROUP_RUNTIME[match["runtime"]], match["id"]
    return None


def container_from_mountinfo(text: str) -> tuple[str, str] | None:
    """(runtime, id) from /proc/self/mountinfo: the source of /etc/hostname and the like.

    Only the files a runtime mounts into a container count: on a docker host, the host's
    own mounts also name containers (``/var/lib/docker/containers/<id>/mounts/shm``).
    """
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[4] not in _MOUNT_TARGETS:
            continue
        for pattern, runtime in _MOUNT_ID:
            match = pattern.search(fields[3])
            if match:
                return runtime, match["id"]
    return None
