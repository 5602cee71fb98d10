"""Fault injection through the broker: workflows capture in broker mode while Redis, a
manager, or both are SIGKILLed at random moments and restarted (a restarted manager is
a new consumer: what the killed one held is claimed), with a Redis that keeps what it
acknowledged (AOF) and with one that loses everything at each kill. Afterwards the store
holds exactly the triples of every batch the workflows produced. Rounds:
PROVML_CHAOS_ROUNDS (4 in ``make test``; ``make chaos`` runs 30)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.broker.redis_server import RedisServer
from tests.broker.test_broker_end_to_end import Workflow, drained, triples
from tests.conftest import Server
from tests.e2e.test_pipeline_faults import expected_triples
from tests.sparql_servers import start_oxigraph

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("durability", ["aof", "volatile"])
def test_kill_redis_and_managers_at_random(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """``aof``: Redis with AOF and appendfsync always keeps what it acknowledged.
    ``volatile``: Redis without persistence loses its whole stream at each kill, as a
    failover to a replica that lagged loses the last writes: the publishers notice its
    new history and publish again what the managers had not stored (ReplayWindow)."""
    monkeypatch.setenv("PROVML_BROKER_CLAIM_IDLE", "2")
    rounds = int(os.environ.get("PROVML_CHAOS_ROUNDS", "4"))
    extra = ("--appendonly", "no") if durability == "volatile" else ()
    redis_server = RedisServer(tmp_path / "redis", *extra)
    rng = random.Random(int(os.environ.get("PROVML_CHAOS_SEED", "20261203")))
    oxigraph = start_oxigraph(tmp_path / "oxigraph")
    args = ("--component", "manager", "--store", oxigraph.store_url, "--broker", redis_server.url)
    managers = [Server(tmp_path / f"manager-{i}", *args) for i in range(2)]
    flows = [Workflow(tmp_path / f"wf-{i}", redis_server.url) for i in range(3)]
    done: list[str] = []
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.2, 1.0))  # capture goes on meanwhile
            victim = rng.choice(["redis", "manager", "both"])
            which = rng.randrange(len(managers))
            if victim in ("redis", "both"):
                redis_server.kill()
            if victim in ("manager", "both"):
                managers[which].kill()
            time.sleep(rng.uniform(0.1, 0.6))  # the outage
            if victim in ("redis", "both"):
                redis_server.start()
            if victim in ("manager", "both"):
                managers[which] = Server(tmp_path / f"manager-{which}", *args)
            done.append(victim)
        for flow in flows:
            flow.finish()
        drained(redis_server, timeout=120)
        expected = expected_triples([flow.journal for flow in flows])
        assert triples(oxigraph.url + "/query") == expected, done
    finally:
        for m in managers:
            m.stop()
        oxigraph.stop()
        redis_server.stop()
