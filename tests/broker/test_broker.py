"""The broker's pieces against a real redis-server, in this process: the URL and its
password (never shown), capture_lib's broker mode (spooling while Redis refuses it), the
manager's consumer (acknowledging only what the store has), the tracker answering 503
while the broker is down, and redis imported only in broker mode."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

import capture_lib as cl
from manager.broker import BrokerConsumer
from manager.service import Manager
from manager.store import open_store
from provml.cli.admin import show_config
from provml.core.broker import BrokerURL, masked
from provml.core.errors import ConfigError, StoreError
from provml.server import build_app, close_app
from tests.broker.redis_server import RedisServer
from tests.conftest import free_port, full_records, make_batch

PASSWORD = "s3cret-Broker-pw"


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_url_keeps_its_password_out_of_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    url = BrokerURL.parse(f"rediss://alice:{PASSWORD}@cache.example:6380/3")
    assert (url.scheme, url.host, url.port, url.db, url.username, url.password) == (
        "rediss", "cache.example", 6380, 3, "alice", PASSWORD)  # fmt: skip
    assert PASSWORD not in str(url) and PASSWORD not in repr(url)
    assert str(url) == "rediss://alice@cache.example:6380/3"
    monkeypatch.setenv("PROVML_BROKER_PASSWORD", PASSWORD)
    assert BrokerURL.parse("redis://h").password == PASSWORD
    for bad in (f"http://:{PASSWORD}@h:1/0", f"redis://:{PASSWORD}@h:1/x", "redis://h?x=1"):
        with pytest.raises(ConfigError) as info:
            BrokerURL.parse(bad)
        assert PASSWORD not in str(info.value)
    assert masked(f"redis://alice:{PASSWORD}@h:1/0") == "redis://alice:***@h:1/0"
    monkeypatch.setenv("PROVML_BROKER_URL", f"redis://:{PASSWORD}@h:1/0")
    monkeypatch.setenv("PROVML_URL", f"rediss://bob:{PASSWORD}@h:1/0")
    shown = CliRunner().invoke(show_config).output
    assert "redis://:***@h:1/0" in shown and PASSWORD not in shown


def test_capture_in_broker_mode_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server = RedisServer(tmp_path / "redis", "--requirepass", PASSWORD)
    caplog.set_level(logging.DEBUG)
    try:
        # the wrong password (from the environment): refused, spooled, nothing lost
        monkeypatch.setenv("PROVML_BROKER_PASSWORD", "wrong-" + PASSWORD)
        client = cl.init(mode="broker", url=redis_server.url, path=str(tmp_path / "spool"))
        assert "redis" in sys.modules
        with cl.workflow("secret", params={"k": 1}) as wf, wf.task("t") as t:
            t.metric("m", 1.0)
        assert not cl.flush(5)
        assert cl.stats()["spilled_to_disk"] > 0 and cl.stats()["waiting_in_spool"]
        shown = [repr(client.worker.transport), repr(client.worker.transport.primary),
                 str(cl.stats()), caplog.text]  # fmt: skip
        assert caplog.text and all(PASSWORD not in text for text in shown)
        cl.shutdown()
        # the right one, in the URL: sent, and the spool of the earlier client is not
        # ours (a new process's client sends its own)
        monkeypatch.delenv("PROVML_BROKER_PASSWORD")
        url = f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
        client = cl.init(mode="broker", url=url, path=str(tmp_path / "spool2"))
        with cl.workflow("secret", params={"k": 2}) as wf, wf.task("t") as t:
            t.metric("m", 2.0)
        assert cl.flush(10) and cl.stats()["spilled_to_disk"] == 0
        with redis_server.client(password=PASSWORD) as r:
            bodies = [orjson.loads(f[b"batch"]) for _, f in r.xrange("provml:batches")]
        assert {b["session"] for b in bodies} == {client.session}
        assert sum(len(b["records"]) for b in bodies) == cl.stats()["records_sent"]
        assert PASSWORD not in repr(client.worker.transport) + caplog.text
    finally:
        cl.shutdown()
        redis_server.stop()


def test_spooled_batches_are_sent_once_redis_answers(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    try:
        redis_server.kill()
        cl.init(mode="broker", url=redis_server.url, path=str(tmp_path / "spool"))
        with cl.workflow("offline") as wf, wf.task("t") as t:
            t.metric("m", 1.0)
        assert not cl.flush(3) and cl.stats()["spilled_to_disk"]
        redis_server.start()
        assert until(lambda: cl.flush(5))
        stats = cl.stats()
        assert stats["resent_batches"] and not stats["waiting_in_spool"]
        with redis_server.client() as r:
            bodies = [orjson.loads(f[b"batch"]) for _, f in r.xrange("provml:batches")]
        assert sum(len(b["records"]) for b in bodies) == stats["records_sent"]
    finally:
        cl.shutdown()
        redis_server.stop()


def test_redis_is_imported_only_in_broker_mode(tmp_path: Path) -> None:
    code = (
        "import sys, capture_lib as cl, provml.server\n"
        f"cl.init(mode='disk', path={str(tmp_path)!r})\n"
        "with cl.workflow('w'): pass\n"
        "cl.flush(5)\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class FlakyStore:
    """A store whose first ``fail`` writes fail."""

    def __init__(self, fail: int) -> None:
        self.inner = open_store("memory:")
        self.fail = fail

    def add(self, quads: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("the store is down")
        self.inner.add(quads)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_consumer_acknowledges_only_what_the_store_has(redis_server: RedisServer) -> None:
    store = FlakyStore(fail=2)
    manager = Manager(store)  # type: ignore[arg-type]
    consumer = BrokerConsumer(manager, BrokerURL.parse(redis_server.url), stream="s",
                              group="g", consumer="c1")  # fmt: skip
    consumer.BACKOFF = (0.01, 0.05)  # type: ignore[misc]
    consumer.TRIM_EVERY = 0.2  # type: ignore[misc]
    batch = orjson.dumps(make_batch(full_records()))
    with redis_server.client() as r:
        r.xadd("s", {"batch": batch})
        consumer.start()
        try:
            until(lambda: consumer.counts["acked"] == 1)
            assert consumer.counts["store_errors"] == 2  # pending, not acknowledged, till then
            quads = store.count()
            assert quads > 0
            r.xadd("s", {"batch": batch})  # the same batch again: nothing added
            until(lambda: consumer.counts["acked"] == 2)
            assert store.count() == quads
            assert r.xpending("s", "g")["pending"] == 0
            until(lambda: r.xlen("s") == 0)  # what every group took is trimmed
        finally:
            consumer.close()
        assert r.xinfo_consumers("s", "g") == []  # a clean stop leaves no consumer


def test_tracker_answers_503_while_the_broker_is_down() -> None:
    app = build_app(["tracker"], broker=f"redis://127.0.0.1:{free_port()}/0")
    try:
        resp = app.test_client().post("/api/v1/batches", json=make_batch(full_records()))
        assert resp.status_code == 503, resp.get_json()
        assert resp.get_json()["error"] == "broker_unavailable"
        assert resp.headers["Retry-After"] == "1"
    finally:
        close_app(app)


def test_a_dead_consumers_pending_batches_are_claimed(redis_server: RedisServer) -> None:
    store = open_store("memory:")
    batch = orjson.dumps(make_batch(full_records()))
    with redis_server.client() as r:
        r.xgroup_create("s", "g", id="0", mkstream=True)
        r.xadd("s", {"batch": batch})
        # a consumer that read the batch and died before writing it
        assert r.xreadgroup("g", "dead", {"s": ">"}, count=10)
        url = BrokerURL.parse(redis_server.url)
        consumer = BrokerConsumer(Manager(store), url, stream="s", group="g", consumer="alive",
                                  claim_idle=0.3)  # fmt: skip
        consumer.start()
        try:
            until(lambda: consumer.counts["acked"] == 1)
        finally:
            consumer.close()
        assert consumer.counts["claimed"] == 1 and store.count() > 0
        assert r.xpending("s", "g")["pending"] == 0


def test_with_replicas_a_batch_counts_as_sent_once_a_replica_holds_it(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROVML_BROKER_REPLICAS=1: what a failover to the replica could lose is never
    counted as sent; without the replica, batches are spooled and sent again later."""
    with redis_server.client() as r:  # no 5 s wait before a replica's full sync
        r.config_set("repl-diskless-sync-delay", 0)
    replica = RedisServer(tmp_path / "replica", "--replicaof", "127.0.0.1", str(redis_server.port))
    monkeypatch.setenv("PROVML_BROKER_REPLICAS", "1")
    monkeypatch.setenv("PROVML_HTTP_TIMEOUT", "1")
    try:
        with redis_server.client() as r:
            until(lambda: r.info("replication").get("slave0", {}).get("state") == "online")
        cl.init(mode="broker", url=redis_server.url, path=str(tmp_path / "spool"))
        with cl.workflow("replicated") as wf, wf.task("t") as t:
            t.metric("m", 1.0)
        assert cl.flush(10) and cl.stats()["spilled_to_disk"] == 0
        replica.kill()
        with cl.workflow("unreplicated") as wf, wf.task("t") as t:
            t.metric("m", 2.0)
        assert not cl.flush(3) and cl.stats()["spilled_to_disk"] > 0
        replica.start()
        assert until(lambda: cl.flush(5), timeout=30)
        with replica.client() as r:  # the replica has every batch
            until(lambda: r.xlen("provml:batches") >= cl.stats()["batches_sent"])
            bodies = [orjson.loads(f[b"batch"]) for _, f in r.xrange("provml:batches")]
        assert sum(len(b["records"]) for b in bodies) >= cl.stats()["records_sent"]
    finally:
        cl.shutdown()
        replica.kill()  # (a replica asked to stop may wait on its primary)


