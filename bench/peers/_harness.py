"""Timing harness shared by the runners (standard library only: it runs in every venv).

A runner builds one ``task()`` closure (start a task, 4 parameters, 1 metric, end), then
calls :func:`measure`, which warms up, times every task on the caller's thread with
``time.perf_counter_ns`` and times the whole run up to "everything is on disk". The
runner prints one ``BENCH-RESULT {json}`` line (:func:`emit`) that the driver parses.

``--names same`` names every task ``step``; ``--names distinct`` gives each its own name
(``step-1``, ``step-2`` …: one per file, chunk or rank, the usual case in HPC). The task
closure takes its name from :func:`task_names`, the same way in every runner.

``--rss-every K`` is the memory run instead: no per-task timing, the process's resident
set size sampled every K tasks (:func:`measure_memory`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import math
import os
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
    parser.add_argument(
        "--names", choices=("same", "distinct"), default="same", help="task names: one or each"
    )
    parser.add_argument(
        "--rss-every", type=int, default=0, help="memory run: sample RSS every K tasks"
    )
    return parser.parse_args()


def task_names(args: argparse.Namespace) -> Callable[[], str]:
    """The name of the next task: ``step`` each time, or a new one each time.

    For a timed run the distinct names are made beforehand (so that making them is not
    timed); for a memory run they are made as they are needed (a list of millions would
    be the memory measured).
    """
    if args.names == "same":
        return itertools.repeat("step").__next__
    if args.rss_every:
        return map("step-{}".format, itertools.count(1)).__next__
    return iter([f"step-{i}" for i in range(1, args.warmup + args.tasks + 1)]).__next__


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def measure_memory(
    task: Callable[[], object], tasks: int, every: int, finish: Callable[[], object]
) -> dict[str, Any]:
    """Run ``tasks`` tasks, sampling RSS every ``every`` of them; then ``finish``.

    The figure that matters is growth once the run is in its stride: RSS at the end
    minus RSS after the first 10 % (queues, buffers and caches filled by then).
    """
    curve = [(0, round(rss_mib(), 1))]
    t0 = time.perf_counter_ns()
    done = 0
    while done < tasks:
        for _ in range(min(every, tasks - done)):
            task()
        done = min(done + every, tasks)
        curve.append((done, round(rss_mib(), 1)))
    finish()
    elapsed = time.perf_counter_ns() - t0
    settled = next(rss for n, rss in curve if n >= tasks // 10)
    return {
        "tasks": tasks,
        "warmup": 0,
        "rss_curve_mib": curve,
        "rss_start_mib": curve[0][1],
        "rss_at_10pct_mib": settled,
        "rss_end_mib": curve[-1][1],
        "rss_peak_mib": max(rss for _, rss in curve),
        "rss_growth_after_10pct_mib": round(curve[-1][1] - settled, 1),
        "amortised_us": elapsed / tasks / 1e3,
    }


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
