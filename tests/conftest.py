"""Shared fixtures: batches, stores, and real provml servers as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provml.core.ids import new_session_id

ROOT = Path(__file__).resolve().parent.parent
#: the shared data beside the checkout (``PROVML_TEST_SHARED`` elsewhere, as a test of
#: collection without it does)
SHARED = Path(os.environ.get("PROVML_TEST_SHARED") or ROOT.parent / "shared")
CORPUS = SHARED / "corpus"


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip where ``path`` (in ../shared, beside the checkout) is not there: collection
    never reads a missing corpus, and says why the tests did not run."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"{path} is not there (../shared/corpus beside the checkout)"
    )


BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provml_cmd(*args: str) -> list[str]:
    """The installed ``provml`` command (``python -m`` would put the working directory,
    with data directories named like our packages, first on sys.path)."""
    script = BIN / "provml"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "provml.cli", *args]


class Server:
    """A ``provml serve`` process on a free loopback port."""

    def __init__(self, data_dir: Path, *extra: str, _port: int | None = None) -> None:
        self.port = _port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir.parent / f"server-{self.port}-{time.monotonic_ns()}.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            provml_cmd("serve", "--port", str(self.port), "--data-dir", str(data_dir), *extra),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=data_dir.parent,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # never leave a process behind that nobody can reach
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log_file.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log_file.closed:
            self._log_file.close()
        return int(self.proc.returncode)

    def sparql(self, query: str) -> list[dict[str, Any]]:
        resp = requests.post(
            self.url + "/sparql",
            data={"query": query},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        rows: list[dict[str, Any]] = [
            {k: v["value"] for k, v in b.items()} for b in resp.json()["results"]["bindings"]
        ]
        return rows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def make_batch(records: list[dict[str, Any]], session: str | None = None) -> dict[str, Any]:
    return {
        "provml": 1,
        "batch": os.urandom(16).hex(),
        "session": session or new_session_id(),
        "records": records,
    }


SHA_A = "a" * 64
SHA_M = "b" * 64


def full_records(t0: float = 1_700_000_000.0) -> list[dict[str, Any]]:
    """One workflow with every record kind, stage and kind of value."""
    return [
        {
            "kind": "workflow_start",
            "n": 1,
            "name": "wf",
            "time": t0,
            "params": {"owner": "me"},
            "user": "alice",
            "env": {"hostname": "h", "pid": 1, "python": "3.11", "extra": "x"},
        },
        {
            "kind": "task_start",
            "n": 2,
            "parent": 1,
            "plan": ["wf", "clean"],
            "time": t0 + 1,
            "params": {"drop_na": True},
            "used": {"raw": {"@data": "file", "sha256": SHA_A, "path": "raw.csv", "size": 10}},
        },
        {
            "kind": "task_end",
            "n": 2,
            "plan": ["wf", "clean"],
            "time": t0 + 2,
            "generated": {"clean": {"@data": "dataset", "sha256": "c" * 64, "split": "train"}},
        },
        {
            "kind": "task_start",
            "n": 3,
            "parent": 1,
            "plan": ["wf", "train"],
            "time": t0 + 3,
            "stage": "training",
            "params": {"lr": 0.1, "epochs": 2, "layers": [8, 4]},
            "used": {"data": {"@data": "dataset", "sha256": "c" * 64}},
        },
        {
            "kind": "section_start",
            "n": 4,
            "parent": 3,
            "plan": ["wf", "train", "epoch"],
            "time": t0 + 4,
            "index": 0,
        },
        {
            "kind": "metric",
            "n": 5,
            "parent": 4,
            "name": "loss",
            "value": 0.5,
            "time": t0 + 5,
            "step": 0,
        },
        {"kind": "metric", "n": 6, "parent": 4, "name": "loss", "value": "NaN", "time": t0 + 5},
        {"kind": "section_end", "n": 4, "plan": ["wf", "train", "epoch"], "time": t0 + 6},
        {
            "kind": "task_end",
            "n": 3,
            "plan": ["wf", "train"],
            "time": t0 + 7,
            "stage": "training",
            "generated": {
                "model": {
                    "@data": "model",
                    "sha256": SHA_M,
                    "framework": "sklearn",
                    "framework_version": "1.5",
                    "algorithm": "SGD",
                }
            },
        },
        {
            "kind": "task_start",
            "n": 7,
            "parent": 1,
            "plan": ["wf", "validate"],
            "time": t0 + 8,
            "stage": "validation",
            "used": {"model": {"@data": "model", "sha256": SHA_M}},
        },
        {
            "kind": "task_end",
            "n": 7,
            "plan": ["wf", "validate"],
            "time": t0 + 9,
            "status": "failed",
            "error": "ValueError: boom",
        },
        {
            "kind": "task_start",
            "n": 8,
            "parent": 1,
            "plan": ["wf", "evaluate"],
            "time": t0 + 8,
            "stage": "evaluation",
            "used": {"model": {"@data": "model", "sha256": SHA_M}},
        },
        {"kind": "metric", "n": 9, "parent": 8, "name": "accuracy", "value": 0.9, "time": t0 + 9},
        {"kind": "task_end", "n": 8, "plan": ["wf", "evaluate"], "time": t0 + 9},
        {
            "kind": "task_start",
            "n": 10,
            "parent": 1,
            "plan": ["wf", "predict"],
            "time": t0 + 10,
            "stage": "inference",
            "used": {"model": {"@data": "model", "sha256": SHA_M}, "input": {"x": [1, 2]}},
        },
        {
            "kind": "task_end",
            "n": 10,
            "plan": ["wf", "predict"],
            "time": t0 + 11,
            "stage": "inference",
            "generated": {"prediction": {"y": 1}},
        },
        {"kind": "workflow_end", "n": 1, "name": "wf", "time": t0 + 12},
        {
            "kind": "task_end",
            "n": 11,
            "plan": ["wf", "late"],
            "time": t0 + 13,
            "resources": {"cpu_seconds": 0.5, "max_rss_kib": 2048},
        },
        {"kind": "capture_report", "n": 12, "time": t0 + 13, "lost": {"queue_overflow": 3}},
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test given a real ``provml serve`` process (the ``server`` fixture) is an
    integration test even if its module forgot to say so: ``-m "not integration"`` runs
    the pure tests only."""
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
