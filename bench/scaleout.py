"""Scale-out: 1, 2 and 4 trackers + managers writing one Oxigraph server, end to end.

    python bench/scaleout.py [--workflows 100] [--managers 1,2,4] [--repeats 3]

The records are bench/ingest.py's (the generated workflow runs of
bench/query_scenario.py as disk-only segment files), dealt line by line (one batch a
line) to as many shares as there are managers. For each count N: a fresh Oxigraph server
(the ``oxigraph`` binary of the dev extras), N ``provml serve --store oxigraph+http://…``
processes (each a tracker with its own durable queue and a manager), and N ``provml
ingest --url`` clients at once, one per share and per service. The clock stops when every
queue is drained and the Oxigraph server counts every triple.

Reports the median of ``--repeats`` runs of records/s and triples/s end to end, and the
speed-up over one manager; writes bench/results/scaleout.json. Nothing is asserted. On a
2-core machine every process shares the same two cores (N services, N clients and the
Oxigraph server): past one manager, the figures say what this machine can do, not how
the design scales (docs/capacity.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))

from ingest import (
    PARALLEL,
    PROVML,
    RESULTS,
    free_port,
    say,
    start_oxigraph,
    wait_drained,
    wait_http,
    write_segments,
)

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def deal(segments: Path, shares: int, out: Path) -> list[Path]:
    """The batches (lines) of ``segments`` dealt round-robin to ``shares`` directories."""
    dirs = [out / f"share-{i}" for i in range(shares)]
    for d in dirs:
        d.mkdir(parents=True)
    files = [(d / "segment-00000.jsonl").open("wb") for d in dirs]
    n = 0
    for seg in sorted(segments.iterdir()):
        with seg.open("rb") as lines:
            for line in lines:
                files[n % shares].write(line)
                n += 1
    for f in files:
        f.close()
    return dirs


def oxigraph_count(url: str) -> int:
    resp = requests.post(url + "/query", data={"query": COUNT}, timeout=600,
                         headers={"Accept": "application/sparql-results+json"})  # fmt: skip
    resp.raise_for_status()
    return int(resp.json()["results"]["bindings"][0]["n"]["value"])


def run(shares: list[Path], work: Path, parallel: int) -> tuple[float, int]:
    """One run: a fresh Oxigraph server, one service and one client per share; returns
    the seconds from the first batch sent to the last triple counted, and the triples."""
    oxi, oxi_url, oxi_log = start_oxigraph(work)
    services: list[tuple[subprocess.Popen[bytes], str, Any]] = []
    try:
        for i, _ in enumerate(shares):
            port = free_port()
            log = (work / f"serve-{i}.log").open("wb")
            proc = subprocess.Popen(
                [str(PROVML), "serve", "--port", str(port), "--data-dir",
                 str(work / f"data-{i}"), "--store", f"oxigraph+{oxi_url}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            services.append((proc, f"http://127.0.0.1:{port}", log))
        for proc, url, _ in services:
            wait_http(url + "/readyz", proc)
        t0 = time.perf_counter()
        clients = [
            subprocess.Popen(
                [
                    str(PROVML),
                    "ingest",
                    "--quiet",
                    "--url",
                    url,
                    "--parallel",
                    str(parallel),
                    str(share),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for share, (_, url, _) in zip(shares, services, strict=True)
        ]
        for c in clients:
            _, err = c.communicate(timeout=3600)
            if c.returncode:
                raise RuntimeError(f"provml ingest failed: {err.decode()[-500:]}")
        for _, url, _ in services:
            wait_drained(url)
        triples = oxigraph_count(oxi_url)
        return time.perf_counter() - t0, triples
    finally:
        for proc, _, log in services:
            proc.terminate()
            proc.wait(60)
            log.close()
        oxi.terminate()
        oxi.wait(60)
        oxi_log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=100, help="generated workflow runs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--managers", default="1,2,4", help="counts of trackers + managers")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=PARALLEL,
                        help="batches in flight from each client")  # fmt: skip
    parser.add_argument("--json", default=str(RESULTS / "scaleout.json"))
    args = parser.parse_args()
    counts = [int(n) for n in args.managers.split(",")]
    base = Path(tempfile.mkdtemp(prefix="provml-scaleout-"))
    try:
        say(f"generating {args.workflows} workflow runs as segment files …")
        sizes = write_segments(args.workflows, args.seed, base / "segments")

        def one(n: int, r: int, work: Path) -> tuple[float, int]:
            shares = deal(base / "segments", n, base / f"shares-{n}-{r}")
            return run(shares, work, args.parallel)

        seconds, triples = repeat_runs(counts, args.repeats, base, one)
        report(args, sizes, triples, seconds)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def repeat_runs(
    counts: list[int], repeats: int, base: Path, one: Callable[[int, int, Path], tuple[float, int]]
) -> tuple[dict[int, list[float]], int]:
    """``one(managers, repeat, workdir)`` for every count, ``repeats`` times: the seconds
    of each run by count, and the triples (every run must store the same)."""
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    triples = 0
    for r in range(repeats):
        for n in counts:
            work = base / f"run-{n}-{r}"
            work.mkdir()
            say(f"  run {r + 1}/{repeats}: {n} manager(s) …")
            secs, got = one(n, r, work)
            if triples and got != triples:
                raise RuntimeError(f"{n} managers stored {got} triples, not {triples}")
            triples = got
            seconds[n].append(secs)
            shutil.rmtree(work, ignore_errors=True)
    return seconds, triples


def manager_rows(
    records: int, triples: int, seconds: dict[int, list[float]]
) -> list[dict[str, Any]]:
    """The table of managers → median seconds, records/s, triples/s, speed-up (printed)."""
    print(f"{'managers':>8} {'seconds':>8} {'records/s':>10} {'triples/s':>10} {'speed-up':>9}")
    rows = []
    one = statistics.median(seconds[min(seconds)])
    for n, secs in seconds.items():
        med = statistics.median(secs)
        row = {"managers": n, "seconds_median": round(med, 2),
               "seconds_all": [round(s, 2) for s in secs],
               "records_per_second": round(records / med),
               "triples_per_second": round(triples / med),
               "speedup": round(one / med, 2)}  # fmt: skip
        rows.append(row)
        print(f"{n:>8} {med:>8.1f} {row['records_per_second']:>10,} "
              f"{row['triples_per_second']:>10,} {row['speedup']:>9.2f}")  # fmt: skip
    return rows


def report(args: Any, sizes: dict[str, int], triples: int, seconds: dict[int, list[float]]) -> None:
    print(f"\n{sizes['records']:,} records in {sizes['batches']:,} batches → {triples:,} "
          f"triples in one Oxigraph server; median of {args.repeats} runs, "
          f"{os.cpu_count()} cores\n")  # fmt: skip
    rows = manager_rows(sizes["records"], triples, seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": {"node": platform.node(), "cpus": os.cpu_count()},
        "workflows": args.workflows, "seed": args.seed, "repeats": args.repeats,
        "parallel": args.parallel, **sizes, "triples": triples, "runs": rows},
        indent=1) + "\n")  # fmt: skip
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