def test_all_in_one_with_a_broker_publishes_then_consumes(redis_server: RedisServer) -> None:
    """``provml serve --broker`` with every component: the tracker publishes, the
    manager of the same process consumes; the answer says published, not stored."""
    app = build_app(store="memory:", broker=redis_server.url)
    try:
        resp = app.test_client().post("/api/v1/batches", json=make_batch(full_records()))
        assert resp.status_code == 202 and resp.get_json()["status"] == "published"
        manager = app.extensions["provml.manager"]
        consumer = app.extensions["provml.broker_consumer"]
        until(lambda: manager.counts["batches"] == 1 and consumer.counts["acked"] == 1)
        assert app.extensions["provml.store"].count() > 0
        stats = app.test_client().get("/manager/api/v1/stats").get_json()
        assert stats["broker"]["acked"] == 1 and stats["broker"]["alive"]
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
        assert "provml_manager_broker_acked_total 1\n" in metrics
        assert "provml_tracker_broker_kept_batches " in metrics
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        close_app(app)


class PoisonStore:
    """A store that fails on every write holding the literal "poison" (as a SPARQL
    server fails on an update over its request limit, whatever else it takes), and on
    every write while ``down``."""

    def __init__(self) -> None:
        self.inner = open_store("memory:")
        self.down = False

    def add(self, quads: Any) -> None:
        quads = list(quads)
        if self.down or any('"poison"' in str(q) for q in quads):
            raise StoreError("the store failed on this write")
        self.inner.add(quads)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _named_batch(name: str) -> bytes:
    records = full_records()
    records[0]["name"] = name
    return orjson.dumps(make_batch(records))


