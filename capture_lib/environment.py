"""What a workflow run records, without being asked, about where and how it ran.

:func:`collect` returns a *flat* dict of scalar values (str, int, float, bool or None): the
``env`` field of a record on the wire is an object of scalars, so lists (packages, GPUs,
nodes) are joined into strings. A key is left out when its value is unknown or does not
apply (no git, not in a container, not in a batch job, ...).

>>> env = collect(argv=["train.py", "--epochs", "3"], environ={})
>>> env["argv"]
'train.py --epochs 3'
>>> "run_key" in env
False

Every probe is defensive: an exception is logged at debug level and the probe's keys are
left out; :func:`collect` itself never raises. What cannot change within a process (the
installed packages, the git state of a directory, the container, the GPUs) is computed
once and cached; :func:`clear_cache` forgets it (for tests).

Environment variables are never recorded unless named in ``allow_env``; a name that looks
like a secret is recorded only when named exactly, never through a pattern. Values of
command-line options that look like secrets (``--password x``, ``--api-key=x``) and
credentials in URLs are replaced by ``***`` in ``argv``.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import logging
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Scalar", "clear_cache", "collect", "run_key"]

log = logging.getLogger(__name__)

Scalar = str | int | float | bool | None

GIT_TIMEOUT = 2.0
"""Seconds for all git calls of one directory together."""
GPU_TIMEOUT = 3.0
"""Seconds for ``nvidia-smi``: it can take a second or two to start without persistence mode."""
MAX_FILE_BYTES = 1 << 20
"""At most this much is read of any /proc or node file."""

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
REDACTED = "***"

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

_MPI_VARS: tuple[tuple[str, str | None], ...] = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
    ("PMI_RANK", "PMI_SIZE"),  # MPICH, Intel MPI
    ("PMIX_RANK", None),  # PMIx (Open MPI 5, srun --mpi=pmix)
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),  # MVAPICH
    ("SLURM_PROCID", "SLURM_NTASKS"),  # srun without an MPI launcher
)

_cache: dict[tuple[str, Any], Any] = {}


def clear_cache() -> None:
    """Forget the cached packages, git states, container and GPUs."""
    _cache.clear()


def _cached(kind: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per ``(kind, key)`` in this process (exceptions are not cached)."""
    try:
        return _cache[(kind, key)]
    except KeyError:
        pass
    value = compute()
    _cache[(kind, key)] = value
    return value


def collect(
    allow_env: Iterable[str] = (),
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    script: str | None = None,
) -> dict[str, Scalar]:
    """Describe where and how this process runs, as a flat dict of scalars.

    :param allow_env: names of environment variables to record as ``env.<NAME>``; shell-style
        patterns (``"CUDA_*"``) are allowed, but a pattern never matches a name that looks
        like a secret (contains TOKEN, SECRET, PASSWORD, PASSWD, KEY, CREDENTIAL or AUTH).
    :param argv: the command line (default ``sys.argv``).
    :param environ: the environment variables (default ``os.environ``).
    :param script: the running script, whose git repository is described (default
        ``sys.argv[0]``; the current directory when there is no script, as with ``-c``).
    :returns: keys ``hostname``, ``pid``, ``python``, ``platform``, ``os``, ``cpu_count``,
        ``argv``, ``executable``, ``git_*``, ``packages``, ``packages_sha256``, ``gpus``,
        ``container``, ``container_id``, ``batch_system``, ``job_*``, ``cluster``,
        ``run_key``, ``mpi_rank``, ``mpi_size``, ``env.<NAME>`` and ``collected_ms``, each
        only when known. Never raises.
    """
    start = time.perf_counter()
    out: dict[str, Scalar] = {}
    try:
        env: Mapping[str, str] = os.environ if environ is None else environ
        args = sys.argv if argv is None else argv
        _probe(out, "host", _host)
        _probe(out, "argv", lambda: {"argv": _argv(args)})
        _probe(out, "executable", lambda: {"executable": sys.executable or None})
        _probe(out, "git", lambda: _git(_git_dirs(script, args)))
        _probe(out, "packages", _packages)
        _probe(out, "gpus", _gpus)
        _probe(out, "container", lambda: _container(env))
        _probe(out, "batch", lambda: _batch(env))
        _probe(out, "mpi", lambda: _mpi(env))
        _probe(out, "allow_env", lambda: _allowed_env(env, allow_env))
        out = {k: v for k, v in out.items() if _is_scalar(v)}
    except Exception:
        log.debug("provml: collecting the environment failed", exc_info=True)
    out["collected_ms"] = round((time.perf_counter() - start) * 1000, 3)
    return out


