"""A workflow instrumented with the real ProvLake client (PyPI ``provlake``, unmodified),
captured by provml in the client's online mode and from its offline log, compared with
the same workflow captured by capture_lib: the same PROV-ML graph, up to identifiers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from provml.core.ids import execution_iri
from provml.interop.provlake import workflow_session
from tests.conftest import Server, provml_cmd
from tests.e2e.provlake_workflow import SPEC, WORKFLOW

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("provlake_workflow.py")

_TIME = 'IF(isLiteral(?o) && datatype(?o) = xsd:dateTime, "<time>", STR(?o))'

#: aspect of a workflow execution <W> → query; every execution, data node and plan is
#: reached from <W> and described by names, classes and values, never by its IRI
SHAPE = {
    "workflow": f"""SELECT ?p ?v WHERE {{ <W> ?p ?o .
        FILTER(?p IN (rdf:type, provml:name, provml:status, prov:startedAtTime,
                      prov:endedAtTime, provml:parameters))
        BIND({_TIME} AS ?v) }}""",
    "tasks": f"""SELECT ?task ?p ?v WHERE {{ ?t provml:partOf <W> ; provml:name ?task ; ?p ?o .
        FILTER(isLiteral(?o) || ?p = rdf:type)
        FILTER(?p NOT IN (provml:cpuSeconds, provml:maxRssBytes))
        BIND({_TIME} AS ?v) }}""",
    "plans": """SELECT ?task ?cls WHERE { ?t provml:partOf <W> ; provml:name ?task ;
        prov:qualifiedAssociation/prov:hadPlan ?plan . ?plan a ?cls }""",
    "plan attributes": """SELECT ?task ?link ?attr ?cls WHERE {
        ?t provml:partOf <W> ; provml:name ?task ; prov:qualifiedAssociation/prov:hadPlan ?plan .
        ?plan ?link ?a . ?a provml:name ?attr ; a ?cls .
        FILTER(?link IN (provml:hasInput, provml:hasOutput, provml:hasParameter)) }""",
    "parameters": """SELECT ?task ?name ?value ?cls ?declared WHERE {
        ?t provml:partOf <W> ; provml:name ?task ; prov:used ?v .
        ?v a provml:AttributeValue, ?cls ; provml:name ?name ; prov:value ?value ;
           provml:valueOf/provml:name ?declared }""",
    "used": """SELECT ?task ?role ?cls ?value WHERE {
        ?t provml:partOf <W> ; provml:name ?task ; prov:qualifiedUsage ?u .
        ?u prov:hadRole/provml:name ?role ; prov:entity ?d ; prov:atTime ?at .
        ?t prov:used ?d . ?d a ?cls . OPTIONAL { ?d prov:value ?value } }""",
    "generated": """SELECT ?task ?role ?cls ?value WHERE {
        ?t provml:partOf <W> ; provml:name ?task .
        ?g prov:activity ?t ; prov:hadRole/provml:name ?role ; prov:atTime ?at .
        ?d prov:qualifiedGeneration ?g ; prov:wasGeneratedBy ?t ; a ?cls .
        OPTIONAL { ?d prov:value ?value } }""",
    "derivations": """SELECT ?task ?role ?link ?from ?by WHERE {
        ?t provml:partOf <W> ; provml:name ?task .
        ?g prov:activity ?t ; prov:hadRole/provml:name ?role .
        ?d prov:qualifiedGeneration ?g ; ?link ?i .
        FILTER(?link IN (prov:wasDerivedFrom, prov:wasInfluencedBy))
        ?t2 provml:partOf <W> ; provml:name ?by ; prov:qualifiedUsage ?u .
        ?u prov:entity ?i ; prov:hadRole/provml:name ?from }""",
}


def shape(server: Server, workflow: str) -> dict[str, list[tuple[str, ...]]]:
    out = {}
    for aspect, query in SHAPE.items():
        names = query.split("WHERE")[0].split()[1:]
        rows = server.sparql(query.replace("<W>", f"<{workflow}>"))
        out[aspect] = sorted(tuple(r.get(n[1:], "") for n in names) for r in rows)
    return out


def run(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Traceback" not in out.stderr, out.stderr  # the client logs its failures only
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ingest(server: Server, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        provml_cmd("ingest", "--format", "provlake", "--url", server.url, "--quiet", str(path)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_provlake_workflow_maps_to_the_graph_capture_lib_makes(
    server: Server, tmp_path: Path
) -> None:
    ours = run("capture-lib", server.url, str(tmp_path / "cl"))
    assert ours["flushed"] and ours["stats"]["lost"] == {}, ours
    # online: the client POSTs its prospective provenance, then each record as it comes
    online = run("provlake-online", server.url + "/provlake/", str(tmp_path / "online"))
    # offline (its default mode): a log file, loaded afterwards; its prospective
    # provenance is the online run's (the client does not log it)
    offline = run("provlake-offline", str(tmp_path / "offline"))
    result = ingest(server, tmp_path / "offline")
    assert result.returncode == 0, result.stderr
    assert "ingested 14 records in 14 batches from 1 files" in result.stdout

    expected = shape(server, ours["workflow"])
    assert {row[0] for row in expected["tasks"]} == {"clean", "train", "validate", "predict"}
    for provlake in (online, offline):
        workflow = execution_iri(workflow_session(WORKFLOW, provlake["wf_execution"]), 1)
        got = shape(server, workflow)
        for aspect in SHAPE:
            assert got[aspect] == expected[aspect], aspect
    # one plan for the three runs, declaring what each of them used and generated
    attributes = {row[1:3] for row in expected["plan attributes"] if row[0] == "predict"}
    provml = "https://provml.dev/ns#"
    assert attributes == {(provml + "hasInput", "model"), (provml + "hasInput", "input"),
                          (provml + "hasOutput", "prediction")}  # fmt: skip

    # the online run also wrote its log (the client's default): loading it adds nothing
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    before = server.sparql(count)
    result = ingest(server, Path(online["log"]))
    assert result.returncode == 0, result.stderr
    assert server.sparql(count) == before


def test_the_client_against_a_split_tracker_and_bad_input(tmp_path: Path) -> None:
    store = Server(tmp_path / "data", "--component", "manager", "--component", "query")
    tracker = Server(tmp_path / "tracker", "--component", "tracker", "--manager-url", store.url)
    try:
        url = tracker.url + "/provlake/prospective-provenance"
        assert requests.post(url, json=SPEC, params={"overwrite": True}, timeout=10).ok
        run("provlake-online", tracker.url + "/provlake/", str(tmp_path / "logs"))
        rows = store.sparql("""SELECT ?name WHERE {
            ?t a provml:InferenceExecution ; provml:name ?name }""")
        assert rows == [{"name": "predict"}]  # the prospective provenance was used
        stats = requests.get(store.url + "/api/v1/stats", timeout=5).json()
        # a bad request is refused whole by the tracker and never reaches the manager
        bad = [{"act_type": "task", "dataflow_name": WORKFLOW, "prov_obj": {"dt": "x"}}]
        resp = requests.post(tracker.url + "/provlake/retrospective-provenance", json=bad,
                             timeout=10)  # fmt: skip
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
        assert "[0].prov_obj.task" in resp.json()["message"]
        assert requests.get(store.url + "/api/v1/stats", timeout=5).json() == stats
    finally:
        assert tracker.stop() == 0
        assert store.stop() == 0
    # the tracker kept the prospective provenance across its restart
    tracker = Server(tmp_path / "tracker", "--component", "tracker", "--manager-url", store.url)
    try:
        got = requests.get(tracker.url + "/provlake/prospective-provenance", timeout=5).json()
        assert got == {"dataflows": {WORKFLOW: SPEC}}
    finally:
        assert tracker.stop() == 0
