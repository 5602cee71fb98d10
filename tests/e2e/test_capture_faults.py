"""capture_lib under faults, with real processes: SIGKILL of the workflow, the tracker
killed and restarted mid-run, many processes capturing at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from tests.conftest import Server, provml_cmd

pytestmark = pytest.mark.integration
LOOP = Path(__file__).with_name("capture_loop.py")
FLUSH_INTERVAL = 0.2  # capture_loop.py's, in disk mode


def capture_forever(logs: Path) -> subprocess.Popen[str]:
    """A disk-mode workflow that captures until it is killed."""
    return subprocess.Popen(
        [sys.executable, str(LOOP), "disk", str(logs), "1000000", "0.0005"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def on_disk(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    torn: list[str] = []
    for f in expand([str(path)]):
        for line in read_lines(f):
            if line.error:
                torn.append(line.error)
            else:
                records.extend(parse_batch(line.body).records)
    return records, torn


def count(server: Server, where: str) -> int:
    rows = server.sparql(f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {where} }}")
    return int(rows[0]["n"])


def progress_line(proc: subprocess.Popen[str]) -> tuple[float, int]:
    """The workflow's next "<monotonic time> <last record number>" line."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:  # it died: say why rather than fail on an empty line
        raise AssertionError(f"the capturing process exited with {proc.wait()}")
    t, n = line.split()
    return float(t), int(n)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path, seed: int) -> None:
    logs = tmp_path / "logs"
    proc = capture_forever(logs)
    assert proc.stdout is not None
    progress: list[tuple[float, int]] = []
    kill_after = 1.0 + random.Random(seed).random()
    # Kill once the workflow has captured for kill_after seconds by its own account
    # (a loaded machine may start it late) and at least one of its progress lines is
    # older than a flush interval: the records up to that line are the ones the check
    # below says must be on disk. Progress comes from the workflow, not from our clock.
    first = progress_line(proc)
    progress.append(first)
    while not (
        progress[-1][0] - first[0] >= kill_after
        and progress[0][0] <= time.monotonic() - FLUSH_INTERVAL - 0.1
    ):
        progress.append(progress_line(proc))
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    records, torn = on_disk(logs)
    keys = [(r["kind"], r["n"]) for r in records]
    assert len(keys) == len(set(keys)), "a record was written twice"
    numbers = {r["n"] for r in records}  # a task's start and end share its number
    # everything captured more than one flush interval before the kill is on disk
    safe = max(n for t, n in progress if t <= killed_at - FLUSH_INTERVAL - 0.1)
    assert set(range(1, safe + 1)) <= numbers
    submitted = progress[-1][1]
    tasks_done = sum(1 for k, _ in keys if k == "task_end")
    print(f"\nSIGKILL after {kill_after:.2f}s: {submitted // 2} tasks captured (at least), "
          f"{tasks_done} complete on disk, {max(0, submitted // 2 - tasks_done)} lost, "
          f"{len(torn)} torn lines")  # fmt: skip
    assert len(torn) <= 1


def test_killed_workflow_logs_are_ingestible(tmp_path: Path, server: Server) -> None:
    logs = tmp_path / "logs"
    proc = capture_forever(logs)
    assert proc.stdout is not None
    for _ in range(50):
        progress_line(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    records, torn = on_disk(logs)
    # the kill may tear the last line: ingest loads the rest, and says so unless asked
    result = subprocess.run(provml_cmd("ingest", "--url", server.url, "--quiet", str(logs)),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == (1 if torn else 0), result.stderr
    partial = subprocess.run(
        provml_cmd("ingest", "--allow-partial", "--url", server.url, "--quiet", str(logs)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert partial.returncode == 0, partial.stderr
    assert (f"skipped {len(torn)} line (torn_line: 1)" in partial.stdout) == bool(torn)
    starts = {r["n"] for r in records if r["kind"] == "task_start"}
    metrics = {r["n"] for r in records if r["kind"] == "metric"}
    assert count(server, "?x a provml:DataTransformationExecution") == len(starts)
    assert count(server, "?x a provml:ModelEvaluation") == len(metrics)


def test_tracker_killed_and_restarted_mid_run(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    tasks = 400
    spool = tmp_path / "spool"
    proc = subprocess.Popen(
        [sys.executable, str(LOOP), "http", server.url, str(tasks), "0.01", str(spool)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(8):  # ~80 tasks captured while the tracker is up
        proc.stdout.readline()
    server.kill()
    deadline = time.monotonic() + 20
    while not list(spool.glob("*.jsonl")) and time.monotonic() < deadline:
        proc.stdout.readline()  # capturing goes on while the tracker is down
    assert list(spool.glob("*.jsonl")), "nothing was spooled while the tracker was down"
    for _ in range(5):
        proc.stdout.readline()
    port = server.port
    server = Server.__new__(Server)
    Server.__init__(server, tmp_path / "data", _port=port)
    try:
        out, _ = proc.communicate(timeout=120)
        stats = json.loads(out.strip().splitlines()[-1].split(" ", 1)[1])
        assert stats["flushed"] and stats["lost"] == {}
        assert stats["spilled_to_disk"] > 0 and stats["resent_batches"] > 0
        assert count(server, "?x a provml:DataTransformationExecution") == tasks
        assert count(server, "?x a provml:ModelEvaluation") == tasks
        assert count(server, "?x a provml:WorkflowExecution ; prov:endedAtTime ?e") == 1
        assert not list(spool.glob("*.jsonl")), "spooled segments are deleted once re-sent"
    finally:
        assert server.stop() == 0


def _capture_in_process(path: str, index: int, tasks: int) -> None:
    import threading

    import capture_lib as cl

    cl.init(mode="disk", path=path, flush_interval=0.05)
    wf = cl.workflow(f"proc-{index}").start()

    def work() -> None:
        for i in range(tasks):
            with wf.task("t", params={"i": i}) as t:
                t.metric("m", i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wf.end()
    cl.shutdown(30)


def test_many_processes_and_threads_capture_exactly(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_capture_in_process, args=(str(tmp_path), i, 500))
             for i in range(4)]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    records, torn = on_disk(tmp_path)
    assert not torn
    assert len(records) == 4 * (4 * 500 * 3 + 2)
    pids = {os.path.basename(f).rsplit("-", 2)[-2] for f in expand([str(tmp_path)])}
    assert len(pids) == 4  # each process its own segments


def test_exit_without_flush_loses_nothing(tmp_path: Path) -> None:
    code = (
        "import capture_lib as cl\n"
        f"cl.init(mode='disk', path={str(tmp_path)!r}, flush_interval=60)\n"
        "with cl.workflow('w') as wf:\n"
        "    for i in range(1000):\n"
        "        with wf.task('t') as t:\n"
        "            t.metric('m', i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    records, torn = on_disk(tmp_path)
    assert not torn and len(records) == 3002  # the atexit flush wrote them all
