"""The Redis Streams broker: 1, 2 and 4 managers consuming one stream into one Oxigraph
server, end to end; and what AOF's ``appendfsync always`` costs against ``everysec``.

    python bench/broker.py [--workflows 100] [--managers 1,2,4] [--repeats 3] [--fsync-only]

The records are bench/ingest.py's (the generated workflow runs of
bench/query_scenario.py, one wire batch a line). ``fsync``: the batches appended one
``XADD`` at a time (as capture_lib's worker does) to a redis-server with AOF and
``appendfsync always``, then ``everysec``: batches/s and the latency of one ``XADD``;
with ``everysec`` also what provml's publishers pay for their replay window (the
replication id read in each ``XADD``'s transaction; docs/deploy.md), interleaved.
``managers``: for each count N, a fresh redis-server (AOF, always) and Oxigraph server,
N ``provml serve --component manager --store oxigraph+http://… --broker redis://…``
processes; the clock starts when the batches are published (pipelined ``XADD``s, as many
producers at once would) and stops when the group has acknowledged every entry — each
acknowledged only once in the store — and the Oxigraph server counts every triple.
Reports the median of ``--repeats`` runs, writes bench/results/broker.json. Nothing is
asserted. On a 2-core machine every process shares the same two cores: past one manager,
the figures say what this machine can do, not how the design scales (docs/capacity.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from ingest import PROVML, RESULTS, free_port, say, start_oxigraph, wait_http, write_segments
from scaleout import manager_rows, oxigraph_count, repeat_runs

STREAM, GROUP = "provml:batches", "provml-managers"


def start_redis(workdir: Path, fsync: str) -> tuple[subprocess.Popen[bytes], Any]:
    import redis

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--appendonly", "yes", "--appendfsync", fsync, "--save", ""],
        stdout=(workdir / "redis.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(port=port, protocol=2)
    for _ in range(200):
        try:
            client.ping()
            return proc, client
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def batches(segments: Path) -> list[bytes]:
    return [line for seg in sorted(segments.iterdir()) for line in seg.read_bytes().splitlines()]


def fsync_cost(bodies: list[bytes], work: Path) -> dict[str, Any]:
    """One XADD per batch, as capture_lib sends: always vs everysec; and with everysec,
    interleaved with the plain XADD, what provml's publishers do (the replication id
    read in the same transaction, the batch kept in the ReplayWindow, its check every
    5 s)."""
    from provml.core.broker import ReplayWindow

    out = {}
    for fsync in ("always", "everysec"):
        proc, client = start_redis(work / f"fsync-{fsync}", fsync)
        window = ReplayWindow(STREAM + ":window", 64 << 20)
        timed: dict[str, list[float]] = {fsync: []}
        if fsync == "everysec":
            timed["everysec, replay window"] = []
        try:
            for body in bodies:
                t = time.perf_counter()
                client.xadd(STREAM, {"batch": body})
                timed[fsync].append(time.perf_counter() - t)
                if len(timed) > 1:
                    t = time.perf_counter()
                    window.publish(client, [body])
                    timed["everysec, replay window"].append(time.perf_counter() - t)
            for name, latencies in timed.items():
                secs = sum(latencies)
                latencies.sort()
                out[name] = {
                    "batches_per_second": round(len(bodies) / secs),
                    "mb_per_second": round(sum(map(len, bodies)) / secs / 1e6, 1),
                    "xadd_p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
                    "xadd_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
                }
        finally:
            proc.terminate()
            proc.wait(30)
    return out


def drained(client: Any, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    last = client.xinfo_stream(STREAM)["last-generated-id"]
    while time.monotonic() < deadline:
        group = client.xinfo_groups(STREAM)[0]
        if group["last-delivered-id"] == last and group["pending"] == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("the managers did not drain the stream")


def run(bodies: list[bytes], n: int, work: Path) -> tuple[float, int]:
    oxi, oxi_url, oxi_log = start_oxigraph(work)
    red, client = start_redis(work / "redis", "always")
    port = client.connection_pool.connection_kwargs["port"]
    managers: list[tuple[subprocess.Popen[bytes], Any]] = []
    try:
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        for i in range(n):
            http = free_port()
            log = (work / f"manager-{i}.log").open("wb")
            proc = subprocess.Popen(
                [str(PROVML), "serve", "--component", "manager", "--port", str(http),
                 "--data-dir", str(work / f"data-{i}"), "--store", f"oxigraph+{oxi_url}",
                 "--broker", f"redis://127.0.0.1:{port}/0"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            managers.append((proc, log))
            wait_http(f"http://127.0.0.1:{http}/readyz", proc)
        t0 = time.perf_counter()
        for i in range(0, len(bodies), 64):
            pipe = client.pipeline(transaction=False)
            for body in bodies[i : i + 64]:
                pipe.xadd(STREAM, {"batch": body})
            pipe.execute()
        drained(client)
        triples = oxigraph_count(oxi_url)
        return time.perf_counter() - t0, triples
    finally:
        for proc, log in managers:
            proc.terminate()
            proc.wait(60)
            log.close()
        red.terminate()
        red.wait(30)
        oxi.terminate()
        oxi.wait(60)
        oxi_log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=100, help="generated workflow runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--managers", default="1,2,4", help="counts of managers")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--fsync-only",
        action="store_true",
        help="only the XADD figures (appendfsync, the replay window)",
    )
    parser.add_argument("--json", default=str(RESULTS / "broker.json"))
    args = parser.parse_args()
    counts = [int(n) for n in args.managers.split(",")]
    base = Path(tempfile.mkdtemp(prefix="provml-broker-"))
    try:
        say(f"generating {args.workflows} workflow runs …")
        sizes = write_segments(args.workflows, args.seed, base / "segments")
        bodies = batches(base / "segments")
        say("XADD with appendfsync always, then everysec …")
        fsync = fsync_cost(bodies, base)
        if args.fsync_only:
            report_fsync(fsync)
            return
        seconds, triples = repeat_runs(
            counts, args.repeats, base, lambda n, r, work: run(bodies, n, work)
        )
        report(args, sizes, triples, seconds, fsync)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(
    args: Any, sizes: dict[str, int], triples: int, seconds: dict[int, list[float]],
    fsync: dict[str, Any],
) -> None:  # fmt: skip
    print(f"\n{sizes['records']:,} records in {sizes['batches']:,} batches; {os.cpu_count()} cores")
    report_fsync(fsync)
    print(f"\n→ {triples:,} triples in one Oxigraph server; median of {args.repeats} runs\n")
    rows = manager_rows(sizes["records"], triples, seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": {"node": platform.node(), "cpus": os.cpu_count()},
        "workflows": args.workflows, "seed": args.seed, "repeats": args.repeats,
        **sizes, "triples": triples, "fsync": fsync, "runs": rows}, indent=1) + "\n")  # fmt: skip
    print(f"\nresults: {args.json}")


def report_fsync(fsync: dict[str, Any]) -> None:
    print(f"\n{'appendfsync':>23} {'batches/s':>10} {'MB/s':>6} {'XADD p50':>9} {'p99 (ms)':>9}")
    for mode, row in fsync.items():
        print(f"{mode:>23} {row['batches_per_second']:>10,} {row['mb_per_second']:>6} "
              f"{row['xadd_p50_ms']:>9} {row['xadd_p99_ms']:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
