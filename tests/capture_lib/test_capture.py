"""capture_lib: the API, the worker, disk-only mode, and never hurting the workflow."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib import api
from capture_lib.transport.base import Transport
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def read_records(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not path.exists():
        return records
    for f in expand([str(path)]):
        for line in read_lines(f):
            assert line.error is None, line.error
            records.extend(parse_batch(line.body).records)
    return records


def sample_workflow(tmp: Path) -> cl.Task:
    (tmp / "raw.csv").write_text("a,b\n1,2\n")
    (tmp / "clean.csv").write_text("a,b\n1,2\n")
    (tmp / "model.pkl").write_bytes(b"\x80model")
    with cl.workflow("credit-scoring", params={"owner": "risk-team"}) as wf:
        with wf.task(
            "clean", used={"raw": cl.file(tmp / "raw.csv")}, params={"drop_na": True}
        ) as t:
            t.generated(clean=cl.file(tmp / "clean.csv"))
        with wf.task(
            "train",
            stage="training",
            used={"data": cl.file(tmp / "clean.csv")},
            params={"lr": 0.1, "epochs": 3},
        ) as t:
            for epoch in range(3):
                with t.section("epoch", index=epoch) as s:
                    s.metric("loss", 0.5 / (epoch + 1))
            t.generated(model=cl.model(tmp / "model.pkl", framework="sklearn"))
        with wf.task(
            "predict",
            stage="inference",
            used={"model": cl.model(tmp / "model.pkl"), "input": {"x": [1, 2]}},
        ) as p:
            p.generated(prediction={"y": 1})
    return p


def test_disk_mode_writes_valid_batches(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    sample_workflow(tmp_path)
    assert cl.flush()
    records = read_records(tmp_path / "logs")
    kinds = [r["kind"] for r in records]
    assert kinds.count("task_start") == 3 and kinds.count("section_start") == 3
    assert kinds.count("metric") == 3 and kinds[0] == "workflow_start"
    assert cl.stats()["records_sent"] == len(records) == 17
    assert cl.stats()["lost"] == {}
    train = next(r for r in records if r["kind"] == "task_start" and r["plan"][1] == "train")
    assert train["used"]["data"]["@data"] == "file"
    assert len(train["used"]["data"]["sha256"]) == 64


def test_disk_mode_writes_as_it_goes(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"), flush_interval=0.05)
    with cl.workflow("long-job") as wf:
        with wf.task("step"):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(read_records(tmp_path / "logs")) < 3:
            time.sleep(0.05)
        # the workflow is still running, nothing flushed by hand: already on disk
        assert len(read_records(tmp_path / "logs")) == 3


def test_failures_are_recorded_and_propagate(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with pytest.raises(ZeroDivisionError), cl.workflow("w") as wf, wf.task("boom"):
        1 / 0  # noqa: B018
    cl.flush()
    ends = [r for r in read_records(tmp_path / "logs") if r["kind"].endswith("_end")]
    assert {r["status"] for r in ends} == {"failed"}
    assert all("ZeroDivisionError" in r["error"] for r in ends)


def test_capture_errors_never_reach_the_workflow(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w") as wf, wf.task("t", used={"f": cl.file(tmp_path / "missing")}) as t:
        t.metric("not a number", "abc")  # type: ignore[arg-type]
        t.metric("nan", float("nan"))
        t.generated(obj={1, 2})  # not JSON: sent as its str()
    cl.flush()
    records = read_records(tmp_path / "logs")
    used = next(r for r in records if r["kind"] == "task_start")["used"]["f"]
    assert used["@data"] == "missing" and "sha256" not in used  # never named by content
    assert used["error"] and used["path"].endswith("missing")
    metrics = {r["name"]: r["value"] for r in records if r["kind"] == "metric"}
    assert metrics == {"nan": "NaN"}
    assert cl.stats()["lost"] == {"invalid_value": 1, "unreadable_input": 1}


def test_off_and_disabled_capture_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cl.init(mode="off", path=str(tmp_path / "a"))
    sample_workflow(tmp_path)
    assert cl.flush() and not (tmp_path / "a").exists()
    monkeypatch.setenv("PROVML_DISABLED", "1")
    cl.init(mode="disk", path=str(tmp_path / "b"))
    sample_workflow(tmp_path)
    assert cl.flush() and not (tmp_path / "b").exists()
    assert cl.stats()["mode"] == "off"


class SlowTransport(Transport):
    """Delivers only once its gate opens, so the queue fills up."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.gate = threading.Event()

    def send(self, batch: dict[str, Any], body: bytes) -> None:
        self.gate.wait(10)
        self.records.extend(batch["records"])


