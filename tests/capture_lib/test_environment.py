"""capture_lib.environment: what a run records about where and how it ran."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from capture_lib import environment
from capture_lib.environment import batch, clear_cache, collect, container, core, run_key
from capture_lib.environment import git as git_probe

HEX64 = "0123456789abcdef" * 4
GIT_KEYS = {"git_commit", "git_branch", "git_dirty", "git_remote"}


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Hermetic git: no user or system configuration, no walking above the tmp directory.
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    clear_cache()
    yield
    clear_cache()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=x", "-c", "user.email=x@y", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('hi')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def only_scalars(env: Mapping[str, Any]) -> bool:
    return all(
        isinstance(k, str) and (v is None or isinstance(v, (str, int, float, bool)))
        for k, v in env.items()
    )


# ---------------------------------------------------------------------------------------------
# basics


def test_basic_keys_and_scalars() -> None:
    env = collect(argv=["train.py", "--lr", "0.1", "two words"], environ={})
    for key in ("hostname", "pid", "python", "platform", "os", "cpu_count", "argv", "executable"):
        assert key in env, key
    assert env["pid"] == os.getpid()
    assert env["argv"] == "train.py --lr 0.1 'two words'"
    assert isinstance(env["collected_ms"], float) and env["collected_ms"] >= 0
    assert only_scalars(env)
    json.dumps(env, allow_nan=False)  # the wire format is JSON


def test_default_argv_is_sys_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["prog", "a b"])
    assert collect(environ={})["argv"] == "prog 'a b'"


def test_argv_hides_secret_option_values_and_url_credentials() -> None:
    argv = [
        "run.py",
        "--api-key",
        "k123",
        "--password=hunter2",
        "--data",
        "https://user:pw@example.com/x.csv",
        "--no-auth",
        "input.csv",
        "--epochs",
        "3",
    ]
    line = collect(argv=argv, environ={})["argv"]
    assert isinstance(line, str)
    for secret in ("k123", "hunter2", "pw@"):
        assert secret not in line
    assert "input.csv" in line and "--epochs 3" in line
    assert "https://***@example.com/x.csv" in line


# ---------------------------------------------------------------------------------------------
# git


def test_git_commit_branch_and_dirty(repo: Path) -> None:
    script = str(repo / "train.py")
    env = collect(environ={}, script=script)
    assert env["git_commit"] == git(repo, "rev-parse", "HEAD")
    assert env["git_branch"] == "main"
    assert env["git_dirty"] is False
    assert "git_remote" not in env

    (repo / "train.py").write_text("print('changed')\n")
    assert collect(environ={}, script=script)["git_dirty"] is False  # cached for the process
    clear_cache()
    assert collect(environ={}, script=script)["git_dirty"] is True


def test_git_untracked_files_do_not_make_a_checkout_dirty(repo: Path) -> None:
    (repo / "output.bin").write_bytes(b"x")
    assert collect(environ={}, script=str(repo / "train.py"))["git_dirty"] is False


def test_git_from_argv0_and_from_the_cwd(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = git(repo, "rev-parse", "HEAD")
    assert collect(argv=[str(repo / "train.py")], environ={})["git_commit"] == commit
    monkeypatch.chdir(repo)
    assert collect(argv=["-c"], environ={})["git_commit"] == commit  # python -c
    assert collect(argv=[], environ={})["git_commit"] == commit


def test_git_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    env = collect(environ={}, script=str(repo))
    assert env["git_commit"] == git(repo, "rev-parse", "HEAD")
    assert "git_branch" not in env


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cret@example.com/org/repo.git", "https://example.com/org/repo.git"),
        ("https://ghp_t0ken@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("http://u:p@host:8080/r", "http://host:8080/r"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
        ("ssh://u:s3cret@host/repo", "ssh://host/repo"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_git_remote_credentials_are_stripped(repo: Path, url: str, expected: str) -> None:
    git(repo, "remote", "add", "origin", url)
    env = collect(environ={}, script=str(repo / "train.py"))
    assert env["git_remote"] == expected
    for value in env.values():
        assert "s3cret" not in str(value) and "t0ken" not in str(value)


def test_not_a_repository_gives_no_git_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "run.py").write_text("")
    monkeypatch.chdir(plain)
    assert not GIT_KEYS & collect(environ={}, script=str(plain / "run.py")).keys()
    assert not GIT_KEYS & collect(argv=["-c"], environ={}).keys()
    assert not GIT_KEYS & collect(environ={}, script=str(plain / "missing.py")).keys()


def test_explicit_script_outside_a_repo_does_not_fall_back_to_the_cwd(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere.py").write_text("")
    monkeypatch.chdir(repo)
    assert not GIT_KEYS & collect(environ={}, script=str(tmp_path / "elsewhere.py")).keys()
    # ...but a sys.argv[0] outside a repository (a console script, a notebook kernel) does.
    env = collect(argv=[str(tmp_path / "elsewhere.py")], environ={})
    assert env["git_commit"] == git(repo, "rev-parse", "HEAD")


def test_no_git_on_path(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    env = collect(environ={}, script=str(repo / "train.py"))
    assert not GIT_KEYS & env.keys()
    assert "pid" in env


def test_git_timeout_omits_the_keys(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout") or 0)

    monkeypatch.setattr(subprocess, "run", slow)
    env = collect(environ={}, script=str(repo / "train.py"))
    assert not GIT_KEYS & env.keys()


def test_git_is_asked_once_per_directory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(cmd: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(list(cmd))
        if cmd[0] == "git":
            assert kwargs["env"]["GIT_OPTIONAL_LOCKS"] == "0"
            assert 0 < kwargs["timeout"] <= git_probe.GIT_TIMEOUT
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting)
    first = collect(environ={}, script=str(repo / "train.py"))
    n = len([c for c in calls if c[0] == "git"])
    assert n > 0
    second = collect(environ={}, script=str(repo / "train.py"))
    assert len([c for c in calls if c[0] == "git"]) == n
    assert first["git_commit"] == second["git_commit"]


# ---------------------------------------------------------------------------------------------
# packages


def test_packages_lists_the_installed_distributions() -> None:
    env = collect(environ={})
    packages = env["packages"]
    assert isinstance(packages, str)
    lines = packages.splitlines()
    assert any(line.startswith("pyoxigraph==") for line in lines)
    assert any(line.startswith("rdflib==") for line in lines)
    assert f"pyoxigraph=={metadata.version('pyoxigraph')}" in lines
    assert lines == sorted(lines, key=lambda line: (line.casefold(), line))
    names = [line.split("==")[0].lower().replace("_", "-") for line in lines]
    assert len(names) == len(set(names))
    assert env["packages_sha256"] == hashlib.sha256(packages.encode()).hexdigest()


def test_packages_hash_is_stable() -> None:
    first = collect(environ={})["packages_sha256"]
    clear_cache()
    second = collect(environ={})["packages_sha256"]
    assert isinstance(first, str) and len(first) == 64
    assert first == second


# ---------------------------------------------------------------------------------------------
# GPUs


def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{body}\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(
        tmp_path,
        monkeypatch,
        'case "$*" in *--query-gpu=name,memory.total,driver_version*--format=csv,noheader*) ;;'
        " *) exit 3;; esac\n"
        "echo 'NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05'\n"
        "echo 'NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05'\n"
        "echo",
    )
    env = collect(environ={})
    assert env["gpus"] == "\n".join(["NVIDIA A100-SXM4-40GB, 40960 MiB, 535.104.05"] * 2)


def test_failing_nvidia_smi_gives_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert "gpus" not in collect(environ={})


def test_no_nvidia_smi_gives_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "gpus" not in collect(environ={})


# ---------------------------------------------------------------------------------------------
# containers


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"12:pids:/docker/{HEX64}\n1:cpu:/docker/{HEX64}", ("docker", HEX64)),
        (f"0::/system.slice/docker-{HEX64}.scope", ("docker", HEX64)),
        (f"11:memory:/kubepods/besteffort/pod1b2c-33/{HEX64}", ("kubernetes", HEX64)),
        (
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/"
            f"cri-containerd-{HEX64}.scope",
            ("kubernetes", HEX64),
        ),
        (f"0::/system.slice/cri-containerd-{HEX64}.scope", ("containerd", HEX64)),
        (f"0::/machine.slice/libpod-{HEX64}.scope/container", ("podman", HEX64)),
        (f"0::/system.slice/crio-{HEX64}.scope", ("cri-o", HEX64)),
        ("0::/", None),
        ("0::/user.slice/user-1000.slice/session-3.scope", None),
        ("4:memory:/process_api/2d7ad66a199274279ed4120d25b232e8", None),
        ("", None),
    ],
)
def test_container_from_cgroup(cgroup: str, expected: tuple[str, str] | None) -> None:
    assert container.container_from_cgroup(cgroup) == expected


def test_container_from_mountinfo() -> None:
    inside = (
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        f"870 850 254:1 /var/lib/docker/containers/{HEX64}/resolv.conf /etc/resolv.conf "
        "rw,relatime - ext4 /dev/vda1 rw\n"
    )
    assert container.container_from_mountinfo(inside) == ("docker", HEX64)
    podman = (
        "90 80 0:40 /home/u/.local/share/containers/storage/overlay-containers/"
        f"{HEX64}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n"
    )
    assert container.container_from_mountinfo(podman) == ("podman", HEX64)
    # A docker host's own mounts name containers too; they are not this process's container.
    host = f"600 30 0:55 / /var/lib/docker/containers/{HEX64}/mounts/shm rw,nosuid - tmpfs shm rw\n"
    assert container.container_from_mountinfo(host) is None


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the container probe at files in a tmp directory (all absent to begin with)."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(container, "PROC_CGROUP", root / "cgroup")
    monkeypatch.setattr(container, "PROC_MOUNTINFO", root / "mountinfo")
    monkeypatch.setattr(container, "DOCKERENV", root / ".dockerenv")
    monkeypatch.setattr(container, "CONTAINERENV", root / ".containerenv")
    return root


def test_bare_metal_has_no_container_keys(proc: Path) -> None:
    (proc / "cgroup").write_text("0::/user.slice/user-1000.slice/session-3.scope\n")
    env = collect(environ={})
    assert "container" not in env and "container_id" not in env


def test_docker_container(proc: Path) -> None:
    (proc / ".dockerenv").write_text("")
    (proc / "cgroup").write_text(f"12:pids:/docker/{HEX64}\n")
    env = collect(environ={})
    assert env["container"] == "docker"
    assert env["container_id"] == HEX64


def test_container_runtime_without_an_id(proc: Path) -> None:
    (proc / ".containerenv").write_text("")
    (proc / "cgroup").write_text("0::/\n")
    env = collect(environ={})
    assert env["container"] == "podman"
    assert "container_id" not in env


def test_kubernetes_and_apptainer_from_the_environment(proc: Path) -> None:
    assert collect(environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})["container"] == "kubernetes"
    env = collect(environ={"APPTAINER_CONTAINER": "/images/train.sif"})
    assert env["container"] == "apptainer"


# ---------------------------------------------------------------------------------------------
# batch systems and MPI


def slurm(job: str, procid: int, **extra: str) -> dict[str, str]:
    return {
        "SLURM_JOB_ID": job,
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_NODELIST": "gpu[001-002]",
        "SLURM_PROCID": str(procid),
        "SLURM_NTASKS": "8",
        "SLURM_CLUSTER_NAME": "alps",
        **extra,
    }


def test_slurm_job() -> None:
    env = collect(environ=slurm("4242", 3))
    assert env["batch_system"] == "slurm"
    assert env["job_id"] == "4242"
    assert env["job_step"] == "0"
    assert env["job_nodes"] == "gpu[001-002]"
    assert env["cluster"] == "alps"
    assert env["run_key"] == "slurm:alps:4242"
    assert env["mpi_rank"] == 3 and env["mpi_size"] == 8  # SLURM_PROCID / SLURM_NTASKS
    assert "job_array_id" not in env and "job_array_task" not in env


def test_slurm_run_key_joins_ranks_and_separates_jobs() -> None:
    rank0 = collect(environ=slurm("4242", 0))
    rank1 = collect(environ=slurm("4242", 1, SLURM_STEP_ID="1", SLURM_NODELIST="gpu002"))
    other = collect(environ=slurm("4243", 0))
    assert rank0["run_key"] == rank1["run_key"] == run_key(slurm("4242", 7))
    assert rank0["run_key"] != other["run_key"]
    assert run_key(slurm("4242", 0)) != run_key(slurm("4242", 0, SLURM_CLUSTER_NAME="daint"))


def test_slurm_array_tasks_are_different_runs() -> None:
    def task(job: str, i: str) -> dict[str, str]:
        return slurm(job, 0, SLURM_ARRAY_JOB_ID="100", SLURM_ARRAY_TASK_ID=i)

    env = collect(environ=task("101", "1"))
    assert env["job_array_id"] == "100"
    assert env["job_array_task"] == "1"
    assert env["run_key"] == "slurm:alps:101:1"
    assert run_key(task("101", "1")) != run_key(task("102", "2"))


def test_slurm_without_cluster_name_or_nodelist() -> None:
    env = collect(environ={"SLURM_JOB_ID": "7", "SLURM_NODELIST": "n1"})
    assert env["run_key"] == "slurm::7"
    assert env["job_nodes"] == "n1"
    assert "cluster" not in env


def test_pbs_job(tmp_path: Path) -> None:
    nodefile = tmp_path / "nodes"
    nodefile.write_text("node01\nnode01\nnode02\nnode01\nnode03\n")
    environ = {"PBS_JOBID": "1234.pbs01", "PBS_NODEFILE": str(nodefile)}
    env = collect(environ=environ)
    assert env["batch_system"] == "pbs"
    assert env["job_id"] == "1234.pbs01"
    assert env["job_nodes"] == "node01,node02,node03"
    assert env["run_key"] == "pbs:1234.pbs01" == run_key(environ)
    assert run_key({"PBS_JOBID": "1235.pbs01"}) != env["run_key"]


def test_pbs_array_and_missing_nodefile(tmp_path: Path) -> None:
    sub = {"PBS_JOBID": "77[3].pbs01", "PBS_ARRAY_INDEX": "3", "PBS_ARRAY_ID": "77[].pbs01"}
    env = collect(environ={**sub, "PBS_NODEFILE": str(tmp_path / "missing")})
    assert env["job_array_task"] == "3"
    assert env["job_array_id"] == "77[].pbs01"
    assert env["run_key"] == "pbs:77[3].pbs01"
    assert "job_nodes" not in env
    # Torque-style ids without the index still give each array element its own key.
    assert run_key({"PBS_JOBID": "77.tq", "PBS_ARRAYID": "1"}) != run_key(
        {"PBS_JOBID": "77.tq", "PBS_ARRAYID": "2"}
    )


def test_lsf_job() -> None:
    environ = {"LSB_JOBID": "555", "LSB_HOSTS": "hostA hostA hostB hostB"}
    env = collect(environ=environ)
    assert env["batch_system"] == "lsf"
    assert env["job_id"] == "555"
    assert env["job_nodes"] == "hostA,hostB"
    assert env["run_key"] == "lsf:555" == run_key({**environ, "LSB_JOBINDEX": "0"})
    assert run_key({"LSB_JOBID": "556"}) != env["run_key"]


def test_lsf_array_elements_and_mcpu_hosts() -> None:
    env = collect(environ={"LSB_JOBID": "9", "LSB_JOBINDEX": "4", "LSB_MCPU_HOSTS": "h1 2 h2 2"})
    assert env["job_nodes"] == "h1,h2"
    assert env["job_array_task"] == "4"
    # Elements of an LSF array share LSB_JOBID.
    assert env["run_key"] == "lsf:9:4" != run_key({"LSB_JOBID": "9", "LSB_JOBINDEX": "5"})


def test_no_batch_job() -> None:
    env = collect(environ={"HOME": "/home/u"})
    for key in ("batch_system", "run_key", "job_id", "mpi_rank", "mpi_size"):
        assert key not in env
    assert run_key({}) is None
    assert run_key({"SLURM_JOB_ID": "  "}) is None


def test_run_key_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLURM_JOB_ID", "SLURM_JOBID", "PBS_JOBID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LSB_JOBID", "31")
    monkeypatch.delenv("LSB_JOBINDEX", raising=False)
    assert run_key() == "lsf:31"


@pytest.mark.parametrize(
    ("environ", "rank", "size"),
    [
        ({"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "16"}, 5, 16),
        ({"PMI_RANK": "2", "PMI_SIZE": "4"}, 2, 4),
        ({"PMIX_RANK": "1", "OMPI_COMM_WORLD_SIZE": "3"}, 1, 3),
        ({"PMIX_RANK": "1"}, 1, None),
        ({"MV2_COMM_WORLD_RANK": "7", "MV2_COMM_WORLD_SIZE": "8"}, 7, 8),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"}, 0, 2),
        # The MPI launcher wins over Slurm's task numbers.
        ({"PMI_RANK": "3", "PMI_SIZE": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, 3, 4),
        ({"OMPI_COMM_WORLD_RANK": "x", "PMI_RANK": "1", "PMI_SIZE": "2"}, 1, 2),
        ({"PMI_RANK": "not-a-number"}, None, None),
    ],
)
def test_mpi_rank_and_size(environ: dict[str, str], rank: int | None, size: int | None) -> None:
    env = collect(environ=environ)
    assert env.get("mpi_rank") == rank
    assert env.get("mpi_size") == size
    if rank is not None:
        assert type(env["mpi_rank"]) is int


# ---------------------------------------------------------------------------------------------
# environment variables

ENVIRON = {
    "CUDA_VISIBLE_DEVICES": "0,1",
    "CUDA_HOME": "/usr/local/cuda",
    "OMP_NUM_THREADS": "8",
    "MY_SECRET_TOKEN": "tok-abc123",
    "AWS_SECRET_ACCESS_KEY": "aws-xyz789",
    "WANDB_API_KEY": "wandb-555",
    "DB_PASSWORD": "pw-hunter2",
    "HOME": "/home/u",
}
SECRET_VALUES = ("tok-abc123", "aws-xyz789", "wandb-555", "pw-hunter2")


def test_no_environment_variables_by_default() -> None:
    env = collect(environ=ENVIRON)
    assert not [k for k in env if k.startswith("env.")]
    for value in env.values():
        for secret in SECRET_VALUES:
            assert secret not in str(value)


def test_allow_env_exact_names_and_patterns() -> None:
    env = collect(environ=ENVIRON, allow_env=["OMP_NUM_THREADS", "CUDA_*", "NOT_SET"])
    assert {k: v for k, v in env.items() if k.startswith("env.")} == {
        "env.OMP_NUM_THREADS": "8",
        "env.CUDA_VISIBLE_DEVICES": "0,1",
        "env.CUDA_HOME": "/usr/local/cuda",
    }


def test_allow_env_patterns_never_match_secrets() -> None:
    env = collect(environ=ENVIRON, allow_env=["*"])
    assert "env.HOME" in env and "env.CUDA_HOME" in env
    for name in ("MY_SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "DB_PASSWORD"):
        assert f"env.{name}" not in env
    for value in env.values():
        for secret in SECRET_VALUES:
            assert secret not in str(value)
    assert "env.WANDB_API_KEY" not in collect(environ=ENVIRON, allow_env=["WANDB_*"])


def test_allow_env_secret_given_exactly_is_recorded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger=environment.__name__)
    env = collect(environ=ENVIRON, allow_env=["WANDB_API_KEY", "*SECRET*"])
    assert env["env.WANDB_API_KEY"] == "wandb-555"
    assert "env.MY_SECRET_TOKEN" not in env
    for secret in SECRET_VALUES:
        assert secret not in caplog.text


def test_allow_env_one_string_is_one_name() -> None:
    env = collect(environ=ENVIRON, allow_env="HOME")
    assert [k for k in env if k.startswith("env.")] == ["env.HOME"]


def test_default_environ_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_TEST_VAR", "yes")
    monkeypatch.setenv("MY_SECRET_TOKEN", "tok-abc123")
    env = collect(allow_env=["PROVML_TEST_*", "MY_*"])
    assert env["env.PROVML_TEST_VAR"] == "yes"
    assert all("tok-abc123" not in str(v) for v in env.values())


# ---------------------------------------------------------------------------------------------
# never raising


def test_every_value_is_a_scalar(repo: Path, tmp_path: Path, proc: Path) -> None:
    (proc / ".dockerenv").write_text("")
    (proc / "cgroup").write_text(f"0::/docker/{HEX64}\n")
    nodefile = tmp_path / "nodes"
    nodefile.write_text("n1\nn2\n")
    environ = {
        **slurm("1", 0, SLURM_ARRAY_JOB_ID="1", SLURM_ARRAY_TASK_ID="0"),
        "PMI_RANK": "0",
        "PMI_SIZE": "2",
        **ENVIRON,
    }
    git(repo, "remote", "add", "origin", "https://u:p@h/r.git")
    env = collect(environ=environ, allow_env=["*"], script=str(repo / "train.py"))
    assert {"git_commit", "packages", "container_id", "run_key", "mpi_rank"} <= env.keys()
    assert only_scalars(env)
    json.dumps(env, allow_nan=False)


def test_broken_probes_do_not_raise(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken probe")

    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(metadata, "distributions", boom)
    monkeypatch.setattr(socket, "gethostname", boom)
    monkeypatch.setattr("platform.platform", boom)
    monkeypatch.setattr(container, "container_files", boom)
    env = collect(environ=slurm("1", 0), script=str(repo / "train.py"), allow_env=["SLURM_*"])
    assert env["pid"] == os.getpid()
    assert env["run_key"] == "slurm:alps:1"
    assert env["env.SLURM_JOB_ID"] == "1"
    for key in ("hostname", "platform", "packages", "git_commit", "container", "gpus"):
        assert key not in env
    assert "collected_ms" in env


class BrokenEnviron(Mapping[str, str]):
    """An environment that fails whatever is asked of it."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("broken environ")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("broken environ")

    def __len__(self) -> int:
        raise RuntimeError("broken environ")


def test_broken_arguments_do_not_raise() -> None:
    env = collect(environ=BrokenEnviron(), allow_env=["*"])
    assert "pid" in env and "collected_ms" in env
    assert run_key(BrokenEnviron()) is None
    env = collect(argv=[None, 3], allow_env=[None, ""], script="\0bad")  # type: ignore[list-item]
    assert only_scalars(env)


def test_non_scalar_values_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "host", lambda: {"hostname": ["a", "b"], "pid": 1})
    monkeypatch.setattr(batch, "mpi", lambda environ: {"mpi_rank": float("nan")})
    env = collect(environ={})
    assert "hostname" not in env and "mpi_rank" not in env
    assert env["pid"] == 1
