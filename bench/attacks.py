"""Resource attacks on a real ``provml serve``, on loopback, with figures.

What issue [9] asked to see after its fixes: the cores and memory a server spends once
its limits have stopped an attack, how long a cheap query takes during one, and how many
bytes of a refused body the server read. Each attack is bounded in time and connections.

    python bench/attacks.py [--triples 40000] [--timeout 5] [--json FILE]

The server runs with its defaults but for ``PROVML_QUERY_TIMEOUT`` (``--timeout``) and
a 1 MiB ``PROVML_MAX_REQUEST_BYTES`` (so that the body attacks need not send 64 MiB to
pass it), on an embedded store of ``--triples`` generated triples, with access tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manager.store.oxigraph import OxigraphStore  # noqa: E402

TOKEN = "bench-capture-" + "c" * 24
READ = "bench-read-" + "r" * 24
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"
HOARDER = "SELECT ?a ?c WHERE { ?a ?p ?b . ?c ?q ?d } ORDER BY ?a ?c"
CHEAP = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"


def family(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for p in family(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
    return total / 2**20


class Watch:
    """Samples cheap-query latency and the server's memory while an attack runs."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.latencies: list[float] = []
        self.failures = 0
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._memory = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        self._memory.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._memory.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(0.02)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                ok = requests.post(self.url + "/sparql", data={"query": CHEAP}, timeout=10,
                                   headers={"Authorization": f"Bearer {READ}"}).ok  # fmt: skip
            except requests.RequestException:
                ok = False
            if ok:
                self.latencies.append(time.monotonic() - t0)
            else:
                self.failures += 1
            self._stop.wait(0.25)

    def figures(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "cheap_query_ms_p50": round(statistics.median(lat) * 1000, 1) if lat else None,
            "cheap_query_ms_max": round(lat[-1] * 1000, 1) if lat else None,
            "cheap_query_refused_or_failed": self.failures,
            "peak_rss_mib": round(self.peak, 1),
        }


def after(pid: int, seconds: float = 3.0) -> dict[str, float]:
    """Cores and memory the server spends once the attack is over."""
    time.sleep(0.5)
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    return {"cores_after": round((cpu_seconds(pid) - c0) / seconds, 3),
            "rss_mib_after": round(rss_mib(pid), 1)}  # fmt: skip


def queries(url: str, pid: int, query: str, n: int) -> dict[str, Any]:
    answers: list[tuple[int, float]] = []

    def one() -> None:
        t0 = time.monotonic()
        r = requests.post(url + "/sparql", data={"query": query}, timeout=120,
                          headers={"Authorization": f"Bearer {READ}"})  # fmt: skip
        answers.append((r.status_code, round(time.monotonic() - t0, 2)))

    with Watch(url, pid) as watch:
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {"answers": sorted(answers), **watch.figures(), **after(pid)}


def body_attacks(port: int, pid: int) -> dict[str, Any]:
    def raw(headers: list[str], body: bytes = b"", chunked: bool = False) -> tuple[str, int]:
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = "\r\n".join(["POST /api/v1/batches HTTP/1.1", "Host: x", *headers])
            sock.sendall((head + "\r\n\r\n").encode())
            chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
            try:
                while chunked and sent < (900 << 20):
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            try:
                status = sock.recv(64).split(b" ")[1].decode()
            except (OSError, IndexError):
                status = "closed"
        return status, sent

    auth = f"Authorization: Bearer {TOKEN}"
    t0 = time.monotonic()
    unauth = raw([f"Content-Length: {900 << 20}", "Content-Type: application/json"])
    t_unauth = time.monotonic() - t0
    over = raw([auth, f"Content-Length: {900 << 20}", "Content-Type: application/json"])
    chunked = raw([auth, "Transfer-Encoding: chunked", "Content-Type: application/json"],
                  chunked=True)  # fmt: skip
    return {
        "unauthenticated_900MB": {
            "status": unauth[0],
            "body_bytes_sent": 0,
            "answer_s": round(t_unauth, 3),
        },
        "announced_900MB": {"status": over[0], "body_bytes_sent": 0},
        "chunked_900MB": {"status": chunked[0], "body_bytes_sent_before_close": chunked[1]},
        **after(pid),
    }


def slow_headers(port: int, url: str, pid: int, n: int = 150, seconds: float = 15) -> dict:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    health: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b"X")
        t0 = time.monotonic()
        try:
            requests.get(url + "/healthz", timeout=10)
            health.append(time.monotonic() - t0)
        except requests.RequestException:
            health.append(float("inf"))
        time.sleep(1)
    closed = 0
    for s in socks:
        try:
            s.settimeout(0.2)
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    return {"connections": n, "healthz_ms_max": round(max(health) * 1000, 1),
            "closed_by_server": closed, **after(pid)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--triples", type=int, default=40_000)
    ap.add_argument("--timeout", type=float, default=5.0, help="PROVML_QUERY_TIMEOUT")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "attacks.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = OxigraphStore(str(data / "store"))
        store.bulk_load("".join(
            f"<https://e.org/s{i}> <https://e.org/p{i % 7}> <https://e.org/o{i % 1000}> .\n"
            for i in range(args.triples)).encode())  # fmt: skip
        store.close()
        del store
        tokens = Path(tmp) / "tokens"
        tokens.write_text(f"{TOKEN} capture bench\n{READ} read reader\n")
        tokens.chmod(0o600)
        port = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PROVML_QUERY_TIMEOUT": str(args.timeout),
               "PROVML_MAX_REQUEST_BYTES": str(1 << 20)}  # fmt: skip
        bin_ = Path(sys.executable).parent / "provml"
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([str(bin_), "serve", "--port", str(port), "--data-dir",
                                 str(data), "--tokens-file", str(tokens)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if requests.get(url + "/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            idle = {"rss_mib_idle": round(rss_mib(proc.pid), 1)}
            results = {
                "machine": {
                    "cores": os.cpu_count(),
                    "triples": args.triples,
                    "query_timeout_s": args.timeout,
                },
                "idle": idle,
                "runaway_count_x8": queries(url, proc.pid, RUNAWAY, 8),
                "memory_hoarder_x4": queries(url, proc.pid, HOARDER, 4),
                "bodies": body_attacks(port, proc.pid),
                "slow_headers_x150": slow_headers(port, url, proc.pid),
            }
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    print(json.dumps(results, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
