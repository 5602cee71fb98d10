"""Fault injection through the broker: workflows capture in broker mode while Redis, a
manager, or both are SIGKILLed at random moments and restarted (a restarted manager is
a new consumer: what the killed one held is claimed). Afterwards the store holds
exactly the triples of every batch the workflows produced. Runs only with
PROVML_CHAOS_ROUNDS set (``make chaos`` runs 30 rounds; the other tests of tests/broker
already kill Redis and a manager once each)."""

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


def test_kill_redis_and_managers_at_random(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVML_BROKER_CLAIM_IDLE", "2")
    if not os.environ.get("PROVML_CHAOS_ROUNDS"):
        pytest.skip("the broker's chaos loop runs with PROVML_CHAOS_ROUNDS (make chaos)")
    rounds = int(os.environ["PROVML_CHAOS_ROUNDS"])
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
