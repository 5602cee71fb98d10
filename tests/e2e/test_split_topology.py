"""The Compose topology of docker-compose.yml, without Docker: one Oxigraph server as the
shared store, two managers writing to it, two trackers (each forwarding to one of the
managers), one query service reading it — all separate processes on loopback.

Several workflows capture concurrently through both trackers; afterwards the query
service must show every record exactly once: the workflow, task and section executions
and the metrics and generated data each workflow says it captured, nothing more, and no
execution, metric or data node recorded twice with different values.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Server
from tests.sparql_servers import SparqlServer, start_oxigraph

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("split_workflow.py")
WORKFLOWS_PER_TRACKER = 4
TASKS = 4  # train/predict pairs per workflow, after one prepare task
EPOCHS = 3  # sections (each with one metric) per train task


@dataclass
class Topology:
    oxigraph: SparqlServer
    managers: list[Server] = field(default_factory=list)
    trackers: list[Server] = field(default_factory=list)
    query: Server | None = None


def start_all(specs: Sequence[tuple[Path, tuple[str, ...]]]) -> list[Server]:
    """Start ``provml serve`` processes in parallel; if one fails, stop the others."""
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(Server, data_dir, *args) for data_dir, args in specs]
    started = [f.result() for f in futures if f.exception() is None]
    for future in futures:
        error = future.exception()
        if error is not None:
            for server in started:
                server.stop()
            raise error
    return started


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    oxigraph = start_oxigraph(tmp_path / "oxigraph")
    topo = Topology(oxigraph)
    codes: dict[str, int] = {}
    try:
        store = ("--store", oxigraph.store_url)
        topo.managers = start_all(
            [(tmp_path / f"manager-{i}", ("--component", "manager", *store)) for i in range(2)]
        )
        specs = [
            (tmp_path / f"tracker-{i}", ("--component", "tracker", "--manager-url", m.url))
            for i, m in enumerate(topo.managers)
        ]
        specs.append((tmp_path / "query", ("--component", "query", *store)))
        *topo.trackers, topo.query = start_all(specs)
        yield topo
    finally:
        # trackers first (they deliver what they queued), then the managers and the
        # query service, the store last; each is stopped whatever happened to the others
        try:
            for name, server in [
                *((f"tracker-{i}", s) for i, s in enumerate(topo.trackers)),
                *((f"manager-{i}", s) for i, s in enumerate(topo.managers)),
                *([("query", topo.query)] if topo.query else []),
            ]:
                try:
                    codes[name] = server.stop()
                except Exception:
                    server.proc.kill()
                    server.proc.wait()
                    codes[name] = -1
        finally:
            oxigraph.stop()
    assert all(code == 0 for code in codes.values()), codes


def count(server: Server, where: str, var: str = "x") -> int:
    rows = server.sparql(f"SELECT (COUNT(DISTINCT ?{var}) AS ?n) WHERE {{ {where} }}")
    return int(rows[0]["n"])


def tracker_stats(tracker: Server) -> dict[str, Any]:
    resp = requests.get(tracker.url + "/api/v1/tracker/stats", timeout=5)
    assert resp.status_code == 200, resp.text
    stats: dict[str, Any] = resp.json()
    return stats


def manager_batches(manager: Server) -> int:
    resp = requests.get(manager.url + "/api/v1/stats", timeout=30)
    assert resp.status_code == 200, resp.text
    return int(resp.json().get("batches", 0))


def wait_delivered(trackers: list[Server], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Until every tracker has forwarded all it received (its queue is empty)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = [tracker_stats(t) for t in trackers]
        if all(
            s.get("queue_depth") == 0
            and s.get("batches_forwarded", 0) == s.get("batches_received", 0)
            for s in stats
        ):
            return stats
        if time.monotonic() > deadline:
            pytest.fail(f"the trackers did not deliver their queues: {stats}")
        time.sleep(0.1)


def duplicates(server: Server, where: str, subject: str, value: str) -> list[dict[str, str]]:
    """Subjects with more than one value where exactly one is expected."""
    return server.sparql(
        f"SELECT ?{subject} (COUNT(DISTINCT ?{value}) AS ?n) WHERE {{ {where} }} "
        f"GROUP BY ?{subject} HAVING (COUNT(DISTINCT ?{value}) != 1)",
    )


def test_two_trackers_two_managers_one_shared_store(topology: Topology, tmp_path: Path) -> None:
    query = topology.query
    assert query is not None
    # each tracker forwards to its own manager; both managers write to one store
    runs = []
    for i in range(WORKFLOWS_PER_TRACKER * len(topology.trackers)):
        tracker = topology.trackers[i % len(topology.trackers)]
        args = [str(tmp_path / f"wf-{i}"), tracker.url, str(i), str(TASKS), str(EPOCHS)]
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs.append((i % len(topology.trackers), proc))
    reports: list[tuple[int, dict[str, Any]]] = []
    try:
        for which, proc in runs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            reports.append((which, json.loads(out.strip().splitlines()[-1])))
    finally:
        for _, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    sent_batches: Counter[int] = Counter()
    sent_records: Counter[int] = Counter()
    for which, report in reports:
        stats = report["stats"]
        assert report["flushed"], report
        assert stats["lost"] == {} and stats["spilled_to_disk"] == 0, stats
        assert stats["resent_batches"] == 0, stats
        sent_batches[which] += stats["batches_sent"]
        sent_records[which] += stats["records_sent"]

    # every batch went through its tracker once, and on to that tracker's manager once
    tstats = wait_delivered(topology.trackers)
    for which, s in enumerate(tstats):
        assert s["batches_received"] == sent_batches[which], s
        assert s["records_received"] == sent_records[which], s
        assert s.get("forward_errors", 0) == 0 and s.get("batches_rejected", 0) == 0, s
    per_manager = [manager_batches(m) for m in topology.managers]
    assert per_manager == [sent_batches[0], sent_batches[1]]
    assert all(n > 1 for n in per_manager), per_manager  # both managers wrote

    workflows = {r["workflow"]: r for _, r in reports}
    n_workflows = len(runs)
    n_tasks = n_workflows * (1 + 2 * TASKS)
    n_sections = n_workflows * TASKS * EPOCHS
    n_metrics = sum(r["metrics"] for r in workflows.values())
    assert len(workflows) == n_workflows
    assert n_metrics == n_workflows * TASKS * (EPOCHS + 1)
    generated = {iri for r in workflows.values() for iri in r["generated"]}
    assert len(generated) == n_workflows * (1 + 2 * TASKS)

    # the query service (its own process) sees what both managers wrote: exact counts
    assert count(query, "?x a provml:WorkflowExecution") == n_workflows
    task_where = "?x provml:partOf ?w . ?w a provml:WorkflowExecution"
    assert count(query, task_where) == n_tasks
    section_where = "?x a provml:LearningStageSectionExecution"
    assert count(query, section_where) == n_sections
    assert count(query, "?x a prov:Activity") == n_workflows + n_tasks + n_sections
    assert count(query, "?x a provml:ModelEvaluation") == n_metrics
    assert count(query, "?x a provml:Data ; prov:wasGeneratedBy ?e") == len(generated)

    # … and exactly the ones each workflow captured
    rows = query.sparql("SELECT ?w WHERE { ?w a provml:WorkflowExecution }")
    assert {r["w"] for r in rows} == set(workflows)
    found: dict[str, set[str]] = defaultdict(set)
    for r in query.sparql(f"SELECT ?w ?x WHERE {{ {task_where} }}"):
        found[r["w"]].add(r["x"])
    assert found == {w: set(r["tasks"]) for w, r in workflows.items()}
    sections: dict[str, set[str]] = defaultdict(set)
    rows = query.sparql("SELECT ?w ?s WHERE { ?s provml:partOf/provml:partOf ?w . "
                         "?w a provml:WorkflowExecution }")  # fmt: skip
    for r in rows:
        sections[r["w"]].add(r["s"])
    assert sections == {w: set(r["sections"]) for w, r in workflows.items()}
    metrics = Counter(
        r["w"]
        for r in query.sparql(
            "SELECT ?w ?m WHERE { ?m a provml:ModelEvaluation ; prov:wasGeneratedBy ?e . "
            "?e provml:partOf+ ?w . ?w a provml:WorkflowExecution }",
        )
    )
    assert metrics == {w: r["metrics"] for w, r in workflows.items()}
    rows = query.sparql("SELECT DISTINCT ?d WHERE { ?d a provml:Data ; prov:wasGeneratedBy ?e }")
    assert {r["d"] for r in rows} == generated
    # the plans are shared: one workflow plan and its three tasks' plans, for all runs
    assert count(query, "?x a provml:Workflow") == 1
    assert (
        count(query, "<https://provml.dev/id/plan/split-topology> provml:hasTransformation ?x") == 3
    )
    # the one file every workflow used is one node, used by every prepare task
    shared = query.sparql(
        "SELECT (COUNT(DISTINCT ?t) AS ?n) WHERE { ?t prov:qualifiedUsage ?u . "
        "?u prov:entity ?d ; prov:hadRole/provml:name 'labels' }",
    )
    assert shared == [{"n": str(n_workflows)}]
    assert count(query, "?u prov:hadRole/provml:name 'labels' ; prov:entity ?x") == 1

    # no record landed twice with different values
    once = [
        ("?e a prov:Activity ; prov:startedAtTime ?t", "e", "t"),
        ("?e a prov:Activity ; prov:endedAtTime ?t", "e", "t"),
        ("?e a prov:Activity ; provml:status ?t", "e", "t"),
        ("?e a provml:WorkflowExecution ; provml:session ?t", "e", "t"),
        ("?e a prov:Activity ; prov:qualifiedAssociation/prov:hadPlan ?t", "e", "t"),
        ("?m a provml:ModelEvaluation ; prov:value ?v", "m", "v"),
        ("?m a provml:ModelEvaluation ; prov:wasGeneratedBy ?v", "m", "v"),
        ("?d a provml:Data ; prov:wasGeneratedBy ?v", "d", "v"),
    ]
    for where, subject, value in once:
        assert duplicates(query, where, subject, value) == [], where
    rows = query.sparql("SELECT DISTINCT ?s WHERE { ?w provml:session ?s }")
    assert sorted(r["s"] for r in rows) == sorted(r["stats"]["session"] for r in workflows.values())
