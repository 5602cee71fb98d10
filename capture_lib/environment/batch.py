"""Batch jobs (Slurm, PBS, LSF) and MPI ranks, from the environment the launcher sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from capture_lib.environment.core import Scalar, read_text

_MPI_VARS: tuple[tuple[str, str | None], ...] = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
    ("PMI_RANK", "PMI_SIZE"),  # MPICH, Intel MPI
    ("PMIX_RANK", None),  # PMIx (Open MPI 5, srun --mpi=pmix)
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),  # MVAPICH
    ("SLURM_PROCID", "SLURM_NTASKS"),  # srun without an MPI launcher
)


def _get(environ: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` set to a non-blank value, stripped."""
    for name in names:
        value = environ.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def job(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
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


def batch(environ: Mapping[str, str]) -> dict[str, Scalar]:
    system, key = job(environ)
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
            job_nodes=_nodes(read_text(Path(nodefile)).split()) if nodefile else None,
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


def mpi(environ: Mapping[str, str]) -> dict[str, Scalar]:
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
