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

One module per concern: :mod:`.git`, :mod:`.container`, :mod:`.batch` (batch jobs and
MPI), :mod:`.packages`, :mod:`.gpu`; :mod:`.core` holds what they share (the cache, the
host, and the masking of secrets in the command line, URLs and variable names).

Environment variables are never recorded unless named in ``allow_env``; a name that looks
like a secret is recorded only when named exactly, never through a pattern. Values of
command-line options that look like secrets (``--password x``, ``--api-key=x``) and
credentials in URLs are replaced by ``***`` in ``argv``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping

from capture_lib.environment import batch, container, core, git, gpu, packages
from capture_lib.environment.core import REDACTED, Scalar, clear_cache, strip_credentials

__all__ = ["REDACTED", "Scalar", "clear_cache", "collect", "run_key", "strip_credentials"]

log = logging.getLogger(__name__)


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
        _probe(out, "host", core.host)
        _probe(out, "argv", lambda: {"argv": core.command_line(args)})
        _probe(out, "executable", lambda: {"executable": sys.executable or None})
        _probe(out, "git", lambda: git.git_state(git.git_dirs(script, args)))
        _probe(out, "packages", packages.packages)
        _probe(out, "gpus", gpu.gpus)
        _probe(out, "container", lambda: container.container(env))
        _probe(out, "batch", lambda: batch.batch(env))
        _probe(out, "mpi", lambda: batch.mpi(env))
        _probe(out, "allow_env", lambda: core.allowed_env(env, allow_env))
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
        return batch.job(env)[1]
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
