"""Fault injection with real processes: workflows capture while the tracker, the
manager, or both are killed with SIGKILL at random moments and restarted. Afterwards the
store must hold exactly the triples of every batch the workflows produced: nothing lost,
nothing extra. Rounds: PROVML_CHAOS_ROUNDS (CI default 8; ``make chaos`` runs 30)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pyoxigraph
import pytest
import requests

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from tests.conftest import Server

pytestmark = pytest.mark.integration
WORKFLOW = Path(__file__).with_name("chaos_workflow.py")


def expected_triples(journals: list[Path]) -> set[str]:
    """Every triple of every batch the workflows produced, in N-Triples form."""
    store = OxigraphStore(None)  # in memory: literals get the same canonical forms
    manager = Manager(store)  # the mapping and the derivation edges, as the manager writes
    for journal in journals:
        for line in journal.read_bytes().splitlines():
            manager.apply(resolve_batch(parse_batch(line)))
    result = store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    return {str(t) for t in result}


def stored_triples(server: Server) -> set[str]:
    resp = requests.post(
        server.url + "/sparql",
        data={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
        headers={"Accept": "application/n-triples"},
        timeout=120,
    )
    assert resp.status_code == 200
    return {str(t) for t in pyoxigraph.parse(resp.content, format=pyoxigraph.RdfFormat.N_TRIPLES)}


def test_kill_tracker_and_manager_at_random(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVML_QUERY_MAX_ROWS", "100000000")  # the check reads every triple
    rounds = int(os.environ.get("PROVML_CHAOS_ROUNDS", "8"))
    rng = random.Random(int(os.environ.get("PROVML_CHAOS_SEED", "20261123")))
    store = Server(tmp_path / "store-data", "--component", "manager", "--component", "query")
    tracker = Server(tmp_path / "tracker-data", "--component", "tracker", "--manager-url",
                     store.url)  # fmt: skip
    stop = tmp_path / "stop"
    journals = [tmp_path / f"journal-{i}.jsonl" for i in range(2)]
    workflows = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKFLOW),
                tracker.url,
                str(tmp_path / f"spool-{i}"),
                str(journals[i]),
                str(stop),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    kills = {"tracker": 0, "manager": 0, "both": 0}
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.2, 1.0))
            victim = rng.choice(["tracker", "manager", "both"])
            kills[victim] += 1
            if victim in ("tracker", "both"):
                tracker.kill()
            if victim in ("manager", "both"):
                store.kill()
            time.sleep(rng.uniform(0.1, 2.5))  # long enough, at times, to spool
            if victim in ("manager", "both"):
                store = Server(tmp_path / "store-data", "--component", "manager",
                               "--component", "query", _port=store.port)  # fmt: skip
            if victim in ("tracker", "both"):
                tracker = Server(tmp_path / "tracker-data", "--component", "tracker",
                                 "--manager-url", store.url, _port=tracker.port)  # fmt: skip
        stop.touch()
        results = []
        for w in workflows:
            out, _ = w.communicate(timeout=300)
            results.append(json.loads(out.strip().splitlines()[-1]))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stats = requests.get(tracker.url + "/api/v1/tracker/stats", timeout=10).json()
            if stats.get("queue_depth", 0) == 0:
                break
            time.sleep(0.2)
        expected = expected_triples(journals)
        stored = stored_triples(store)
        lost, extra = expected - stored, stored - expected
        tasks = sum(r["tasks"] for r in results)
        spooled = [r["spilled_to_disk"] for r in results]
        resent = [r["resent_batches"] for r in results]
        print(
            f"\n{rounds} rounds (kills: {kills}); {tasks} tasks captured, "
            f"{len(expected)} triples expected, {len(stored)} stored, {len(lost)} lost, "
            f"{len(extra)} extra; records spooled {spooled}, batches re-sent {resent}"
        )
        assert all(r["flushed"] and r["lost"] == {} for r in results), results
        assert not lost and not extra
        assert tasks > 0
    finally:
        stop.touch()
        for w in workflows:
            if w.poll() is None:
                w.kill()
                w.wait()
            if w.stdout:
                w.stdout.close()
        tracker.stop()
        store.stop()
