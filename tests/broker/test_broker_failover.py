"""A broker that loses batches it acknowledged: a Redis without durable writes
(``appendonly no``, as a replica promoted by Sentinel before it had the last writes is)
killed and restarted empty. The publishers notice the broker's new replication history
and publish again what the managers had not stored (provml.core.broker.ReplayWindow):
the store ends up with exactly the records produced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provml.core.broker import BrokerURL, ReplayWindow
from tests.broker.redis_server import RedisServer
from tests.broker.test_broker_end_to_end import STREAM, Workflow, drained, triples
from tests.conftest import Server
from tests.e2e.test_pipeline_faults import expected_triples

pytestmark = pytest.mark.integration


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that keeps nothing across a restart: every acknowledged write can go."""
    server = RedisServer(tmp_path / "redis", "--appendonly", "no")
    try:
        yield server
    finally:
        server.stop()


def _lose_everything(redis_server: RedisServer, quiet: bool = True) -> None:
    """Kill and restart the broker empty; ``quiet``: nobody publishes meanwhile, so the
    stream is seen empty (a workflow still capturing may publish at once)."""
    redis_server.kill()
    redis_server.start()
    if quiet:
        with redis_server.client() as r:
            assert r.xlen(STREAM) == 0  # the broker lost what it had acknowledged


def test_the_window_publishes_again_what_a_new_history_lost(volatile_redis: RedisServer) -> None:
    client = BrokerURL.parse(volatile_redis.url).connect()
    window = ReplayWindow(STREAM, 1 << 20)
    window.publish(client, [b'{"n": 1}', b'{"n": 2}'])
    window.publish(client, [b'{"n": 3}'])
    assert window.kept == 3 and window.counts["replayed"] == 0
    _lose_everything(volatile_redis)
    client = BrokerURL.parse(volatile_redis.url).connect()
    window.check(client)
    assert window.counts == {"replayed": 3, "unguarded": 0, "history_changes": 1, "check_errors": 0}
    bodies = [fields[b"batch"] for _, fields in client.xrange(STREAM)]
    assert sorted(bodies) == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    window.check(client)  # the same history: nothing more
    assert client.xlen(STREAM) == 3 and window.counts["replayed"] == 3


def test_batches_published_before_the_first_check_are_looked_up(
    volatile_redis: RedisServer,
) -> None:
    """The check after a first publish failed (the broker went down right after the
    XADD): the window has batches and no history yet. The first id it reads may be a
    new history's: what it kept is looked up, not taken as stored in it."""
    client = BrokerURL.parse(volatile_redis.url).connect()
    window = ReplayWindow(STREAM, 1 << 20)
    window._checked = time.monotonic()  # as after a check that failed: none before 5 s
    window.publish(client, [b'{"n": 1}'])
    assert window.replid is None and window.kept == 1
    _lose_everything(volatile_redis)
    client = BrokerURL.parse(volatile_redis.url).connect()
    window.check(client)
    assert [fields[b"batch"] for _, fields in client.xrange(STREAM)] == [b'{"n": 1}']
    assert window.counts["replayed"] == 1


def test_a_flush_after_an_outage_checks_the_broker_history(
    volatile_redis: RedisServer, tmp_path: Path
) -> None:
    """capture_lib's broker mode: a batch published, the broker lost (and the next batch
    spooled meanwhile), then the final flush while the transport still counts the broker
    as down. The re-sent spool shows it answers, and the check of its history it was
    spared must still run before the script ends: the lost batch is published again."""
    from capture_lib.transport.broker import BrokerTransport
    from capture_lib.transport.file import FileTransport
    from capture_lib.transport.spool import SpoolingTransport

    url = BrokerURL.parse(volatile_redis.url)
    transport = SpoolingTransport(BrokerTransport(url, STREAM, timeout=2.0),
                                  FileTransport(str(tmp_path / "spool")))  # fmt: skip
    transport.COOLDOWN = 60.0  # type: ignore[misc]  # down until the end of the test
    transport._cooldown = 60.0
    try:
        assert transport.send({"batch": "a", "session": "s", "records": []}, b"A") == "sent"
        volatile_redis.kill()
        spooled = transport.send({"batch": "b", "session": "s", "records": []}, b"B")
        assert spooled == "spooled"
        volatile_redis.start()
        transport.sync()
        transport.tick(force=True)  # the flush
        with volatile_redis.client() as r:
            bodies = sorted(fields[b"batch"] for _, fields in r.xrange(STREAM))
        assert bodies == [b"A", b"B"]
        assert transport.primary.counts()["replayed"] == 1  # type: ignore[attr-defined]
    finally:
        transport.close()


def test_a_restart_that_kept_the_stream_publishes_nothing_again(
    redis_server: RedisServer,
) -> None:
    """AOF with appendfsync always: the restarted Redis has a new history but every
    batch it acknowledged; none is published twice."""
    client = BrokerURL.parse(redis_server.url).connect()
    window = ReplayWindow(STREAM, 1 << 20)
    window.publish(client, [b"a", b"b"])
    redis_server.kill()
    redis_server.start()
    client = BrokerURL.parse(redis_server.url).connect()
    window.publish(client, [b"c"])  # into the new history, before it is noticed
    window.check(client)
    assert window.counts == {"replayed": 0, "unguarded": 0, "history_changes": 1, "check_errors": 0}
    assert client.xlen(STREAM) == 3 and window.kept == 3