def _stored_names(store: PoisonStore) -> set[str]:
    """The literals in the store. The solutions are consumed and dropped here, on this
    thread: pyoxigraph's results may not be dropped on another one (as a failed
    assertion's traceback, collected later on the consumer's thread, would)."""
    names = store.query("SELECT DISTINCT ?n WHERE { ?s ?p ?n FILTER(isLiteral(?n)) }")
    return {row[0].value for row in names}  # type: ignore[union-attr]


def _poison_consumer(redis_server: RedisServer, store: PoisonStore) -> BrokerConsumer:
    consumer = BrokerConsumer(Manager(store), BrokerURL.parse(redis_server.url),  # type: ignore[arg-type]
                              stream="s", group="g", consumer="c1")  # fmt: skip
    consumer.BACKOFF = (0.01, 0.05)  # type: ignore[misc]
    consumer.MAX_FAILURES = 3  # type: ignore[misc]
    consumer.FAILING_FOR = 0.3  # type: ignore[misc]
    return consumer


def test_a_batch_the_store_always_fails_on_is_dead_lettered_and_stops_nothing(
    redis_server: RedisServer,
) -> None:
    store = PoisonStore()
    consumer = _poison_consumer(redis_server, store)
    poison = _named_batch("poison")
    with redis_server.client() as r:
        r.xadd("s", {"batch": _named_batch("first")})
        r.xadd("s", {"batch": poison})
        consumer.start()
        try:
            for i in range(200):  # batches keep coming: the store is seen taking them
                r.xadd("s", {"batch": _named_batch(f"next-{i}")})
                if r.xlen("s:dead"):
                    break
                time.sleep(0.05)
            ((_, dead),) = r.xrange("s:dead")
            assert dead[b"batch"] == poison
            times = re.search(rb"failed on this batch (\d+) times in", dead[b"reason"])
            assert times is not None and int(times.group(1)) >= 3, dead[b"reason"]
            # the last batch may not be read yet when the poison is dead-lettered
            until(lambda: f"next-{i}" in _stored_names(store))
            until(lambda: r.xpending("s", "g")["pending"] == 0)
            assert consumer.counts["dead_lettered"] == 1
            stored = _stored_names(store)
            assert {"first", "next-0", f"next-{i}"} <= stored and "poison" not in stored
        finally:
            consumer.close()


def test_a_store_that_is_down_sends_nothing_to_the_dead_letters(
    redis_server: RedisServer,
) -> None:
    store = PoisonStore()
    store.down = True
    consumer = _poison_consumer(redis_server, store)
    with redis_server.client() as r:
        for i in range(5):
            r.xadd("s", {"batch": _named_batch(f"b{i}")})
        consumer.start()
        try:
            until(lambda: consumer.counts["store_errors"] >= 4 * consumer.MAX_FAILURES)
            r.xadd("s", {"batch": _named_batch("late")})  # read with the pending ones
            until(lambda: consumer.counts["store_errors"] >= 5 * consumer.MAX_FAILURES)
            assert r.xlen("s:dead") == 0
            assert r.xpending("s", "g")["pending"] == 6
            store.down = False
            until(lambda: r.xpending("s", "g")["pending"] == 0)
            assert r.xlen("s:dead") == 0 and consumer.counts["batches"] == 6
        finally:
            consumer.close()
