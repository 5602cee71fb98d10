"""The GPUs of this host, from ``nvidia-smi``."""

from __future__ import annotations

import logging
import shutil
import subprocess

from capture_lib.environment.core import Scalar, cached

log = logging.getLogger(__name__)

GPU_TIMEOUT = 3.0
"""Seconds for ``nvidia-smi``: it can take a second or two to start without persistence mode."""


def gpus() -> dict[str, Scalar]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    text = cached("gpus", smi, lambda: _gpus_uncached(smi))
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