def slow_client(policy: str, tmp_path: Path, **kw: Any) -> SlowTransport:
    client = cl.init(
        mode="disk", path=str(tmp_path / "logs"), queue_size=50, queue_policy=policy, **kw
    )
    slow = SlowTransport()
    client.worker.transport = slow
    return slow


def test_drop_policy_counts_exactly_and_reports_the_loss(tmp_path: Path) -> None:
    slow = slow_client("drop", tmp_path)
    wf = cl.workflow("w").start()
    for _ in range(499):
        wf.metric("m", 1.0)
    slow.gate.set()
    assert not cl.flush(10)  # delivered what it could: dropped records make it False
    lost = cl.stats()["lost"]["queue_overflow"]
    assert lost > 0
    captured = [r for r in slow.records if r[0] != "capture_report"]
    assert len(captured) + lost == 500
    reports = [r for r in slow.records if r[0] == "capture_report"]
    assert [r[3] for r in reports] == [{"queue_overflow": lost}]  # reported once, at flush
    assert cl.flush(10) and len(slow.records) == len(captured) + 1  # not again


def test_spill_policy_loses_nothing(tmp_path: Path) -> None:
    slow = slow_client("spill", tmp_path)
    wf = cl.workflow("w").start()
    for i in range(2000):
        wf.metric("m", i)
    slow.gate.set()
    assert cl.flush(10)
    stats = cl.stats()
    on_disk = read_records(tmp_path / "logs")  # spilled by the caller's thread
    assert stats["lost"] == {} and stats["records_spilled"] == len(on_disk) > 0
    assert len(slow.records) + len(on_disk) == 2001
    numbers = sorted([r[1] for r in slow.records] + [r["n"] for r in on_disk])
    assert numbers == list(range(1, 2002))


def test_block_policy_waits_then_gives_up(tmp_path: Path) -> None:
    slow = slow_client("block", tmp_path, block_timeout=5.0)
    wf = cl.workflow("w").start()
    threading.Timer(0.2, slow.gate.set).start()
    started = time.monotonic()
    for i in range(200):
        wf.metric("m", i)
    assert time.monotonic() - started >= 0.15  # the caller waited for room
    assert cl.flush(10) and cl.stats()["lost"] == {}
    assert len(slow.records) == 201
    cl.shutdown()
    slow = slow_client("block", tmp_path, block_timeout=0.01)
    wf = cl.workflow("w").start()
    for i in range(100):
        wf.metric("m", i)
    slow.gate.set()
    assert not cl.flush(10)
    lost = cl.stats()["lost"]["queue_timeout"]
    captured = [r for r in slow.records if r[0] != "capture_report"]
    assert lost > 0 and len(captured) + lost == 101


