"""The git state of the running script's repository: commit, branch, dirty, origin."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from capture_lib.environment.core import Scalar, cached, strip_credentials

log = logging.getLogger(__name__)

GIT_TIMEOUT = 2.0
"""Seconds for all git calls of one directory together."""


def git_dirs(script: str | None, args: list[str]) -> list[str]:
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


def git_state(dirs: list[str]) -> dict[str, Scalar]:
    """The git state of the first of ``dirs`` that is in a repository."""
    for directory in dirs:
        found = cached("git", directory, functools.partial(_git_uncached, directory))
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
            out["git_remote"] = strip_credentials(remote.stdout.strip())
        status = git("status", "--porcelain", "--untracked-files=no")
        if status.returncode == 0:
            out["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        log.debug("provml: git in %s failed or timed out", directory, exc_info=True)
    return out


# Variables that would make git describe some other repository than the one asked about.
_GIT_REDIRECTS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"})