def run_key(environ: Mapping[str, str] | None = None) -> str | None:
    """A key that is the same on every rank and node of one batch job, and differs between jobs.

    ``slurm:<cluster>:<job id>[:<array task>]``, ``pbs:<job id>[:<array index>]`` or
    ``lsf:<job id>[:<array index>]``; None outside a batch job. Never raises.
    """
    try:
        env = os.environ if environ is None else environ
        return _job(env)[1]
    except Exception:
        log.debug("provml: cannot compute the run key", exc_info=True)
        return None


def _probe(out: dict[str, Scalar], name: str, fn: Callable[[], Mapping[str, Scalar]]) -> None:
    """Add the keys ``fn()`` returns, skipping None values; an exception only omits them."""
    try:
        for key, value in fn().items():
            if value is not None:
                out[key] = value
    except Exception:
        log.debug("provml: environment probe %r failed", name, exc_info=True)


def _is_scalar(v: object) -> bool:
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    return v is None or isinstance(v, (str, int, bool))


def _host() -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for key, fn in (
        ("hostname", socket.gethostname),
        ("pid", os.getpid),
        ("python", platform.python_version),
        ("platform", platform.platform),
        ("os", platform.system),
        ("cpu_count", os.cpu_count),
    ):
        try:
            out[key] = fn() or None
        except Exception:
            log.debug("provml: cannot get %s", key, exc_info=True)
    return out


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


# ---------------------------------------------------------------------------------------------
# command line


def _argv(args: Iterable[str]) -> str:
    """The command line, shell-quoted; secret-looking option values and URL credentials hidden."""
    words = [str(a) for a in args]
    hide_next = False
    for i, word in enumerate(words):
        if hide_next:
            hide_next = False
            if not word.startswith("-"):
                words[i] = REDACTED
                continue
        flag, eq, _ = word.partition("=")
        if _secret_flag(flag):
            if eq:
                words[i] = f"{flag}={REDACTED}"
            else:
                hide_next = True  # --password VALUE
            continue
        if "://" in word and "@" in word:
            words[i] = _strip_credentials(word, mask=REDACTED)
    return shlex.join(words)


def _secret_flag(word: str) -> bool:
    """An option (``-p``-style options are not judged) whose name looks like a secret."""
    if not word.startswith("--") or word.startswith("--no-"):
        return False
    return _looks_secret(word[2:].replace("-", "_"))


# ---------------------------------------------------------------------------------------------
# git


def _git_dirs(script: str | None, args: list[str]) -> list[str]:
    """Where to look for the repository, in order.

    An explicit ``script``: its directory only. Otherwise the directory of ``sys.argv[0]``
    and then the current directory, which is the only candidate when there is no script
    file (``python -c``, an interactive interpreter) and which is the useful answer when
    the script lives outside any repository (a notebook kernel or a console script
    started from a checkout).
    """
    candidate = script if script is not None else (args[0] if args else "")
    dirs: list[str] = []
    if candidate and candidate not in ("-c", "-m", "-"):
        path = Path(candidate).expanduser()
        if path.is_dir():
            dirs.append(str(path.resolve()))
        elif path.is_file() or script is not None:
            dirs.append(str(path.resolve().parent))
    if script is None or not dirs:
        cwd = os.getcwd()
        if cwd not in dirs:
            dirs.append(cwd)
    return dirs


def _git(dirs: list[str]) -> dict[str, Scalar]:
    """The git state of the first of ``dirs`` that is in a repository."""
    for directory in dirs:
        found = _cached("git", directory, functools.partial(_git_uncached, directory))
        if found is not None:
            return dict(found)
    return {}


