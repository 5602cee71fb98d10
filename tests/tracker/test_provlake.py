"""The tracker's ProvLake routes, fed what the real ProvLake client (PyPI ``provlake``)
sends: its offline log, written by an unmodified workflow, and records made by the
client's own model classes. Online mode against real servers, and the comparison with
capture_lib's graph of the same workflow, are in tests/e2e/test_provlake_end_to_end.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from provml.core.ids import content_iri, execution_iri, value_sha256
from provml.core.mapping import timestamp
from provml.core.wire import _UUID
from provml.interop.provlake import execution_identity, workflow_session
from provml.offline import expand, read_lines
from provml.server import build_app
from tests.e2e.provlake_workflow import SPEC, WORKFLOW
from tracker.provlake import ProspectiveStore

SCRIPT = Path(__file__).parents[1] / "e2e" / "provlake_workflow.py"
RETRO = "/provlake/retrospective-provenance"
PROSPECTIVE = "/provlake/prospective-provenance"
T0 = 1_717_243_200.25


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], float]:
    """The real client in its default disk-only mode: its log's lines and the workflow
    execution id it chose."""
    logs = tmp_path_factory.mktemp("provlake-logs")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "provlake-offline", str(logs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    lines = [line for line in Path(result["log"]).read_bytes().splitlines() if line.strip()]
    assert lines[0] == b"[]"  # persist_prospective logs the (empty) pending records
    return lines[1:], result["wf_execution"]


Client = tuple[FlaskClient, Any, Any]


@pytest.fixture
def app_client() -> Iterator[Client]:
    app = build_app(store="memory:")
    yield app.test_client(), app.extensions["provml.store"], app.extensions["provml.tracker"]


def post(client: FlaskClient, body: Any, path: str = RETRO, **kw: Any) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        path,
        data=data,
        content_type=kw.pop("content_type", "application/json"),
        query_string=kw.pop("query", {"with_validation": "False"}),
        **kw,
    )


def select(store: Any, text: str) -> list[dict[str, str]]:
    results = store.query(text)
    names = [v.value for v in results.variables]
    return [{n: s[n].value for n in names if s[n] is not None} for s in results]


def triples(store: Any) -> set[str]:
    return {str(t) for t in store.query("CONSTRUCT WHERE { ?s ?p ?o }")}


def feed(client: FlaskClient, lines: list[bytes]) -> None:
    assert client.put(PROSPECTIVE, json=SPEC).status_code in (200, 201)
    for line in lines:
        resp = post(client, line)
        assert resp.status_code == 200, resp.json
        assert resp.json["status"] == "stored" and resp.json["error"] == []


def workflow_iri(wf_execution: Any) -> str:
    return execution_iri(workflow_session(WORKFLOW, wf_execution), 1)


def test_the_real_clients_records_become_the_provml_graph(
    app_client: Client, offline_run: tuple[list[bytes], float]
) -> None:
    client, store, _ = app_client
    lines, wf_execution = offline_run
    assert len(lines) == 14  # workflow begin, end; Generate, Input, Output of 4 tasks
    feed(client, lines)
    wf = workflow_iri(wf_execution)
    rows = select(
        store,
        f"""SELECT ?name ?stage ?status WHERE {{
        ?t provml:partOf <{wf}> ; a provml:DataTransformationExecution ; provml:name ?name ;
           provml:status ?status . OPTIONAL {{ ?t provml:stage ?stage }} }}""",
    )
    assert sorted((r["name"], r.get("stage"), r["status"]) for r in rows) == [
        ("clean", None, "finished"),
        ("predict", "inference", "finished"),  # its stage: from the prospective provenance
        ("train", "training", "finished"),  # from the task's custom metadata
        ("validate", "validation", "failed"),
    ]
    [workflow] = select(
        store,
        f"""SELECT ?status ?meta ?start ?end WHERE {{
        <{wf}> a provml:WorkflowExecution ; provml:status ?status ; provml:metadata ?meta ;
               prov:startedAtTime ?start ; prov:endedAtTime ?end }}""",
    )
    assert workflow["status"] == "finished" and json.loads(workflow["meta"]) == {
        "owner": "risk-team"
    }
    # hyperparameters, used learning data, a model generated from it
    rows = select(
        store,
        f"""SELECT ?name ?value WHERE {{
        ?t provml:partOf <{wf}> ; provml:name "train" ; prov:used ?p .
        ?p a provml:LearningHyperparameterValue ; provml:name ?name ; prov:value ?value }}""",
    )
    assert sorted((r["name"], r["value"]) for r in rows) == [("epochs", "3"), ("lr", "0.1")]
    [lineage] = select(
        store,
        f"""SELECT ?data ?path ?fw ?raw WHERE {{
        ?m prov:wasGeneratedBy ?t ; a provml:Model ; prov:qualifiedGeneration/provml:framework ?fw ;
           prov:wasDerivedFrom ?data .
        ?t provml:partOf <{wf}> ; a provml:TrainingExecution ; prov:qualifiedUsage ?u .
        ?u prov:entity ?data ; provml:path ?path .  # where the training read it
        ?data a provml:LearningData ; prov:wasDerivedFrom ?raw }}""",
    )
    assert lineage["path"] == "data/clean.csv" and lineage["fw"] == "sklearn"
    assert lineage["data"] == content_iri(value_sha256({"reference": "data/clean.csv"}))
    assert lineage["raw"] == content_iri(value_sha256({"reference": "data/raw.csv"}))
    # the prediction: generated inline, by an inference task that used the model and an
    # inline input (data, not a parameter: so says the prospective provenance)
    [prediction] = select(
        store,
        f"""SELECT ?value ?input WHERE {{
        ?p a provml:Prediction ; prov:value ?value ; prov:wasGeneratedBy ?t .
        ?t provml:partOf <{wf}> ; prov:used ?m, ?i . ?m a provml:Model .
        ?i prov:value ?input }}""",
    )
    assert json.loads(prediction["value"]) == {"y": 1}
    assert json.loads(prediction["input"]) == {"x": [1, 2]}
    # times: a task starts when it is made (Generate) and ends at its Output's endTime
    records = [orjson.loads(line)[0] for line in lines]
    train = [r for r in records if r["prov_obj"].get("dt") == "train"]
    generated = train[0]["prov_obj"]["task"]["generatedTime"]
    ended = train[-1]["prov_obj"]["task"]["endTime"]
    # (compared as values: the store writes a dateTime without trailing zeros)
    times = select(
        store,
        f"""SELECT ?t WHERE {{
        ?t provml:partOf <{wf}> ; provml:name "train" ; prov:startedAtTime ?start ;
           prov:endedAtTime ?end .
        FILTER(?start = {timestamp(generated)} && ?end = {timestamp(ended)}) }}""",
    )
    assert len(times) == 1
    [error] = select(store, """SELECT ?e WHERE { ?t provml:name "validate" ; provml:error ?e }""")
    assert error["e"] == "ValueError: boom"


def test_start_and_end_of_a_task_meet_in_any_order_and_replays_add_nothing(
    offline_run: tuple[list[bytes], float],
) -> None:
    lines, _ = offline_run
    graphs = []
    for order in (lines, lines[::-1]):
        app = build_app(store="memory:")
        feed(app.test_client(), order)
        graphs.append(triples(app.extensions["provml.store"]))
    # all the records in one request (the client's bag_size > 1) make the same graph too
    app = build_app(store="memory:")
    client = app.test_client()
    assert client.put(PROSPECTIVE, json=SPEC).status_code == 201
    bag = [rec for line in lines for rec in orjson.loads(line)]
    resp = post(client, bag)
    assert resp.status_code == 200 and resp.json["records"] == 14
    assert len(resp.json["batches"]) == 1  # one workflow execution: one batch
    graphs.append(triples(app.extensions["provml.store"]))
    assert graphs[0] == graphs[1] == graphs[2]
    assert post(client, bag).status_code == 200
    assert triples(app.extensions["provml.store"]) == graphs[0]


def test_prospective_provenance_is_kept_replaced_only_when_asked(app_client: Client) -> None:
    client, store, _ = app_client
    resp = client.post(PROSPECTIVE, json=SPEC, query_string={"overwrite": "True"})
    assert resp.status_code == 201
    assert resp.json == {"dataflow_name": WORKFLOW, "data_transformations": 2, "status": "stored"}
    assert client.post(PROSPECTIVE, json=SPEC).status_code == 200  # the same again: fine
    changed = {**SPEC, "description": "v2"}
    resp = client.post(PROSPECTIVE, json=changed)
    assert resp.status_code == 409 and resp.json["error"] == "conflict"
    assert client.put(PROSPECTIVE, json=changed).status_code == 200  # the client's retry
    assert client.get(PROSPECTIVE).json["dataflows"][WORKFLOW]["description"] == "v2"
    assert store.count() == 0  # a plan alone writes nothing to the graph


def test_prospective_provenance_survives_a_restart(tmp_path: Path) -> None:
    ProspectiveStore(str(tmp_path)).put(SPEC, overwrite=False)
    again = ProspectiveStore(str(tmp_path))
    spec = again.specs()[WORKFLOW]
    assert spec.transformations["predict"].inputs == frozenset({"model", "input"})
    assert spec.transformations["predict"].stage == "inference"
    assert spec.transformations["clean"].parameters == frozenset({"drop_na"})


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "a JSON object"),
        ({"data_transformations": {}}, "dataflow_name"),
        ({"dataflow_name": "d", "data_transformations": []}, "data_transformations: must be"),
        ({"dataflow_name": "d", "data_transformations": {"t": {"stage": "cooking"}}}, "stage"),
        ({"dataflow_name": "d", "data_transformations": {"t": {"input_datasets": {}}}},
         "input_datasets"),
        ({"dataflow_name": "d",
          "data_transformations": {"t": {"input_datasets": [{"attributes": [{"dtype": "x"}]}]}}},
         "attributes[0]"),
    ],
)  # fmt: skip
def test_bad_prospective_provenance_gets_400_and_keeps_nothing(
    app_client: Client, doc: Any, fragment: str
) -> None:
    client, _, _ = app_client
    resp = client.post(PROSPECTIVE, json=doc, query_string={"overwrite": "True"})
    assert resp.status_code == 400 and resp.json["error"] == "invalid_request"
    assert fragment in resp.json["message"] + " ".join(resp.json.get("details", []))
    assert client.get(PROSPECTIVE).json == {"dataflows": {}}


def task_record(type_: str = "Generate", **kw: Any) -> dict[str, Any]:
    """A task record as the real client makes it."""
    from provlake.model.task_prov_obj import TaskProvRequestObj

    args: dict[str, Any] = {"workflow_name": WORKFLOW, "wf_exec_id": T0, "task_id": T0 + 1,
                            "generated_time": T0 + 1, "values": {"lr": 0.1}}  # fmt: skip
    args.update(kw)
    record: dict[str, Any] = TaskProvRequestObj(dt_name="train", type_=type_, **args).as_dict()
    return record


def broken(change: Any) -> list[dict[str, Any]]:
    record = task_record()
    change(record)
    return [record]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[{not json", "not valid JSON"),
        ({"act_type": "task"}, "JSON array"),
        ([1], "[0]: a ProvLake record is an object"),
        (broken(lambda r: r.update(act_type="job")), "[0].act_type"),
        (broken(lambda r: r["prov_obj"].pop("dt")), "[0].prov_obj.dt"),
        (broken(lambda r: r["prov_obj"].update(type="Start")), "[0].prov_obj.type"),
        (broken(lambda r: r["prov_obj"]["task"].update(id=None)), "prov_obj.task.id"),
        (broken(lambda r: r["prov_obj"]["task"].update(generatedTime="yesterday")),
         "generatedTime"),
        (broken(lambda r: r["prov_obj"]["task"].update(status="DONE")), "status"),
        (broken(lambda r: r["prov_obj"].update(values=[1])), "values"),
        (broken(lambda r: r["prov_obj"].update(values={"x": {"prov_attr_type": "blob",
                                                             "values": 1}})), "prov_attr_type"),
        (broken(lambda r: r.update(dataflow_name="w" * 300)), "dataflow_name"),
        (broken(lambda r: r["prov_obj"].update(dt="t" * 300)), "prov_obj.dt"),
        (broken(lambda r: r["prov_obj"].update(values={"": 1})), "[0] (as provml task_start)"),
        ([task_record("Output")], "endTime"),
        ([task_record(), *broken(lambda r: r.pop("prov_obj"))], "[1].prov_obj"),
    ],
)  # fmt: skip
def test_bad_records_get_400_and_nothing_is_queued(
    app_client: Client, body: Any, fragment: str
) -> None:
    client, store, tracker = app_client
    resp = post(client, body)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"] == "invalid_request"
    assert fragment in resp.json["message"] + " ".join(resp.json.get("details", []))
    assert store.count() == 0
    assert tracker.counts["batches_received"] == 0 and tracker.counts["provlake_rejected"] == 1


def test_wrong_content_type_and_query_string(app_client: Client) -> None:
    client, store, _ = app_client
    resp = post(client, [task_record()], content_type="text/plain")
    assert resp.status_code == 400 and "application/json" in resp.json["message"]
    resp = post(client, [task_record()], query={"with_validation": "maybe"})
    assert resp.status_code == 400 and "with_validation" in resp.json["message"]
    assert client.get(RETRO).status_code == 405
    assert store.count() == 0
    # what the client sends: ?with_validation=True&db_name=… (ignored: one store)
    resp = post(client, [task_record()], query={"with_validation": "True", "db_name": "kb"})
    assert resp.status_code == 200 and resp.json["error"] == []


def test_a_service_url_without_its_trailing_slash_still_works(app_client: Client) -> None:
    # urljoin("http://host:5000/provlake", "retrospective-provenance") drops "provlake"
    client, store, _ = app_client
    assert client.post("/prospective-provenance", json=SPEC).status_code == 201
    assert post(client, [task_record()], path="/retrospective-provenance").status_code == 200
    assert store.count() > 0


def test_cycles_become_executions_of_the_workflow(app_client: Client) -> None:
    from provlake.model.cycle_prov_obj import CycleProvRequestObj
    from provlake.model.workflow_prov_obj import WorkflowProvRequestObj

    client, store, _ = app_client
    cycle = {"cycle_name": "epoch", "iteration_id": 0, "workflow_name": WORKFLOW,
             "wf_exec_id": T0}  # fmt: skip
    bag = [
        WorkflowProvRequestObj(T0, WORKFLOW, start_time=T0).as_dict(),
        CycleProvRequestObj(type_="Input", values={"lr": 0.1, "data": {
            "prov_attr_type": "data_reference", "values": "train.csv"}},
            start_time=T0 + 1, status="RUNNING", **cycle).as_dict(),
        task_record(parent_cycle_name="epoch", parent_cycle_iteration=0),
        CycleProvRequestObj(type_="Output", values={"loss": 0.3}, start_time=T0 + 1,
                            end_time=T0 + 5, status="FINISHED", **cycle).as_dict(),
    ]  # fmt: skip
    assert post(client, bag).status_code == 200
    wf = workflow_iri(T0)
    rows = select(
        store,
        f"""SELECT ?name ?status ?param ?value WHERE {{
        ?t provml:partOf <{wf}> ; provml:name ?name .
        OPTIONAL {{ ?t provml:status ?status }}
        OPTIONAL {{ ?t prov:used ?p . ?p provml:name ?param ; prov:value ?value }} }}""",
    )
    assert sorted((r["name"], r.get("status"), r.get("param"), r.get("value")) for r in rows) == [
        ("epoch", "finished", "iteration_id", "0"),
        ("epoch", "finished", "lr", "0.1"),
        ("train", None, "lr", "0.1"),
    ]
    [loss] = select(
        store,
        """SELECT ?v WHERE { ?d prov:wasGeneratedBy ?t ; prov:value ?v .
        ?t provml:name "epoch" }""",
    )
    assert loss["v"] == "0.3"


def test_references_are_data_named_by_their_reference_or_content(app_client: Client) -> None:
    from provlake.utils.args_handler import (
        add_custom_metadata,
        get_data_reference,
        get_dataset,
        get_dataset_item,
        get_dict,
        get_kg_reference,
        get_list,
    )

    client, store, _ = app_client
    sha = "ab" * 32
    values = {
        "a": get_data_reference("s3://bucket/a.csv", data_store_id="ds_1"),
        "b": get_kg_reference("wells/42"),
        "c": add_custom_metadata(get_data_reference("m.pkl"),
                                 {"@data": "model", "sha256": sha, "framework": "torch"}),
        "d": get_dict({"inner": get_data_reference("x.csv"), "k": get_list([1, 2])}),
        "e": get_dataset([get_dataset_item({"v": 1}, order=0)]),
    }  # fmt: skip
    start = task_record(values=values)
    # another task, in another request, generates what the first one used: one node
    end = task_record("Output", task_id=T0 + 9, end_time=T0 + 10, status="FINISHED",
                      values={"out": get_data_reference("s3://bucket/a.csv",
                                                        data_store_id="ds_1")})  # fmt: skip
    assert post(client, [start]).status_code == 200
    assert post(client, [end]).status_code == 200
    a = content_iri(value_sha256({"reference": "s3://bucket/a.csv", "data_store_id": "ds_1"}))
    rows = select(
        store,
        f"""SELECT ?path ?meta ?by WHERE {{ <{a}> prov:qualifiedGeneration ?g ;
        prov:wasGeneratedBy ?by . ?g provml:path ?path ; provml:metadata ?meta .
        ?user prov:used <{a}> }}""",
    )
    assert len(rows) == 1 and rows[0]["path"] == "s3://bucket/a.csv"
    assert json.loads(rows[0]["meta"]) == {"data_store_id": "ds_1", "sha256_of": "reference"}
    [kg] = select(
        store,
        """SELECT ?meta WHERE { ?d (prov:qualifiedGeneration|^prov:entity) ?event .
        ?event provml:metadata ?meta ; provml:path "wells/42" }""",
    )
    assert json.loads(kg["meta"])["reference_type"] == "kg_reference"
    [model] = select(
        store,
        f"""SELECT ?fw WHERE {{ <{content_iri(sha)}> a provml:Model ;
        (prov:qualifiedGeneration|^prov:entity) ?event .
        ?event provml:framework ?fw ; provml:path "m.pkl" }}""",
    )
    assert model["fw"] == "torch"
    rows = select(
        store,
        """SELECT ?name ?value WHERE { ?p a provml:AttributeValue ;
        provml:name ?name ; prov:value ?value }""",
    )
    assert {r["name"]: json.loads(r["value"]) for r in rows} == {
        "d": {"inner": "x.csv", "k": [1, 2]},
        "e": [{"v": 1}],
    }


def test_nan_in_a_log_line_is_kept_as_a_string(app_client: Client) -> None:
    client, store, _ = app_client
    line = json.dumps([task_record(values={"loss": float("nan"), "lr": float("inf")})])
    assert "NaN" in line  # what the client's json.dumps writes
    assert post(client, line.encode()).status_code == 200
    rows = select(
        store,
        """SELECT ?n ?v WHERE { ?p a provml:AttributeValue ; provml:name ?n ;
        prov:value ?v }""",
    )
    assert sorted((r["n"], r["v"]) for r in rows) == [("loss", "NaN"), ("lr", "INF")]


def test_identifiers_are_deterministic_session_shaped_and_time_ordered() -> None:
    session = workflow_session(WORKFLOW, T0)
    assert _UUID.fullmatch(session) and session == workflow_session(WORKFLOW, T0)
    assert uuid.UUID(session).int >> 80 == int(T0 * 1000)  # ProvLake's id: its start time
    assert workflow_session(WORKFLOW, T0 + 1) != session
    assert workflow_session("other", T0) != session
    assert _UUID.fullmatch(workflow_session(WORKFLOW, "run-7"))
    first = execution_identity("task", WORKFLOW, T0, "train", T0 + 1)
    second = execution_identity("task", WORKFLOW, T0, "train", T0 + 2)
    assert first == execution_identity("task", WORKFLOW, T0, "train", T0 + 1)
    assert first != second and first[0] < second[0]
    assert _UUID.fullmatch(first[0]) and 0 < first[1] < 2**32
    assert execution_identity("task", WORKFLOW, T0, "test", T0 + 1) != first
    assert execution_identity("cycle", WORKFLOW, T0, "train", T0 + 1) != first


def test_offline_logs_are_read_a_bag_per_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    good = json.dumps([task_record()])
    (logs / "prov-1.log").write_text(
        f'{good}\n[]\n{{"not": "a bag"}}\n{good.replace("0.1", "NaN")}\n[{{"act_ty'
    )
    (logs / "app.log").write_text("INFO started\n")
    (logs / "x.jsonl").write_text("{}\n")
    files = expand([str(logs)], "provlake")
    assert files == [str(logs / "prov-1.log")]
    lines = list(read_lines(files[0], "provlake"))
    assert [(line.number, line.error) for line in lines] == [
        (1, None),
        (3, "not a ProvLake bag (a JSON array of records)"),
        (4, None),
        (5, "torn last line (process killed mid-write?)"),
    ]


def test_prospective_provenance_is_bounded_and_each_tokens_own(tmp_path: Path) -> None:
    """One token cannot read or replace another's dataflow (an admin can); a huge
    specification is refused; each dataflow is a file of its own; an older version's
    single file is split on start."""
    from provml.web.auth import load

    a, b, admin = "tok-a-" + "1" * 16, "tok-b-" + "2" * 16, "tok-admin-" + "3" * 16
    tokens = load(env_value=f"{a} capture team-a; {b} capture team-b; {admin} admin ops")
    store = "memory:"
    app = build_app(["tracker", "manager"], store=store, queue_dir=str(tmp_path / "q"),
                    tokens=tokens)  # fmt: skip
    client = app.test_client()

    def as_(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert client.put(PROSPECTIVE, json=SPEC, headers=as_(a)).status_code == 201
    other = {**SPEC, "data_transformations": {}}
    resp = client.put(PROSPECTIVE, json=other, headers=as_(b))
    assert resp.status_code == 403 and "team-a" in resp.json["message"]
    assert client.get(PROSPECTIVE, headers=as_(b)).json["dataflows"] == {}
    assert WORKFLOW in client.get(PROSPECTIVE, headers=as_(a)).json["dataflows"]
    # nor is team b's own data read with team a's specification
    kept = app.extensions["provml.tracker"].prospective
    assert WORKFLOW in kept.specs("team-a") and kept.specs("team-b") == {}
    huge = {**SPEC, "dataflow_name": "huge", "extra": "x" * (4 << 20)}
    resp = client.put(PROSPECTIVE, json=huge, headers=as_(b))
    assert resp.status_code == 413
    assert "huge" not in client.get(PROSPECTIVE, headers=as_(admin)).json["dataflows"]
    assert client.put(PROSPECTIVE, json=SPEC, headers=as_(admin)).status_code == 200
    files = list((tmp_path / "q" / ProspectiveStore.DIRECTORY).glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["owner"] == "team-a"
    # an older version kept every specification in one file: read, split, removed
    old = tmp_path / "old"
    old.mkdir()
    (old / ProspectiveStore.OLD_FILE).write_text(json.dumps({WORKFLOW: SPEC}))
    assert WORKFLOW in ProspectiveStore(str(old)).specs()
    assert not (old / ProspectiveStore.OLD_FILE).exists()
    assert WORKFLOW in ProspectiveStore(str(old)).specs()
