"""Timing harness shared by the runners (standard library only: it runs in every venv).

A runner builds one ``task()`` closure (start a task, 4 parameters, 1 metric, end), then
calls :func:`measure`, which warms up, times every task on the caller's thread with
``time.perf_counter_ns`` and times the whole run up to "everything is on disk". The
runner prints one ``BENCH-RESULT {json}`` line (:func:`emit`) that the driver parses.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
PARAMS = {"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True}  # for reference only


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks timed")
    parser.add_argument("--warmup", type=int, default=2_000, help="tasks run first, not timed")
    parser.add_argument("--workdir", required=True, help="an empty directory for the output")
    return parser.parse_args()


def time_tasks(task: Callable[[], object], n: int) -> list[int]:
    """Nanoseconds taken by each of ``n`` calls of ``task``, on this thread."""
    samples = [0] * n
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        task()
        samples[i] = clock() - t0
    return samples


def summarise(samples: list[int]) -> dict[str, float]:
    """Median, p99 (nearest rank), mean and max of per-task samples, in µs."""
    ordered = sorted(samples)
    n = len(ordered)
    p99 = ordered[max(0, math.ceil(0.99 * n) - 1)]
    return {
        "median_us": statistics.median(ordered) / 1e3,
        "p99_us": p99 / 1e3,
        "mean_us": sum(ordered) / n / 1e3,
        "max_us": ordered[-1] / 1e3,
    }


def measure(
    task: Callable[[], object],
    tasks: int,
    warmup: int,
    drain: Callable[[], object],
    finish: Callable[[], object],
) -> dict[str, Any]:
    """Warm up, drain, then time ``tasks`` tasks one by one and the run to disk.

    ``drain`` makes the warm-up's records durable, so they neither slow down nor count
    towards the timed run; ``finish`` ends the run and returns once everything is on
    disk (a flush, a stop, an end). Amortised cost = (end of ``finish`` − start of the
    first timed task) / ``tasks``.
    """
    for _ in range(warmup):
        task()
    drain()
    t_first = time.perf_counter_ns()
    samples = time_tasks(task, tasks)
    t_loop = time.perf_counter_ns()
    finish()
    t_done = time.perf_counter_ns()
    result: dict[str, Any] = summarise(samples)
    result.update(
        tasks=tasks,
        warmup=warmup,
        loop_us_per_task=(t_loop - t_first) / tasks / 1e3,
        finish_s=(t_done - t_loop) / 1e9,
        amortised_us=(t_done - t_first) / tasks / 1e3,
    )
    return result


def versions(*dists: str) -> dict[str, str]:
    """Installed versions of ``dists`` (``"missing"`` when not installed), and Python's."""
    found = {"python": platform.python_version()}
    for dist in dists:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "missing"
    return found


def emit(result: dict[str, Any]) -> None:
    """Print the result line the driver reads (last on stdout)."""
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