def _git_uncached(directory: str) -> dict[str, Scalar] | None:
    """Commit, branch, dirty and origin of the repository holding ``directory``.

    None when ``directory`` is in no repository (or git is missing); what could be learnt
    when git fails or is too slow.

    Only tracked files decide ``git_dirty`` (build outputs and data files are often
    untracked). Git is asked not to take optional locks, so a running ``git`` in the same
    repository is not disturbed; all calls together get :data:`GIT_TIMEOUT` seconds.
    """
    if shutil.which("git") is None:
        return None
    deadline = time.monotonic() + GIT_TIMEOUT
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired(["git", *args], GIT_TIMEOUT)
        return subprocess.run(
            ["git", "-C", directory, *args],
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=remaining,
            check=False,
        )

    out: dict[str, Scalar] = {}
    try:
        head = git("symbolic-ref", "-q", "--short", "HEAD")
        if head.returncode not in (0, 1):  # 1: detached HEAD; anything else: not a repository
            return None
        if head.returncode == 0 and head.stdout.strip():
            out["git_branch"] = head.stdout.strip()
        commit = git("rev-parse", "-q", "--verify", "HEAD^{commit}")
        if commit.returncode == 0 and commit.stdout.strip():
            out["git_commit"] = commit.stdout.strip()
        remote = git("config", "--get", "remote.origin.url")
        if remote.returncode == 0 and remote.stdout.strip():
            out["git_remote"] = _strip_credentials(remote.stdout.strip())
        status = git("status", "--porcelain", "--untracked-files=no")
        if status.returncode == 0:
            out["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        log.debug("provml: git in %s failed or timed out", directory, exc_info=True)
    return out


# Variables that would make git describe some other repository than the one asked about.
_GIT_REDIRECTS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"})


def _strip_credentials(url: str, mask: str | None = None) -> str:
    """``url`` without a ``user:password@`` (or a bare ``token@``) in a URL with a scheme.

    With ``mask``, the credentials are replaced by ``mask@`` rather than dropped. A user name
    alone is kept for ssh (``ssh://git@host/repo``), where it is not a secret; scp-like
    addresses (``git@host:repo``) hold no password and are returned unchanged.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    netloc = host if mask is None else f"{mask}@{host}"
    if not has_password and user and parts.scheme.lower() in ("ssh", "git+ssh", "ssh+git"):
        netloc = f"{user}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------------------------------------
# packages


def _packages() -> dict[str, Scalar]:
    text = _cached("packages", tuple(sys.path), _packages_uncached)
    if not text:
        return {}
    return {"packages": text, "packages_sha256": hashlib.sha256(text.encode()).hexdigest()}


def _packages_uncached() -> str:
    """``name==version`` per line, sorted case-insensitively.

    When one name is installed more than once on ``sys.path``, the first one (the one
    ``import`` and ``importlib.metadata.version`` use) is kept.
    """
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:
            log.debug("provml: unreadable distribution metadata", exc_info=True)
            continue
        if not name or not version:
            continue
        key = re.sub(r"[-_.]+", "-", str(name)).lower()
        seen.setdefault(key, f"{str(name).strip()}=={str(version).strip()}")
    return "\n".join(sorted(seen.values(), key=lambda line: (line.casefold(), line)))


# ---------------------------------------------------------------------------------------------
# GPUs


def _gpus() -> dict[str, Scalar]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    text = _cached("gpus", smi, lambda: _gpus_uncached(smi))
    return {"gpus": text} if text else {}


def _gpus_uncached(smi: str) -> str | None:
    """One ``name, memory, driver`` line per GPU, or None when nvidia-smi fails."""
    try:
        done = subprocess.run(
            [
                smi,
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=GPU_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        log.debug("provml: nvidia-smi failed or timed out", exc_info=True)
        return None
    if done.returncode != 0:
        log.debug("provml: nvidia-smi exited with %s", done.returncode)
        return None
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return "\n".join(lines) or None


# ---------------------------------------------------------------------------------------------
# containers


def _container(environ: Mapping[str, str]) -> dict[str, Scalar]:
    runtime_hint, container_id = _cached("container", None, _container_files)
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


def _container_files() -> tuple[str | None, str | None]:
    """(runtime, id) from the marker files and /proc; (None, None) on bare metal."""
    runtime: str | None = None
    if _exists(CONTAINERENV):
        runtime = "podman"
    elif _exists(DOCKERENV):
        runtime = "docker"
    found = _container_from_cgroup(_read(PROC_CGROUP))
    if found is None:
        found = _container_from_mountinfo(_read(PROC_MOUNTINFO))
    if found is None:
        return runtime, None
    return runtime or found[0], found[1]


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return f.read(MAX_FILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _container_from_cgroup(text: str) -> tuple[str, str] | None:
    """(runtime, 64-hex id) from the contents of /proc/self/cgroup (cgroup v1 or v2)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        match = _CGROUP_ID.search(path)
        if match:
            return _CGROUP_RUNTIME[match["runtime"]], match["id"]
    return None


def _container_from_mountinfo(text: str) -> tuple[str, str] | None:
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


# ---------------------------------------------------------------------------------------------
# batch systems and MPI


def _get(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` set to a non-blank value, stripped."""
    for name in names:
        value = environ.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def _job(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(batch system, run key) from the environment alone; (None, None) outside a job."""
    job_id = _get(environ, "SLURM_JOB_ID", "SLURM_JOBID")
    if job_id:
        cluster = _get(environ, "SLURM_CLUSTER_NAME") or ""
        task = _get(environ, "SLURM_ARRAY_TASK_ID")
        return "slurm", f"slurm:{cluster}:{job_id}" + (f":{task}" if task else "")
    job_id = _get(environ, "PBS_JOBID")
    if job_id:
        index = _get(environ, "PBS_ARRAY_INDEX", "PBS_ARRAYID")
        # PBS Pro and Torque put the index in the id of a subjob (1234[5].server); add it
        # when they do not.
        suffix = f":{index}" if index and f"[{index}]" not in job_id else ""
        return "pbs", f"pbs:{job_id}{suffix}"
    job_id = _get(environ, "LSB_JOBID")
    if job_id:
        # The elements of an LSF job array share LSB_JOBID; LSB_JOBINDEX (0 outside an
        # array) tells them apart.
        index = _get(environ, "LSB_JOBINDEX")
        suffix = f":{index}" if index and index != "0" else ""
        return "lsf", f"lsf:{job_id}{suffix}"
    return None, None


def _batch(environ: Mapping[str, str]) -> dict[str, Scalar]:
    system, key = _job(environ)
    out: dict[str, Scalar] = {"batch_system": system, "run_key": key}
    if system == "slurm":
        out.update(
            job_id=_get(environ, "SLURM_JOB_ID", "SLURM_JOBID"),
            job_step=_get(environ, "SLURM_STEP_ID", "SLURM_STEPID"),
            job_nodes=_get(environ, "SLURM_JOB_NODELIST", "SLURM_NODELIST"),
            job_array_id=_get(environ, "SLURM_ARRAY_JOB_ID"),
            job_array_task=_get(environ, "SLURM_ARRAY_TASK_ID"),
            cluster=_get(environ, "SLURM_CLUSTER_NAME"),
        )
    elif system == "pbs":
        nodefile = _get(environ, "PBS_NODEFILE")
        out.update(
            job_id=_get(environ, "PBS_JOBID"),
            job_nodes=_nodes(_read(Path(nodefile)).split()) if nodefile else None,
            job_array_id=_get(environ, "PBS_ARRAY_ID"),
            job_array_task=_get(environ, "PBS_ARRAY_INDEX", "PBS_ARRAYID"),
        )
    elif system == "lsf":
        hosts = _get(environ, "LSB_HOSTS")
        if hosts is None:
            # Too many hosts for LSB_HOSTS: LSB_MCPU_HOSTS is "host1 n1 host2 n2 ...".
            hosts = " ".join((_get(environ, "LSB_MCPU_HOSTS") or "").split()[::2])
        index = _get(environ, "LSB_JOBINDEX")
        out.update(
            job_id=_get(environ, "LSB_JOBID"),
            job_nodes=_nodes(hosts.split()),
            job_array_task=index if index and index != "0" else None,
        )
    return out


def _nodes(names: Iterable[str]) -> str | None:
    """Host names without repeats (node files list a host once per slot), comma-joined."""
    unique = dict.fromkeys(n.strip() for n in names if n.strip())
    return ",".join(unique) or None


def _mpi(environ: Mapping[str, str]) -> dict[str, Scalar]:
    """``mpi_rank`` and ``mpi_size`` from the first MPI launcher that set them."""
    rank: int | None = None
    size: int | None = None
    for rank_var, size_var in _MPI_VARS:
        rank = _int(_get(environ, rank_var))
        if rank is not None:
            size = _int(_get(environ, size_var)) if size_var else None
            break
    if rank is not None and size is None:
        for _, size_var in _MPI_VARS:
            size = _int(_get(environ, size_var)) if size_var else None
            if size is not None:
                break
    return {"mpi_rank": rank, "mpi_size": size}


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# allowed environment variables


def _allowed_env(environ: Mapping[str, str], allow_env: Iterable[str]) -> dict[str, Scalar]:
    """``env.<NAME>`` for the variables ``allow_env`` names (see :func:`collect`)."""
    if isinstance(allow_env, str):  # one name, not its characters
        allow_env = [allow_env]
    exact: set[str] = set()
    patterns: list[str] = []
    for entry in allow_env:
        if not isinstance(entry, str) or not entry:
            continue
        if any(c in entry for c in "*?["):
            patterns.append(entry)
        else:
            exact.add(entry)
    out: dict[str, Scalar] = {}
    for name in sorted(environ):
        if name in exact:
            out[f"env.{name}"] = str(environ[name])
        elif any(fnmatch.fnmatchcase(name, p) for p in patterns):
            if _looks_secret(name):
                log.debug("provml: not recording %s: it looks like a secret", name)
                continue
            out[f"env.{name}"] = str(environ[name])
    return out
