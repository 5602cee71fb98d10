"""A background resource sampler: CPU, memory and GPU at a fixed interval.

Sampling per task would cost every task a few system calls; a sampler thread costs
nothing on the caller's thread and one record per quantity per interval. Samples are
metric values of the workflow run (``system.cpu_percent``, ``system.rss_bytes``,
``system.gpu<i>.utilization_percent``, ``system.gpu<i>.memory_used_mib``), so the query
side reads them like any other metric.

The sampler knows nothing of workflows: it is given the callable that records a metric
(``emit_metric(name, value, step)``, a workflow run's :meth:`~capture_lib.api.Workflow.metric`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

#: records one value of a metric: ``(name, value, step)``
EmitMetric = Callable[[str, float, int | None], None]


def rss_bytes() -> int | None:
    """Current resident set size of this process (Linux /proc), else None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def gpu_samples(timeout: float = 2.0) -> list[tuple[float, float]]:
    """(utilization %, memory used MiB) per GPU from nvidia-smi; empty without one."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout, check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    samples = []
    for line in out.splitlines():
        try:
            util, mem = (float(x) for x in line.split(","))
        except ValueError:
            continue
        samples.append((util, mem))
    return samples


class Sampler(threading.Thread):
    """Samples every ``interval`` seconds until :meth:`stop`, recording each sample with
    ``emit_metric``; started by the workflow."""

    def __init__(self, emit_metric: EmitMetric, interval: float, *, gpus: bool = True) -> None:
        super().__init__(name="provml-sampler", daemon=True)
        self.emit_metric = emit_metric
        self.interval = interval
        self.gpus = gpus and shutil.which("nvidia-smi") is not None
        self._stop_event = threading.Event()
        self.samples = 0

    def run(self) -> None:
        wall, cpu = time.monotonic(), time.process_time()
        step = 0
        while not self._stop_event.wait(self.interval):
            try:
                now_wall, now_cpu = time.monotonic(), time.process_time()
                metric = self.emit_metric
                if now_wall > wall:
                    metric("system.cpu_percent", 100 * (now_cpu - cpu) / (now_wall - wall), step)
                wall, cpu = now_wall, now_cpu
                rss = rss_bytes()
                if rss is not None:
                    metric("system.rss_bytes", rss, step)
                if self.gpus:
                    for i, (util, mem) in enumerate(gpu_samples()):
                        metric(f"system.gpu{i}.utilization_percent", util, step)
                        metric(f"system.gpu{i}.memory_used_mib", mem, step)
                self.samples += 1
                step += 1
            except Exception:  # never let sampling hurt the workflow
                log.debug("provml: sampling failed", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
