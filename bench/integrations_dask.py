"""What the Dask scheduler plugin costs: the same graph of N small tasks with and without it.

A graph of N/4 chains of three tiny ``inc`` calls and one ``sum`` of the chains' ends
(``--tasks`` N = 2,000: 1,501 tasks; each ``inc`` but the first of a chain has one
input, the ``sum`` N/4) is computed on a ``LocalCluster`` (one worker, ``--threads`` threads,
``processes=False``: scheduler and worker in this process, so the scheduler's cost is
not hidden behind another core), ``--repeats`` times with the plugin registered and
without, interleaved (on, off, on, off …) so that the machine's drift touches both
alike; the figures are medians. Capture goes to disk (``mode="disk"`` in a temporary
directory); the records are flushed after each timed compute, outside the timing.

Reported: the wall time of a compute, the time per task (Dask's own overhead dominates:
the tasks do nothing), the plugin's cost per task (the difference, over N) as µs and as
a share of a no-op task and of a 10 ms task, and the cost of the plugin's recording call
alone (``Capture.task``, timed in a loop outside Dask: what the scheduler's event loop
pays per task).

    python bench/integrations_dask.py [--tasks N] [--repeats R] [--threads T] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python bench/integrations_dask.py``
on a shared one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import capture_lib as cl
from capture_lib.integrations import dask as cd

#: the "typical" task the overhead is also compared to
TYPICAL_TASK_S = 0.010


def inc(x: int) -> int:
    return x + 1


def _graph(n: int, tag: str) -> Any:
    import dask

    ends = []
    for c in range(max(1, n // 4)):
        v: Any = c
        for s in range(3):
            v = dask.delayed(inc)(v, dask_key_name=f"inc-{tag}-{c}-{s}")
        ends.append(v)
    return dask.delayed(sum)(ends, dask_key_name=f"sum-{tag}")


def measure(n: int, repeats: int, threads: int) -> dict[str, Any]:
    import distributed

    times: dict[bool, list[float]] = {True: [], False: []}
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        cl.workflow("bench-dask") as wf,
    ):
        tasks = len(_graph(n, "count").__dask_graph__())
        for i in range(repeats * 2 + 2):
            on = i % 2 == 0
            if on:
                client.register_plugin(cd.ProvmlSchedulerPlugin(wf, max_tasks=None))
            graph = _graph(n, f"r{i}")
            t = time.perf_counter()
            graph.compute()
            elapsed = time.perf_counter() - t
            if on:
                client.unregister_scheduler_plugin(cd.PLUGIN_NAME)
            cl.flush()
            if i >= 2:  # the first pair warms caches and imports
                times[on].append(elapsed)
        per_call = _recording_call(wf)
    with_, without = statistics.median(times[True]), statistics.median(times[False])
    per_task = (with_ - without) / tasks
    return {
        "tasks": tasks, "threads": threads, "repeats": repeats,
        "with_ms": with_ * 1e3, "without_ms": without * 1e3,
        "dask_per_task_us": without / tasks * 1e6,
        "plugin_per_task_us": per_task * 1e6,
        "overhead_pct_of_noop_task": per_task / (without / tasks) * 100,
        "overhead_pct_of_10ms_task": per_task / TYPICAL_TASK_S * 100,
        "recording_call_us": per_call * 1e6,
    }  # fmt: skip


def _recording_call(wf: Any, n: int = 20_000) -> float:
    """Median time of one ``Capture.task`` (two records queued) over batches of calls."""
    capture = cd.Capture(wf.iri, wf.name, {}, None)
    deps = [("inc-x-0-0", "inc")]
    samples = []
    for b in range(5):
        t = time.perf_counter()
        for i in range(n // 5):
            capture.task(f"inc-b{b}-{i}", "inc", deps, worker="inproc://w", start=1.0, stop=2.0,
                         typename="int", nbytes=28, function="inc")  # fmt: skip
        samples.append((time.perf_counter() - t) / (n // 5))
        cl.flush()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        result = measure(args.tasks, args.repeats, args.threads)
        lost = cl.stats()["lost"]
        cl.shutdown()
    r = result
    print(f"{r['tasks']} tasks, {r['threads']} thread(s), medians of {r['repeats']}")
    print(
        f"compute without the plugin  {r['without_ms']:9.1f} ms  "
        f"({r['dask_per_task_us']:.0f} µs a task: Dask's own cost, the tasks do nothing)"
    )
    print(f"compute with the plugin     {r['with_ms']:9.1f} ms")
    print(
        f"plugin, per task            {r['plugin_per_task_us']:9.1f} µs  "
        f"= {r['overhead_pct_of_noop_task']:.1f} % of a no-op task, "
        f"{r['overhead_pct_of_10ms_task']:.2f} % of a 10 ms task"
    )
    print(f"the recording call alone    {r['recording_call_us']:9.1f} µs a task")
    print(f"lost: {lost or 'nothing'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
