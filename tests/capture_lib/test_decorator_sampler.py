"""``@cl.task`` and the background resource sampler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import capture_lib as cl
from tests.capture_lib.test_capture import read_records


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


@cl.task(stage="training", used=("data",), generated=("model", "score"))
def train(data: Path, lr: float = 0.1, epochs: int = 2, callback: object = None) -> tuple:
    return "weights", 0.9


def test_the_decorator_records_used_params_and_results(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    (tmp_path / "d.csv").write_text("x\n1\n")
    with cl.workflow("wf") as wf:
        assert train(tmp_path / "d.csv", lr=0.5, callback=print) == ("weights", 0.9)
    cl.flush()
    records = read_records(tmp_path / "logs")
    start = next(r for r in records if r["kind"] == "task_start")
    end = next(r for r in records if r["kind"] == "task_end")
    assert start["plan"] == ["wf", "train"] and start["stage"] == "training"
    assert start["used"]["data"]["@data"] == "file"  # a Path to a file, by content
    assert start["params"] == {"lr": 0.5, "epochs": 2}  # callback is not JSON-friendly
    assert end["generated"] == {"model": "weights", "score": 0.9}
    assert start["parent"] == wf.n


def test_the_decorator_outside_a_workflow_and_with_errors(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))

    @cl.task
    def double(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    assert double(3) == 6
    with pytest.raises(ValueError, match="negative"):
        double(-1)
    cl.current_workflow().end()
    cl.flush()
    records = read_records(tmp_path / "logs")
    wf = next(r for r in records if r["kind"] == "workflow_start")
    ends = [r for r in records if r["kind"] == "task_end"]
    assert wf["name"]  # the script's name
    assert [e.get("status", "finished") for e in ends] == ["finished", "failed"]
    assert ends[0]["generated"] == {"return": 6}


def test_the_sampler_records_cpu_and_memory(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("sampled", sample_interval=0.05):
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            sum(range(10_000))
    cl.flush()
    metrics = [r for r in read_records(tmp_path / "logs") if r["kind"] == "metric"]
    names = {m["name"] for m in metrics}
    assert {"system.cpu_percent", "system.rss_bytes"} <= names
    rss = [m["value"] for m in metrics if m["name"] == "system.rss_bytes"]
    assert len(rss) >= 3 and all(v > 10_000_000 for v in rss)
    cpu = [m["value"] for m in metrics if m["name"] == "system.cpu_percent"]
    assert max(cpu) > 10  # it was busy
    count = len(metrics)
    time.sleep(0.2)
    cl.flush()
    assert len([r for r in read_records(tmp_path / "logs") if r["kind"] == "metric"]) == count