def test_resources_are_measured_by_time_not_by_task_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A task is measured when RESOURCE_INTERVAL (1 ms) passed since the last measured
    # task started: the first one, every one after a slow one, always with
    # resources=True, never with resources=False; no state is kept per task name.
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w") as wf:
        with wf.task("first"):
            pass
        for name in ("slow-1", "slow-2"):
            with wf.task(name):
                sum(range(200_000))
        with wf.task("unmeasured", resources=False):
            pass
        with wf.task("forced", resources=True):
            pass
    cl.flush()
    ends = [r for r in read_records(tmp_path / "logs") if r["kind"] == "task_end"]
    measured = {r["plan"][1] for r in ends if "resources" in r}
    assert {"first", "slow-2", "forced"} <= measured  # slow-1: as the clock decides
    assert "unmeasured" not in measured
    slow = next(r for r in ends if r["plan"][1] == "slow-2")["resources"]
    assert slow["cpu_seconds"] > 0 and slow["max_rss_kib"] > 1000

    # a stream of short tasks with distinct names: one measured per interval, not each
    monkeypatch.setattr(api, "RESOURCE_INTERVAL", 3600.0)
    cl.init(mode="disk", path=str(tmp_path / "more"))
    with cl.workflow("w") as wf:
        for i in range(100):
            with wf.task(f"chunk-{i}"):
                pass
        with wf.task("forced", resources=True):
            pass
    cl.flush()
    ends = [r for r in read_records(tmp_path / "more") if r["kind"] == "task_end"]
    assert [r["plan"][1] for r in ends if "resources" in r] == ["chunk-0", "forced"]


