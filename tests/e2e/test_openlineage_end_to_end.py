"""The real ``openlineage-python`` client (HTTP transport, unmodified, configured as a
user would: the server's base URL and an ``api_key`` that is a provml capture token)
against provml's all-in-one server on a real port, with access tokens and the durable
queue: a Spark-like job writes a table, a capture_lib training run reads it, and the
questions answer across both; the lineage browser's GET on the same path still works;
bad input gets a 4xx JSON answer and changes nothing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

import capture_lib as cl
from provml.interop import openlineage as ol
from provml.server import build_app
from provml.web import auth
from tests.cli.conftest import LiveServer
from tests.conftest import needs
from tests.provml.test_openlineage import SCENARIOS, events_of

CAPTURE = "c" * 40
READ = "r" * 40
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    queue = tmp_path_factory.mktemp("ol") / "queue"
    tokens = auth.load(env_value=f"{CAPTURE} capture spark; {READ} read reader")
    app = build_app(store="memory:", queue_dir=str(queue), tokens=tokens)
    srv = LiveServer(app)
    yield srv
    srv.stop()


def client(url: str, **transport: Any) -> Any:
    from openlineage.client import OpenLineageClient

    return OpenLineageClient(
        config={
            "transport": {
                "type": "http",
                "url": url,
                "auth": {"type": "api_key", "apiKey": CAPTURE},
                **transport,
            }
        }
    )


def read(srv: LiveServer, path: str, **params: str) -> requests.Response:
    return requests.get(
        srv.url + path,
        params=params,
        timeout=30,
        headers={"Authorization": f"Bearer {READ}", "Accept": "application/sparql-results+json"},
    )


def rows(resp: requests.Response) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.text
    return [{k: v["value"] for k, v in b.items()} for b in resp.json()["results"]["bindings"]]


def triples(srv: LiveServer) -> int:
    resp = requests.post(
        srv.url + "/sparql",
        data={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
        headers={"Authorization": f"Bearer {READ}", "Accept": "application/sparql-results+json"},
        timeout=30,
    )
    return int(rows(resp)[0]["n"])


def spark_events(table: Path, source: tuple[str, str]) -> list[Any]:
    """A Spark application (parent run) whose one action reads ``source`` and writes the
    table at ``table``, with schema, column lineage and SQL facets, as the Spark
    integration sends them."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        column_lineage_dataset as cll,
    )
    from openlineage.client.facet_v2 import parent_run, schema_dataset, sql_job

    app = Run(runId="01936893-9751-7a91-a2a0-000000000001")
    app_job = Job(namespace="spark", name="nightly_etl")
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=app.runId),
        job=parent_run.Job(namespace="spark", name="nightly_etl"),
    )
    run = Run(runId="01936893-9751-7a91-a2a0-000000000002", facets={"parent": parent})
    job = Job(
        namespace="spark",
        name="nightly_etl.write_table",
        facets={"sql": sql_job.SQLJobFacet(query="INSERT INTO t SELECT a, b FROM events")},
    )
    out = OutputDataset(
        namespace="file",
        name=str(table),
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="a", type="int"),
                    schema_dataset.SchemaDatasetFacetFields(name="b", type="string"),
                ]
            ),
            "columnLineage": cll.ColumnLineageDatasetFacet(
                fields={
                    c: cll.Fields(
                        inputFields=[cll.InputField(namespace=source[0], name=source[1], field=c)]
                    )
                    for c in ("a", "b")
                }
            ),
        },
    )
    inp = InputDataset(namespace=source[0], name=source[1])

    def at(minute: int) -> str:
        return f"2024-05-01T12:{minute:02d}:00.000Z"

    def event(state: RunState, minute: int, which: Run, what: Job, io: bool) -> RunEvent:
        data: dict[str, Any] = {"inputs": [inp], "outputs": [out]} if io else {}
        # the client's own producer and schemaURL (2-0-2)
        return RunEvent(eventType=state, eventTime=at(minute), run=which, job=what, **data)

    return [
        event(RunState.START, 0, app, app_job, False),
        event(RunState.START, 1, run, job, True),
        event(RunState.RUNNING, 2, run, job, False),
        event(RunState.COMPLETE, 3, run, job, True),
        event(RunState.COMPLETE, 4, app, app_job, False),
    ]


