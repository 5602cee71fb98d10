"""Group commit: the forwarder delivers several queued batches at once, the manager
writes them in one transaction, and a refused group is split so that only the bad batch
is set aside."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from manager.app import create_app
from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.errors import ValidationError
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from tests.conftest import full_records, make_batch
from tracker.forward import Forwarder, HttpForwarder, InProcessForwarder
from tracker.queue import DurableQueue
from tracker.service import Tracker


def test_next_many_takes_in_order_within_limits_and_ack_many_moves_past(tmp_path: Path) -> None:
    q = DurableQueue(str(tmp_path))
    for i in range(10):
        q.put(b'{"i": %d}' % i)
    group = q.next_many(timeout=1, count=4)
    assert [e.body for e in group] == [b'{"i": %d}' % i for i in range(4)]
    assert [e.seq for e in group] == [1, 2, 3, 4]
    assert [e.body for e in q.next_many(timeout=1, count=100, size=15)] == [b'{"i": 0}']
    q.ack_many(group)
    assert q.depth == 6
    q.close()
    again = DurableQueue(str(tmp_path))  # the cursor was written past the group
    rest = again.next_many(timeout=1, count=100)
    assert [e.body for e in rest] == [b'{"i": %d}' % i for i in range(4, 10)]
    assert all(e.seq == 0 for e in rest)  # from before this process opened the queue
    again.ack_many(rest[:2])
    again.put(b'{"i": 10}')
    tail = again.next_many(timeout=1, count=100)
    assert [e.seq for e in tail] == [0, 0, 0, 0, 1]
    again.ack_many(tail)
    assert again.depth == 0
    again.close()


class Picky(Forwarder):
    """Refuses any group or batch holding a batch whose id is in ``bad``."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.groups: list[int] = []
        self.got: list[str] = []

    def forward(self, batch: Any) -> dict[str, Any]:
        raise NotImplementedError

    def forward_body(self, body: bytes) -> dict[str, Any]:
        return self.forward_group([body], [None])[0]

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        ids = [orjson.loads(b)["batch"] for b in bodies]
        self.groups.append(len(ids))
        if self.bad & set(ids):
            raise ValidationError("no")
        self.got.extend(ids)
        return [{"triples": 1} for _ in ids]


def test_a_refused_group_is_split_and_only_the_bad_batch_set_aside(tmp_path: Path) -> None:
    queue = DurableQueue(str(tmp_path))
    batches = [make_batch(full_records()) for _ in range(6)]
    for b in batches:  # queued before the forwarder starts: one group of six
        queue.put(orjson.dumps(b))
    bad = batches[2]["batch"]
    forwarder = Picky({bad})
    tracker = Tracker(forwarder, queue, ack_wait=1)
    deadline = time.monotonic() + 10
    while queue.depth and time.monotonic() < deadline:
        time.sleep(0.02)
    assert forwarder.groups[0] == 6 and forwarder.groups[1:] == [1] * 6
    assert forwarder.got == [b["batch"] for b in batches if b["batch"] != bad]
    refused = (tmp_path / "refused.jsonl").read_bytes().splitlines()
    assert len(refused) == 2 and orjson.loads(refused[1])["batch"] == bad
    assert tracker.counts["forward_errors"] == 1 and tracker.counts["forward_splits"] == 1
    assert tracker.close(timeout=5)


def resolved(records: list[dict[str, Any]]) -> dict[str, Any]:
    return resolve_batch(validate_batch(make_batch(records))).to_json()


def test_the_manager_writes_a_group_in_one_write_and_refuses_it_whole() -> None:
    app = create_app({"store": "memory:"})
    client = app.test_client()
    group = [resolved(full_records()) for _ in range(3)]
    resp = client.post("/api/v1/batches", data=orjson.dumps(group),
                       content_type="application/json")  # fmt: skip
    assert resp.status_code == 200, resp.json
    answers = (resp.json or {})["batches"]
    assert [a["batch"] for a in answers] == [b["batch"] for b in group]
    alone = Manager(OxigraphStore(None))
    for b in group:
        alone.apply_json(b)
    assert app.extensions["provml.store"].count() == alone.store.count()  # the same graph
    assert app.extensions["provml.manager"].counts["writes"] == 1
    forged = [resolved(full_records()), resolved(full_records())]
    forged[1]["records"][0]["plan_id"] = "https://provml.dev/id/plan/other"
    before = app.extensions["provml.store"].count()
    resp = client.post("/api/v1/batches", data=orjson.dumps(forged),
                       content_type="application/json")  # fmt: skip
    assert resp.status_code == 400
    assert app.extensions["provml.store"].count() == before  # nothing of the group


def test_in_process_and_http_forwarders_write_groups(tmp_path: Path) -> None:
    manager = Manager(OxigraphStore(None))
    tracker = Tracker(InProcessForwarder(manager), DurableQueue(str(tmp_path / "q")), ack_wait=5)
    for _ in range(5):
        assert tracker.ingest(orjson.dumps(make_batch(full_records())))[1] == 200
    assert manager.counts["batches"] == 5
    assert tracker.close(timeout=5)
    app = create_app({"store": "memory:"})
    client = app.test_client()

    class Http(HttpForwarder):  # the manager's app as its server
        def _post(self, body: bytes) -> dict[str, Any]:
            resp = client.post("/api/v1/batches", data=body, content_type="application/json")
            assert resp.status_code == 200
            answer: dict[str, Any] = resp.json or {}
            return answer

    group = [orjson.dumps(resolved(full_records())) for _ in range(4)]
    answers = Http("http://manager").forward_group(group, [None] * 4)
    assert [a["batch"] for a in answers] == [orjson.loads(b)["batch"] for b in group]
    assert app.extensions["provml.manager"].counts["writes"] == 1
