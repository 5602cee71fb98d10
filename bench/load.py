"""Load test of the pipeline on loopback: client processes POST batches to a tracker
that forwards to a separate manager process, for a fixed time.

    python bench/load.py [--duration 120] [--clients 4] [--tasks-per-batch 50]

Reports throughput (batches, records and triples per second), ingest latency (the
tracker's answer: durable in its queue, and written to the store unless it answered
202), and the resident memory of the tracker and the manager sampled every 2 s, with
the slope over the second half of the run (flat memory: a slope near 0 MiB/min).
Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PROVML = Path(sys.executable).with_name("provml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(data.parent / f"{data.name}.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [str(PROVML), "serve", "--port", str(port), "--data-dir", str(data), *args],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/readyz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{data.name} did not start")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_batch(tasks: int, counter: list[int], session: str) -> bytes:
    import orjson

    records: list[Any] = []
    if counter[0] == 0:
        counter[0] = 1
        records.append(["workflow_start", 1, None, "load", time.time(), None, None, "bench"])
    for _ in range(tasks):
        n = counter[0] = counter[0] + 2
        now = time.time()
        records.append(["task_start", n, None, 1, None, ["load", "step"], now, "training",
                        {"lr": 0.1, "epochs": 3, "i": n}, None])  # fmt: skip
        records.append(["metric", n + 1, n, None, "loss", 1 / n, now, None])
        records.append(["task_end", n, None, ["load", "step"], now, "training", None, None,
                        {"score": n}, None])  # fmt: skip
    batch = {"provml": 1, "batch": os.urandom(16).hex(), "session": session, "records": records}
    return orjson.dumps(batch)


def client(url: str, duration: float, tasks: int, out: Any) -> None:
    from provml.core.ids import new_session_id

    http = requests.Session()
    session, counter = new_session_id(), [0]
    latencies: list[float] = []
    records = statuses_202 = errors = 0
    stop = time.monotonic() + duration
    while time.monotonic() < stop:
        body = make_batch(tasks, counter, session)
        started = time.perf_counter()
        resp = http.post(url + "/api/v1/batches", data=body, timeout=60,
                         headers={"Content-Type": "application/json"})  # fmt: skip
        latencies.append(time.perf_counter() - started)
        if resp.status_code in (200, 202):
            records += resp.json()["records"]
            statuses_202 += resp.status_code == 202
        else:
            errors += 1
            time.sleep(float(resp.headers.get("Retry-After", "0.5")))
        if counter[0] > 2**31:  # record numbers are 32-bit: start a new session
            session, counter = new_session_id(), [0]
    out.put({"latencies": latencies, "records": records, "accepted_202": statuses_202,
             "errors": errors})  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope in MiB per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--tasks-per-batch", type=int, default=50, help="tasks (3 records each)")
    parser.add_argument("--json", default=str(RESULTS / "load.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="provml-load-"))
    store, store_url = start(work / "store", "--component", "manager", "--component", "query")
    tracker, tracker_url = start(work / "tracker", "--component", "tracker", "--manager-url",
                                 store_url)  # fmt: skip
    print(f"tracker {tracker_url} (pid {tracker.pid}), manager {store_url} (pid {store.pid}); "
          f"{args.clients} clients × {args.duration:.0f} s, {args.tasks_per_batch} tasks/batch",
          file=sys.stderr)  # fmt: skip
    queue: Any = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=client, args=(tracker_url, args.duration,
                                                            args.tasks_per_batch, queue))
               for _ in range(args.clients)]  # fmt: skip
    t0 = time.monotonic()
    for c in clients:
        c.start()
    memory: list[dict[str, float]] = []
    while any(c.is_alive() for c in clients):
        memory.append({"t": time.monotonic() - t0, "tracker_mib": rss_mib(tracker.pid),
                       "manager_mib": rss_mib(store.pid)})  # fmt: skip
        time.sleep(2)
    results = [queue.get() for _ in clients]
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait for the queue to drain into the store
        if (
            requests.get(tracker_url + "/api/v1/tracker/stats", timeout=10).json()["queue_depth"]
            == 0
        ):
            break
        time.sleep(0.5)
    drained = time.monotonic() - t0
    manager = requests.get(store_url + "/api/v1/stats", timeout=60).json()
    for proc in (tracker, store):
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    latencies = [x for r in results for x in r["latencies"]]
    records = sum(r["records"] for r in results)
    half = [m for m in memory if m["t"] >= args.duration / 2]
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": vars(args),
        "seconds_of_load": round(elapsed, 1),
        "seconds_until_stored": round(drained, 1),
        "batches": len(latencies),
        "records": records,
        "triples_stored": manager.get("quads", 0),
        "batches_per_s": round(len(latencies) / elapsed, 1),
        "records_per_s": round(records / elapsed),
        "triples_per_s_until_stored": round(manager.get("quads", 0) / drained),
        "latency_ms": {"p50": round(1000 * percentile(latencies, 0.5), 1),
                       "p99": round(1000 * percentile(latencies, 0.99), 1),
                       "max": round(1000 * max(latencies), 1)},
        "answered_202": sum(r["accepted_202"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "memory_mib": {
            who: {"start": round(memory[0][f"{who}_mib"], 1),
                  "max": round(max(m[f"{who}_mib"] for m in memory), 1),
                  "end": round(memory[-1][f"{who}_mib"], 1),
                  "slope_second_half_mib_per_min": round(
                      slope([(m["t"], m[f"{who}_mib"]) for m in half]), 2)}
            for who in ("tracker", "manager")
        },
        "memory_samples": memory,
    }  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2))
    printable = {k: v for k, v in summary.items() if k != "memory_samples"}
    print(json.dumps(printable, indent=2))


if __name__ == "__main__":
    main()