def test_a_spark_job_and_a_capture_lib_training_meet(server: LiveServer, tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,x\n2,y\n")
    source = ("s3://raw", "events/2024-05-01")
    events = spark_events(table, source)
    lineage = client(server.url)
    for e in events[:3]:
        lineage.emit(e)
    # the training reads the table (by its absolute path) before the job's COMPLETE came
    cl.init(url=server.url, mode="http", token=CAPTURE)
    try:
        model = tmp_path / "model.bin"
        with (
            cl.workflow("train-on-table") as wf,
            wf.task("train", stage="training", used={"data": cl.dataset(str(table))}) as t,
        ):
            model.write_bytes(b"weights")
            t.generated(model=cl.model(str(model), framework="none"))
        assert cl.flush(timeout=10)
    finally:
        cl.shutdown(timeout=10)
    gz = client(server.url, compression="gzip")  # the transport's gzip option works too
    for e in events[3:]:
        gz.emit(e)
    src = ol.dataset_iri(*source)
    down = rows(read(server, "/api/v1/questions/downstream", source=src))
    assert {r["kind"] for r in down} == {"data", "model"}
    assert any(r["entity"] == ol.dataset_iri("file", str(table)) for r in down)
    models = rows(read(server, "/api/v1/questions/was-used", source=src))
    assert [r["model"].rsplit("/", 1)[1][:8] for r in models] == [_sha(model)[:8]]
    consumers = rows(read(server, "/api/v1/questions/workflow-consumers", workflow="nightly_etl"))
    assert {(r["consumer"], r["consumerTask"]) for r in consumers} == {("train-on-table", "train")}
    # the lineage browser: /api/v1/runs lists the Spark application (a workflow run with a
    # start), finished; GET /api/v1/lineage (the same path as the POST) shows the table
    runs = read(server, "/api/v1/runs").json()["runs"]
    app = [r for r in runs if r["workflow"] == "nightly_etl"]
    assert [(r["run"], r["status"]) for r in app] == [
        (ol.run_iri("01936893-9751-7a91-a2a0-000000000001"), "finished")
    ]
    view = read(server, "/api/v1/lineage", node=ol.dataset_iri("file", str(table)))
    assert view.status_code == 200, view.text
    assert "nightly_etl.write_table" in view.text
    # everything again, in reverse: nothing is added
    before = triples(server)
    for e in reversed(events):
        lineage.emit(e)
    assert triples(server) == before


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


GOOD = {
    "eventType": "START",
    "eventTime": "2024-05-01T12:00:00Z",
    "producer": "p",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "run": {"runId": "bad-input-run"},
    "job": {"namespace": "n", "name": "j"},
}


@pytest.mark.parametrize(
    ("why", "body", "status", "message"),
    [
        ("malformed JSON", b'{"eventType": "START",', 400, "not valid JSON"),
        ("missing runId", orjson.dumps({**GOOD, "run": {}}), 400, "run.runId"),
        ("wrong eventType", orjson.dumps({**GOOD, "eventType": "FINISHED"}), 400, "eventType"),
        ("one bad event of two", orjson.dumps([GOOD, {**GOOD, "job": {}}]), 400, "[1].job"),
        ("huge body", b'{"x": "' + b"x" * (17 << 20) + b'"}', 413, "over the limit"),
        ("bad gzip", b"not gzip", 400, "gzip"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    server: LiveServer, why: str, body: bytes, status: int, message: str
) -> None:
    before = triples(server)
    headers = {"Authorization": f"Bearer {CAPTURE}", "Content-Type": "application/json"}
    if why == "bad gzip":
        headers["Content-Encoding"] = "gzip"
    resp = requests.post(server.url + "/api/v1/lineage", data=body, headers=headers, timeout=60)
    assert resp.status_code == status, resp.text[:300]
    answer = resp.json()
    assert answer["error"] and message in answer["message"] + " ".join(answer.get("details", []))
    assert triples(server) == before


def test_tokens_and_methods_on_the_shared_path(server: LiveServer) -> None:
    url = server.url + "/api/v1/lineage"
    body = gzip.compress(orjson.dumps({**GOOD, "run": {"runId": "token-run"}}))
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 401
    reader = {**headers, "Authorization": f"Bearer {READ}"}
    assert requests.post(url, data=body, headers=reader, timeout=10).status_code == 403
    writer = {**headers, "Authorization": f"Bearer {CAPTURE}"}
    resp = requests.post(url, data=body, headers=writer, timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "stored", resp.text
    assert (
        requests.get(
            url,
            params={"node": ol.run_iri("token-run")},
            timeout=10,
            headers={"Authorization": f"Bearer {CAPTURE}"},
        ).status_code
        == 403
    )
    assert read(server, "/api/v1/lineage", node=ol.run_iri("token-run")).status_code == 200
    stats = read(server, "/api/v1/tracker/stats").json()
    assert stats["openlineage_events_received"] >= 1 and stats["openlineage_rejected"] >= 0


@needs(SCENARIOS)
def test_a_tracker_of_its_own_forwards_events_to_the_manager(tmp_path: Path) -> None:
    """Split deployment: the tracker queues the events and its HTTP forwarder hands them
    to the manager's /api/v1/batches, which maps them; the CLL scenario's events there."""

    back = LiveServer(build_app(["manager", "query"], store="memory:"))
    try:
        front = LiveServer(
            build_app(["tracker"], manager_url=back.url, queue_dir=str(tmp_path / "q"))
        )
        try:
            body = orjson.dumps(events_of("CLL"))
            headers = {"Content-Type": "application/json"}
            resp = requests.post(front.url + "/api/v1/lineage", data=body, headers=headers)
            assert resp.status_code == 200, resp.text
            assert [e["status"] for e in resp.json()["events"]] == ["stored"] * 9
        finally:
            front.stop()
        query = "SELECT ?s WHERE { ?r provml:runId ?id ; provml:status ?s }"
        resp = requests.post(back.url + "/sparql", data={"query": query}, timeout=30,
                             headers={"Accept": "application/sparql-results+json"})  # fmt: skip
        assert sorted(r["s"] for r in rows(resp)) == ["finished"] * 4
    finally:
        back.stop()