def test_many_threads_lose_nothing(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"), flush_interval=0.01, batch_size=97)
    wf = cl.workflow("threads").start()

    def work(i: int) -> None:
        for j in range(250):
            with wf.task(f"t{i}", params={"j": j}) as t:
                t.metric("x", j)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wf.end()
    assert cl.flush(20)
    records = read_records(tmp_path / "logs")
    assert len(records) == 8 * 250 * 3 + 2
    assert len({(r["kind"], r["n"]) for r in records}) == len(records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_is_its_own_session(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("parent"):
        pass
    cl.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with cl.workflow("child"):
                pass
            cl.flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    sessions: dict[str, set[str]] = {}
    for f in expand([str(tmp_path / "logs")]):
        for line in read_lines(f):
            batch = parse_batch(line.body)
            for r in batch.records:
                if r["kind"] == "workflow_start":
                    sessions.setdefault(r["name"], set()).add(batch.session)
    assert set(sessions) == {"parent", "child"}
    assert sessions["parent"].isdisjoint(sessions["child"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_task_run_in_a_forked_child_links_to_the_parents_workflow(tmp_path: Path) -> None:
    from provml.core.resolve import resolve_batch

    cl.init(mode="disk", path=str(tmp_path / "logs"))
    wf = cl.workflow("parent").start()
    cl.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with wf.task("in-child") as t:
                t.metric("m", 1)
            cl.flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    wf.end()
    cl.flush()
    resolved = []
    for f in expand([str(tmp_path / "logs")]):
        for line in read_lines(f):
            resolved.extend(resolve_batch(parse_batch(line.body)).records)
    start = next(r for r in resolved if r["kind"] == "workflow_start")
    task = next(r for r in resolved if r["kind"] == "task_start")
    metric = next(r for r in resolved if r["kind"] == "metric")
    assert task["parent_id"] == start["id"] == wf.iri
    assert metric["parent_id"] == task["id"] != start["id"]
    assert task["id"].split("/")[-1][:23] != start["id"].split("/")[-1][:23]  # child session


def test_segments_roll_and_never_mix_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capture_lib.transport.file import FileTransport

    monkeypatch.setattr(FileTransport, "SEGMENT_BYTES", 2000)
    cl.init(mode="disk", path=str(tmp_path / "logs"), batch_size=10)
    wf = cl.workflow("w").start()
    for i in range(200):
        wf.metric("m", i)
        if i % 20 == 0:
            cl.flush()
    wf.end()
    cl.flush()
    files = expand([str(tmp_path / "logs")])
    assert len(files) > 3
    assert all(os.path.basename(f).startswith(cl.stats()["session"]) for f in files)
    assert len(read_records(tmp_path / "logs")) == 202


def test_file_hashes_are_cached_and_directories_hashed(tmp_path: Path) -> None:
    from capture_lib import refs

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("A")
    (tmp_path / "d" / "b.txt").write_text("B")
    first = cl.file(tmp_path / "d")
    assert first["@data"] == "directory" and first["size"] == 2
    calls = []
    real_open = open
    monkey = pytest.MonkeyPatch()
    monkey.setattr("builtins.open", lambda *a, **k: calls.append(a) or real_open(*a, **k))
    try:
        assert cl.file(tmp_path / "d")["sha256"] == first["sha256"]
    finally:
        monkey.undo()
    assert calls == []  # served from the (path, size, mtime, inode) cache
    (tmp_path / "d" / "b.txt").write_text("changed")
    assert cl.file(tmp_path / "d")["sha256"] != first["sha256"]
    assert refs.sha256_file(str(tmp_path / "d" / "a.txt"))[0] == (
        "559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd"
    )


def test_parameters_are_captured_as_they_were(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    hp = {"lr": 0.1}
    with cl.workflow("w") as wf:
        for lr in (0.1, 0.2, 0.3):
            hp["lr"] = lr
            with wf.task("train", params=hp):
                pass
        wf.task("never-started").end()  # recorded with a start and an end
    cl.flush()
    records = read_records(tmp_path / "logs")
    starts = [r for r in records if r["kind"] == "task_start"]
    assert [r["params"]["lr"] for r in starts if r["plan"][1] == "train"] == [0.1, 0.2, 0.3]
    assert [r["plan"][1] for r in records if r["kind"] == "task_end"][-1] == "never-started"
    assert starts[-1]["plan"][1] == "never-started"
    assert cl.stats()["lost"] == {}


def test_inference_keeps_a_digest_of_inputs_by_default(tmp_path: Path) -> None:
    from provml.core.ids import value_sha256

    cl.init(mode="disk", path=str(tmp_path / "logs"))
    (tmp_path / "m.pkl").write_bytes(b"m")
    model = cl.model(tmp_path / "m.pkl")
    with cl.workflow("serve"):
        p = cl.inference(model=model, inputs={"ssn": "123-45-6789"}, outputs={"y": 1})
        cl.inference(model=model, inputs={"x": 2}, outputs={"y": 0}, store_inputs=True)
        cl.inference(model=model, inputs=p, outputs={"z": 3})  # composed: uses the prediction
    cl.flush()
    starts = [r for r in read_records(tmp_path / "logs") if r["kind"] == "task_start"]
    assert starts[0]["used"]["input"] == {
        "@data": "value",
        "sha256": value_sha256({"ssn": "123-45-6789"}),
    }
    assert (
        "123-45-6789"
        not in (tmp_path / "logs").joinpath(next((tmp_path / "logs").iterdir()).name).read_text()
    )
    assert starts[1]["used"]["input"] == {"x": 2}
    assert starts[2]["used"]["input"] == p and p is not None
    assert p["@entity"].endswith("/generated/prediction")


def test_awkward_values_never_cost_a_batch(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    (tmp_path / "d.csv").write_text("x\n")
    with (
        cl.workflow("w") as wf,
        wf.task(
            "t",
            used={"d": cl.dataset(tmp_path / "d.csv", version=2), "none": cl.file(None)},  # type: ignore[arg-type]
            params={1: "int key"},  # type: ignore[dict-item]
        ) as t,
    ):
        t.metric("m", 1.0, step=3.0)  # type: ignore[arg-type]
    assert cl.flush()
    records = read_records(tmp_path / "logs")  # every batch valid for the tracker
    start = next(r for r in records if r["kind"] == "task_start")
    assert start["used"]["d"]["version"] == "2" and start["params"] == {"1": "int key"}
    assert "error" in start["used"]["none"]
    assert next(r for r in records if r["kind"] == "metric")["step"] == 3
    assert cl.stats()["lost"] == {"unreadable_input": 1}  # cl.file(None): said, not hidden
