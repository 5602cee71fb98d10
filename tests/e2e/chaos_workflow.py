"""A workflow that captures until told to stop, keeping a journal of every batch.

usage: python chaos_workflow.py TRACKER_URL|REDIS_URL SPOOL_DIR JOURNAL STOP_FILE [TASKS]
(a redis:// URL: capture in broker mode, tests/broker); stops at STOP_FILE or TASKS tasks.
The journal holds every batch the worker produced (whether delivered at once, spooled,
or re-sent later), so a test can compute exactly what the graph must hold.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import capture_lib as cl
from capture_lib.transport.base import Transport


class Tee(Transport):
    def __init__(self, inner: Transport, journal: str) -> None:
        self.inner = inner
        self.journal = open(journal, "ab")  # noqa: SIM115 - closed in close()
        self.lock = threading.Lock()

    def send(self, batch: dict[str, Any], body: bytes) -> None:
        with self.lock:
            self.journal.write(body + b"\n")
            self.journal.flush()
        self.inner.send(batch, body)

    def tick(self, force: bool = False) -> None:
        self.inner.tick(force)

    def __getattr__(self, name: str) -> Any:  # spilled, resent_batches … for cl.stats()
        return getattr(self.inner, name)

    def sync(self) -> None:
        self.inner.sync()

    def close(self) -> None:
        self.inner.close()
        self.journal.close()


def main() -> None:
    url, spool, journal, stop = sys.argv[1:5]
    tasks = int(sys.argv[5]) if len(sys.argv) > 5 else None
    mode = "broker" if url.startswith(("redis://", "rediss://")) else "http"
    client = cl.init(url=url, mode=mode, path=spool, flush_interval=0.1)
    client.worker.transport = Tee(client.worker.transport, journal)
    i = 0
    with cl.workflow("chaos", params={"pid": os.getpid()}) as wf:
        while not os.path.exists(stop) and (tasks is None or i < tasks):
            with wf.task("step", stage="training", params={"i": i}) as t:
                with t.section("epoch", index=0) as s:
                    s.metric("loss", 1 / (i + 1))
                t.generated(out={"i": i})
            i += 1
            time.sleep(0.005)
    ok = cl.flush(120)  # delivers what is queued and re-sends what was spooled
    print(json.dumps({"tasks": i, "flushed": ok, **cl.stats()}), flush=True)


if __name__ == "__main__":
    main()
