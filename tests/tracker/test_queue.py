"""The tracker's durable queue and its forwarder."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from provml.core.errors import UpstreamError, ValidationError
from tests.conftest import full_records, make_batch
from tracker.errors import QueueFull
from tracker.forward import Forwarder
from tracker.queue import DurableQueue
from tracker.service import Tracker


def test_put_next_ack_and_restart(tmp_path: Path) -> None:
    q = DurableQueue(str(tmp_path))
    for i in range(5):
        q.put(b'{"i": %d}' % i)
    first = q.next(timeout=1)
    assert first is not None and first.body == b'{"i": 0}' and first.seq == 1
    q.ack(first)
    second = q.next(timeout=1)
    assert second is not None and second.body == b'{"i": 1}'
    q.close()  # crash-free stop with 4 undelivered; the second was read but not acked
    again = DurableQueue(str(tmp_path))
    assert again.depth == 4
    bodies = []
    while (entry := again.next(timeout=0.1)) is not None:
        bodies.append(entry.body)
        assert entry.seq == 0  # from before this process: nobody waits for them
        again.ack(entry)
    assert bodies == [b'{"i": %d}' % i for i in range(1, 5)]
    assert again.depth == 0 and again.bytes == 0
    seq = again.put(b"{}")
    assert seq == 1 and again.next(timeout=1).seq == 1  # type: ignore[union-attr]


def test_a_torn_append_is_cut_off(tmp_path: Path) -> None:
    q = DurableQueue(str(tmp_path))
    q.put(b'{"ok": 1}')
    q.close()
    segment = next(tmp_path.glob("q-*.jsonl"))
    with segment.open("ab") as f:
        f.write(b'{"torn": ')  # a crash in the middle of an append: never acknowledged
    again = DurableQueue(str(tmp_path))
    assert again.depth == 1
    assert again.next(timeout=1).body == b'{"ok": 1}'  # type: ignore[union-attr]
    assert again.next(timeout=0.05) is None or again.depth == 1


def test_segments_roll_and_are_deleted_once_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DurableQueue, "SEGMENT_BYTES", 100)
    q = DurableQueue(str(tmp_path))
    for i in range(30):
        q.put(b'{"n": %d, "pad": "xxxxxxxxxxxxxxxxxxxx"}' % i)
    assert len(list(tmp_path.glob("q-*.jsonl"))) > 5
    got = []
    while (entry := q.next(timeout=0.1)) is not None:
        got.append(orjson.loads(entry.body)["n"])
        q.ack(entry)
    assert got == list(range(30))
    assert len(list(tmp_path.glob("q-*.jsonl"))) == 1  # only the one being written


def test_a_full_queue_refuses(tmp_path: Path) -> None:
    q = DurableQueue(str(tmp_path), max_bytes=50)
    q.put(b"x" * 30)
    with pytest.raises(QueueFull):
        q.put(b"y" * 30)
    entry = q.next(timeout=1)
    assert entry is not None
    q.ack(entry)
    q.put(b"y" * 30)  # room again


class Flaky(Forwarder):
    """Fails ``failures`` times, then stores what it is given."""

    def __init__(self, failures: int, refuse: bool = False) -> None:
        self.failures = failures
        self.refuse = refuse
        self.got: list[dict[str, Any]] = []

    def forward(self, batch: Any) -> dict[str, Any]:
        raise NotImplementedError

    def forward_body(self, body: bytes) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise UpstreamError("manager down")
        if self.refuse:
            raise ValidationError("no")
        self.got.append(orjson.loads(body))
        return {"triples": 1}


def test_tracker_acks_durably_and_forwards_with_retries(tmp_path: Path) -> None:
    forwarder = Flaky(failures=3)
    tracker = Tracker(forwarder, DurableQueue(str(tmp_path)), ack_wait=5)
    batch = make_batch(full_records())
    answer, status = tracker.ingest(orjson.dumps(batch))
    assert status == 200 and answer["status"] == "stored"
    assert [b["batch"] for b in forwarder.got] == [batch["batch"]]
    assert tracker.counts["forward_retries"] == 3
    assert all("id" in r for r in forwarder.got[0]["records"])  # resolved before queueing
    assert tracker.close(timeout=5)


def test_tracker_answers_202_when_delivery_is_slow_and_resumes_after_restart(
    tmp_path: Path,
) -> None:
    forwarder = Flaky(failures=10**9)
    tracker = Tracker(forwarder, DurableQueue(str(tmp_path)), ack_wait=0.2)
    _, status = tracker.ingest(orjson.dumps(make_batch(full_records())))
    assert status == 202
    assert not tracker.close(timeout=0.2)  # stopped with the batch still queued
    healthy = Flaky(failures=0)
    restarted = Tracker(healthy, DurableQueue(str(tmp_path)), ack_wait=0.2)
    deadline = time.monotonic() + 5
    while not healthy.got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(healthy.got) == 1
    assert restarted.close(timeout=5)


def test_a_refused_batch_is_kept_aside_and_does_not_block(tmp_path: Path) -> None:
    forwarder = Flaky(failures=0, refuse=True)
    tracker = Tracker(forwarder, DurableQueue(str(tmp_path)), ack_wait=2)
    tracker.ingest(orjson.dumps(make_batch(full_records())))
    assert tracker.counts["forward_errors"] == 1
    assert (tmp_path / "refused.jsonl").read_text().count("\n") == 2  # the error, the batch
    assert tracker.queue is not None and tracker.queue.depth == 0
    tracker.close(timeout=1)


def test_many_threads_ingest_concurrently(tmp_path: Path) -> None:
    forwarder = Flaky(failures=0)
    tracker = Tracker(forwarder, DurableQueue(str(tmp_path)), ack_wait=10)
    batches = [make_batch(full_records()) for _ in range(40)]

    def send(chunk: list[dict[str, Any]]) -> None:
        for b in chunk:
            assert tracker.ingest(orjson.dumps(b))[1] == 200

    threads = [threading.Thread(target=send, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(b["batch"] for b in forwarder.got) == sorted(b["batch"] for b in batches)
    tracker.close(timeout=5)


def test_readyz_and_metrics(tmp_path: Path) -> None:
    from provml.server import build_app, close_app

    app = build_app(store="memory:", queue_dir=str(tmp_path / "queue"))
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    resp = client.post("/api/v1/batches", data=orjson.dumps(make_batch(full_records())),
                       content_type="application/json")  # fmt: skip
    assert resp.status_code == 200 and resp.json["status"] == "stored"
    text = client.get("/metrics").get_data(as_text=True)
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["provml_tracker_batches_received_total"] == "1"
    assert lines["provml_tracker_batches_forwarded_total"] == "1"
    assert lines["provml_tracker_queue_depth"] == "0"
    assert float(lines["provml_manager_quads_total"]) > 100
    assert lines["provml_manager_lineage_index_complete"] == "1"  # a store filled from empty
    assert "# TYPE provml_tracker_queue_depth gauge" in text
    close_app(app, timeout=5)
    assert client.get("/readyz").status_code == 503
    resp = client.post("/api/v1/batches", data=orjson.dumps(make_batch([])),
                       content_type="application/json")  # fmt: skip
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    from provml.server import build_app

    app = build_app(store="memory:", queue_dir=str(tmp_path / "queue"))
    tracker = app.extensions["provml.tracker"]
    tracker.queue.max_bytes = 10
    resp = app.test_client().post("/api/v1/batches", data=orjson.dumps(make_batch(full_records())),
                                  content_type="application/json")  # fmt: skip
    assert resp.status_code == 503 and resp.json["error"] == "queue_full"
    assert resp.headers["Retry-After"] == "1"
    assert app.extensions["provml.store"].count() == 0
    tracker.close(timeout=1)


def test_a_failed_append_leaves_a_clean_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os as os_module

    q = DurableQueue(str(tmp_path))
    q.put(b'{"ok": 1}')
    real_write = os_module.write
    calls = {"n": 0}

    def half_then_fail(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os_module, "write", half_then_fail)
    with pytest.raises(QueueFull):
        q.put(b'{"lost": "this one was never acknowledged"}')
    monkeypatch.setattr(os_module, "write", real_write)
    q.put(b'{"ok": 2}')
    got = []
    while (entry := q.next(timeout=0.1)) is not None:
        got.append(orjson.loads(entry.body))
        q.ack(entry)
    assert got == [{"ok": 1}, {"ok": 2}]


def test_one_tracker_per_queue_directory(tmp_path: Path) -> None:
    from provml.core.errors import ConfigError

    first = DurableQueue(str(tmp_path / "q"))
    with pytest.raises(ConfigError, match="in use by another tracker"):
        DurableQueue(str(tmp_path / "q"))
    first.close()
    DurableQueue(str(tmp_path / "q")).close()  # free again once closed