def test_a_publish_that_spanned_a_new_history_is_looked_up_again(
    volatile_redis: RedisServer,
) -> None:
    """Another thread noticed the new history (and replayed what it kept) while this
    one's XADD went to the dying broker: that batch is looked up, and sent again."""
    client = BrokerURL.parse(volatile_redis.url).connect()
    window = ReplayWindow(STREAM, 1 << 20)
    window.publish(client, [b"early"])
    _lose_everything(volatile_redis)
    client = BrokerURL.parse(volatile_redis.url).connect()
    window.replid = client.info("replication")["master_replid"]  # noticed elsewhere…
    window._recheck = True  # …during this batch's publish (ReplayWindow.publish)
    window.check(client)
    assert [f[b"batch"] for _, f in client.xrange(STREAM)] == [b"early"]
    assert window.counts["replayed"] == 1


def test_the_window_lets_go_of_what_every_group_acknowledged(
    volatile_redis: RedisServer,
) -> None:
    client = BrokerURL.parse(volatile_redis.url).connect()
    client.xgroup_create(STREAM, "g", id="0", mkstream=True)
    window = ReplayWindow(STREAM, 1 << 20)
    window.publish(client, [b"a", b"b", b"c", b"d"])
    window.check(client)
    assert window.kept == 4  # read by nobody
    read = client.xreadgroup("g", "c1", {STREAM: ">"}, count=3)
    ids = [entry for entry, _ in read[0][1]]
    client.xack(STREAM, "g", *ids[:2])
    window.check(client)
    assert window.kept == 2  # the third is read but not acknowledged: not stored yet
    client.xack(STREAM, "g", ids[2])
    window.check(client)
    assert window.kept == 1


def test_a_full_window_counts_what_it_let_go(volatile_redis: RedisServer) -> None:
    client = BrokerURL.parse(volatile_redis.url).connect()
    window = ReplayWindow(STREAM, 2 * (5 + ReplayWindow.OVERHEAD))
    window.publish(client, [b"12345", b"12345", b"12345"])
    assert window.kept == 2 and window.counts["unguarded"] == 1
    _lose_everything(volatile_redis)
    window.check(BrokerURL.parse(volatile_redis.url).connect())
    assert window.counts["replayed"] == 2


def _metric(server: Server, name: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_broker_that_lost_its_stream_loses_nothing_in_the_store(
    tmp_path: Path, volatile_redis: RedisServer
) -> None:
    """A tracker publishing for an HTTP client and a workflow in broker mode; no manager
    yet, so every batch waits in the stream; the broker loses all of it; the tracker's
    check and the workflow's next send notice the new history and publish again; then a
    manager stores exactly what the workflows produced, and once it has, the publishers
    let go of their windows."""
    url = volatile_redis.url
    tracker = Server(tmp_path / "tracker", "--component", "tracker", "--broker", url)
    manager = None
    try:
        direct = Workflow(tmp_path / "wf-broker", url)
        via_tracker = Workflow(tmp_path / "wf-http", tracker.url, tasks=40)
        tracked = via_tracker.finish()  # its 40 tasks, all published through the tracker
        assert tracked["flushed"] and via_tracker.batches() >= 1
        deadline = time.monotonic() + 60
        while direct.batches() < 10:
            assert time.monotonic() < deadline, "the workflow in broker mode produces nothing"
            time.sleep(0.05)
        assert volatile_redis.client().xlen(STREAM) >= 11
        _lose_everything(volatile_redis, quiet=False)  # the direct workflow still captures
        result = direct.finish()  # its flush checks the broker's history
        assert result["broker"]["replayed"] > 0, result
        manager = Server(tmp_path / "manager", "--component", "manager", "--component",
                         "query", "--broker", url)  # fmt: skip
        deadline = time.monotonic() + 30  # the tracker checks every 5 s
        while _metric(tracker, "provml_tracker_broker_replayed_total") < 1:
            assert time.monotonic() < deadline, "the tracker did not notice the new history"
            time.sleep(0.2)
        assert _metric(tracker, "provml_tracker_broker_history_changes_total") == 1
        drained(volatile_redis)
        journals = [direct.journal, via_tracker.journal]
        assert triples(manager.url + "/sparql") == expected_triples(journals)
        deadline = time.monotonic() + 30
        while _metric(tracker, "provml_tracker_broker_kept_batches") > 0:
            assert time.monotonic() < deadline, "the tracker keeps batches the store has"
            time.sleep(0.2)
        assert _metric(tracker, "provml_tracker_broker_unguarded_total") == 0
    finally:
        if manager is not None:
            assert manager.stop() == 0
        assert tracker.stop() == 0
