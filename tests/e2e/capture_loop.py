"""A workflow that captures tasks in a loop, for the fault tests.

usage: python capture_loop.py MODE TARGET TASKS SLEEP [SPOOL]
MODE disk (TARGET a directory) or http (TARGET a URL, SPOOL the spool directory).
Every 10 tasks it prints "<monotonic time> <last record number submitted>".
At the end it flushes and prints "done <json stats>".
"""

from __future__ import annotations

import json
import sys
import time

import capture_lib as cl


def main() -> None:
    mode, target, tasks, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if mode == "disk":
        cl.init(mode="disk", path=target, flush_interval=0.2)
    else:
        cl.init(url=target, mode="http", path=sys.argv[5], flush_interval=0.1)
    wf = cl.workflow("loop").start()
    for i in range(tasks):
        with wf.task("step", params={"i": i}) as t:
            t.metric("loss", 1 / (i + 1))
        if i % 10 == 9:
            print(time.monotonic(), t.n + 1, flush=True)  # +1: the metric's number
        if sleep:
            time.sleep(sleep)
    wf.end()
    ok = cl.flush(60)
    print("done", json.dumps({"flushed": ok, **cl.stats()}), flush=True)


if __name__ == "__main__":
    main()
