"""The Redis Streams broker end to end, with real processes: redis-server (AOF,
``appendfsync always``), ``provml serve`` managers consuming in a consumer group (the
embedded store, or several on one Oxigraph server), a tracker publishing, and workflows
capturing with ``mode="broker"``. Afterwards the store holds exactly the triples of every
batch the workflows produced (their journals): nothing lost, nothing extra."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
import pytest
import requests

from provml.core.broker import dead_letter_stream
from provml.core.vocab import PROVML_NS
from tests.broker.redis_server import RedisServer
from tests.conftest import Server
from tests.e2e.test_pipeline_faults import expected_triples
from tests.sparql_servers import start_oxigraph

pytestmark = pytest.mark.integration
WORKFLOW = Path(__file__).parents[1] / "e2e" / "chaos_workflow.py"
STREAM, GROUP = "provml:batches", "provml-managers"
ROOT = Path(__file__).resolve().parents[2]


class Workflow:
    """A chaos_workflow.py process: captures until stopped (or ``tasks`` ran), by a
    tracker (an http:// URL) or by the broker (redis://), keeping a journal."""

    def __init__(self, workdir: Path, url: str, tasks: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.journal, self.stop_file = workdir / "journal.jsonl", workdir / "stop"
        args = [sys.executable, str(WORKFLOW), url, str(workdir / "spool"), str(self.journal),
                str(self.stop_file)] + ([str(tasks)] if tasks else [])  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=ROOT)  # fmt: skip

    def batches(self) -> int:
        return len(self.journal.read_bytes().splitlines()) if self.journal.exists() else 0

    def finish(self) -> dict[str, Any]:
        self.stop_file.touch()
        out, err = self.proc.communicate(timeout=150)
        assert self.proc.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        assert result["flushed"] and not result["lost"] and not result["refused"], result
        return result


def drained(redis_server: RedisServer, timeout: float = 60.0) -> None:
    """Wait until the group has taken every entry and acknowledged it (so it is stored)."""
    deadline = time.monotonic() + timeout
    with redis_server.client() as r:
        while time.monotonic() < deadline:
            if r.exists(STREAM):
                last = r.xinfo_stream(STREAM)["last-generated-id"]
                groups = {g["name"]: g for g in r.xinfo_groups(STREAM)}
                group = groups.get(GROUP.encode())
                if group and group["last-delivered-id"] == last and group["pending"] == 0:
                    return
            time.sleep(0.1)
    raise AssertionError("the managers did not take every batch in time")


def triples(endpoint: str) -> set[str]:
    resp = requests.post(
        endpoint,
        data={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
        headers={"Accept": "application/n-triples"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    return {str(t) for t in pyoxigraph.parse(resp.content, format=pyoxigraph.RdfFormat.N_TRIPLES)}


def stats(server: Server) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(server.url + "/api/v1/stats", timeout=10).json()
    return body


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_QUERY_MAX_ROWS", "100000000")  # the checks read every triple
    monkeypatch.setenv("PROVML_BROKER_CLAIM_IDLE", "2")  # a dead manager's batches, soon


def test_capture_and_tracker_through_the_broker_exactly_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """capture_lib in broker mode and an HTTP client through a publishing tracker share
    one stream; one manager (embedded store) writes everything once; a batch sent again
    adds nothing; bad batches go to the dead-letter stream with the reason, the others
    go on."""
    manager = Server(tmp_path / "manager", "--component", "manager", "--component", "query",
                     "--broker", redis_server.url)  # fmt: skip
    tracker = Server(tmp_path / "tracker", "--component", "tracker", "--broker", redis_server.url)
    try:
        flows = [Workflow(tmp_path / "wf-broker", redis_server.url, tasks=60),
                 Workflow(tmp_path / "wf-http", tracker.url, tasks=60)]  # fmt: skip
        results = [flow.finish() for flow in flows]
        assert all(r["spilled_to_disk"] == 0 for r in results), results
        # the tracker answers once the broker has the batch: 202, "published"
        one = flows[0].journal.read_bytes().splitlines()[0]
        resp = requests.post(tracker.url + "/api/v1/batches", data=one,
                             headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
        assert resp.status_code == 202 and resp.json()["status"] == "published", resp.text
        drained(redis_server)
        journals = [flow.journal for flow in flows]
        expected = expected_triples(journals)
        assert triples(manager.url + "/sparql") == expected
        produced = sum(flow.batches() for flow in flows) + 1
        assert stats(manager)["batches"] == produced  # each batch written once

        with redis_server.client() as r:  # every batch again: nothing added
            for journal in journals:
                for line in journal.read_bytes().splitlines():
                    r.xadd(STREAM, {"batch": line})
            r.xadd(STREAM, {"batch": b"{not json"})
            bad = orjson.loads(one)
            bad["session"] = "no-such-session"
            r.xadd(STREAM, {"batch": orjson.dumps(bad)})
            r.xadd(STREAM, {"other": b"field"})
            late = Workflow(tmp_path / "wf-late", redis_server.url, tasks=5)
            late.finish()
            drained(redis_server)
            dead = r.xrange(dead_letter_stream(STREAM))
        assert triples(manager.url + "/sparql") == expected_triples([*journals, late.journal])
        reasons = [entry[b"reason"].decode() for _, entry in dead]
        assert len(reasons) == 3, reasons
        assert "not valid JSON" in reasons[0]
        assert "session" in reasons[1] and reasons[1].startswith("invalid_request")
        assert dead[1][1][b"batch"] == orjson.dumps(bad)  # kept as it came
        assert all(b"id" in entry and b"consumer" in entry for _, entry in dead)
    finally:
        assert tracker.stop() == 0
        assert manager.stop() == 0


def test_two_managers_share_the_load_and_claim_a_dead_ones_batches(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    oxigraph = start_oxigraph(tmp_path / "oxigraph")
    store = ("--store", oxigraph.store_url, "--broker", redis_server.url)
    managers = [Server(tmp_path / f"manager-{i}", "--component", "manager", *store)
                for i in range(2)]  # fmt: skip
    try:
        # both take batches, each batch is written by one of them
        flows = [Workflow(tmp_path / f"wf-{i}", redis_server.url, tasks=80) for i in range(3)]
        for flow in flows:
            flow.finish()
        drained(redis_server)
        written = [stats(m)["batches"] for m in managers]
        assert all(written), written
        assert sum(written) == sum(flow.batches() for flow in flows)

        # one manager killed while batches stream in: the other claims its pending ones
        more = [Workflow(tmp_path / f"wf-more-{i}", redis_server.url) for i in range(3)]
        victim = f"-{managers[0].proc.pid}"
        with redis_server.client() as r:

            def pending() -> int:  # what the victim holds unacknowledged
                return sum(c["pending"] for c in r.xinfo_consumers(STREAM, GROUP)
                           if c["name"].decode().endswith(victim))  # fmt: skip

            deadline = time.monotonic() + 30
            while not pending():  # kill it while it holds batches not yet acknowledged
                assert time.monotonic() < deadline, "the manager never held a batch"
                time.sleep(0.005)
            managers[0].kill()
            left = pending()
        for flow in more:
            flow.finish()
        drained(redis_server)
        expected = expected_triples([flow.journal for flow in flows + more])
        assert triples(oxigraph.url + "/query") == expected
        # (it may have acknowledged them between the look and the kill)
        assert stats(managers[1])["broker"]["claimed"] >= left
    finally:
        for m in managers:
            m.stop()
        oxigraph.stop()


def test_redis_killed_and_restarted_while_capturing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """AOF with appendfsync always: what Redis acknowledged survives SIGKILL; what it
    could not take the workflows spooled and sent again."""
    manager = Server(tmp_path / "manager", "--component", "manager", "--component", "query",
                     "--broker", redis_server.url)  # fmt: skip
    try:
        flows = [Workflow(tmp_path / f"wf-{i}", redis_server.url) for i in range(2)]
        for _ in range(1):
            start = sum(flow.batches() for flow in flows)
            deadline = time.monotonic() + 20
            while sum(flow.batches() for flow in flows) < start + 20:
                assert time.monotonic() < deadline, "the workflows produce nothing"
                time.sleep(0.05)
            redis_server.kill()
            time.sleep(2.0)  # the outage: the workflows spool meanwhile
            redis_server.start()
        results = [flow.finish() for flow in flows]
        assert any(r["spilled_to_disk"] for r in results), results
        drained(redis_server)
        assert triples(manager.url + "/sparql") == expected_triples([f.journal for f in flows])
    finally:
        assert manager.stop() == 0


def test_openlineage_events_through_a_publishing_tracker(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """An OpenLineage event sent to a tracker with --broker is published (202), and the
    manager consuming the stream maps it as its own routes do: the run is in the store,
    nothing goes to the dead-letter stream."""
    manager = Server(tmp_path / "manager", "--component", "manager", "--component", "query",
                     "--broker", redis_server.url)  # fmt: skip
    tracker = Server(tmp_path / "tracker", "--component", "tracker", "--broker", redis_server.url)
    run_id = "01932f5e-7c1a-7b3e-9a55-2b1d3f4c5e6f"
    event = {
        "eventType": "COMPLETE", "eventTime": "2026-12-03T10:00:00Z",
        "producer": "https://example.org/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id}, "job": {"namespace": "etl", "name": "daily_orders"},
        "inputs": [{"namespace": "s3://lake", "name": "raw/orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "clean/orders"}],
    }  # fmt: skip
    try:
        resp = requests.post(tracker.url + "/api/v1/lineage", json=event, timeout=10)
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "published", resp.text
        drained(redis_server)
        ask = (f"ASK {{ ?run <{PROVML_NS}runId> ?id . "
               f'FILTER(STR(?id) = "{run_id}") }}')  # fmt: skip
        found = requests.post(manager.url + "/sparql", data={"query": ask},
                              headers={"Accept": "application/sparql-results+json"},
                              timeout=30).json()  # fmt: skip
        assert found["boolean"] is True
        with redis_server.client() as r:
            assert r.xlen(dead_letter_stream(STREAM)) == 0
    finally:
        assert tracker.stop() == 0
        assert manager.stop() == 0
