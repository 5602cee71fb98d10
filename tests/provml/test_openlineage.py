"""OpenLineage events → the graph (docs/openlineage.md): the corpus scenarios' expected
graphs, events in every order and more than once, the checks, and the join by place
with capture_lib's data. Through the manager (mapping, join, derivation edges) into an
in-memory store; tests/e2e/test_openlineage_end_to_end.py takes the HTTP path."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
import pytest
import rdflib
from rdflib.namespace import OWL, RDF

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.errors import ValidationError
from provml.core.vocab import PROVML_NS, ontology_turtle
from provml.interop import openlineage as ol
from provml.interop.openlineage import graph
from query import questions
from tests.conftest import CORPUS, needs

SCENARIOS = CORPUS / "openlineage-compatibility-tests" / "consumer" / "scenarios"
pytestmark = needs(SCENARIOS)
RUN = "https://provml.dev/id/ol/run/"
DS = "https://provml.dev/id/ol/dataset/"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def events_of(scenario: str) -> list[dict[str, Any]]:
    files = sorted((SCENARIOS / scenario / "events").glob("*.json"))
    return [json.loads(f.read_text()) for f in files]


def load(events: list[dict[str, Any]], store: OxigraphStore | None = None) -> OxigraphStore:
    store = store or OxigraphStore(None)
    manager = Manager(store)
    for event in events:
        manager.apply_json({"openlineage": event})
    return store


def select(store: OxigraphStore, query: str) -> list[dict[str, str]]:
    result = store.query(query)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = result.variables
    return [{v.value: row[v].value for v in names if row[v] is not None} for row in result]


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict[str, str]]:
    return select(store, questions.get(name).text(params))


def quads(store: OxigraphStore) -> set[tuple[str, ...]]:
    rows = select(store, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }")
    return {(r["s"], r["p"], r["o"]) for r in rows}


def event(
    kind: str | None, run_id: str = "r-1", time: str = "2024-05-01T12:00:00Z", **more: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "eventTime": time,
        "producer": "https://example.com/test",
        "schemaURL": SCHEMA,
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "spark", "name": "etl"},
    }
    if kind is not None:
        doc["eventType"] = kind
    doc.update(more)
    return doc


def test_simple_run_event_scenario() -> None:
    # one COMPLETE event: a finished run of job_namespace/job_name that used one BigQuery
    # table and generated another; no START, so no start time
    store = load(events_of("simple_run_event"))
    run = RUN + "run_id"
    rows = select(
        store,
        f"""SELECT ?runId ?name ?ns ?status ?end ?start WHERE {{
        <{run}> a prov:Activity, provml:WorkflowExecution ; provml:runId ?runId ;
            provml:name ?name ; provml:status ?status ; prov:endedAtTime ?end ;
            prov:qualifiedAssociation/prov:hadPlan ?plan .
        ?plan provml:namespace ?ns ; provml:name ?name .
        OPTIONAL {{ <{run}> prov:startedAtTime ?start }} }}""",
    )
    assert rows == [
        {
            "runId": "run_id",
            "name": "job_name",
            "ns": "job_namespace",
            "status": "finished",
            "end": "2023-04-04T13:21:16.098Z",
        }
    ]
    lineage = select(
        store,
        f"""SELECT ?in ?out ?ins ?inn WHERE {{
        <{run}> prov:used ?in . ?out prov:wasGeneratedBy <{run}> ; prov:wasDerivedFrom ?in .
        ?in provml:namespace ?ins ; provml:name ?inn }}""",
    )
    assert lineage == [
        {
            "in": DS + "bigquery/test.table.input",
            "out": DS + "bigquery/test.table.output",
            "ins": "bigquery",
            "inn": "test.table.input",
        }
    ]
    # the runs question lists it, finished
    assert [r["status"] for r in ask(store, "runs") if r["run"] == run] == ["finished"]


def test_airflow_scenario() -> None:
    store = load(events_of("airflow"))
    # three DAG runs (workflow runs), each task run part of its DAG run
    dags = select(
        store,
        """SELECT ?dag (COUNT(DISTINCT ?task) AS ?tasks) ?status WHERE {
        ?run a provml:WorkflowExecution ; provml:name ?dag ; provml:status ?status ;
             prov:startedAtTime ?s ; prov:endedAtTime ?e .
        ?t provml:partOf ?run ; provml:name ?task . FILTER(?t != ?run) }
        GROUP BY ?dag ?status ORDER BY ?dag""",
    )
    assert dags == [
        {"dag": "BQ", "tasks": "3", "status": "finished"},
        {"dag": "dag", "tasks": "1", "status": "finished"},
        {"dag": "gcs_hook", "tasks": "9", "status": "finished"},
    ]
    # the BigQuery chain: copied.csv → upload → upload_cp → result.csv
    down = ask(store, "downstream", source=ol.dataset_iri("gs://mock-bucket", "copied.csv"))
    assert {r["entity"].removeprefix(DS) for r in down} == {
        "bigquery/mock-project.test.upload",
        "bigquery/mock-project.test.upload_cp",
        "gs%3A%2F%2Fmock-bucket/result.csv",
    }
    # column lineage: upload.a from copied.csv.a and test.csv.a
    cols = select(
        store,
        f"""SELECT ?from WHERE {{
        <{DS}bigquery/mock-project.test.upload/column/a> prov:wasDerivedFrom ?c .
        ?c provml:columnOf/provml:name ?ds ; provml:name ?f . BIND(CONCAT(?ds, ".", ?f) AS ?from) }}
        ORDER BY ?from""",
    )
    assert [r["from"] for r in cols] == ["copied.csv.a", "test.csv.a"]
    # the file datasets have a location (the join by place); gs:// ones their URI
    places = select(
        store,
        f"""SELECT ?loc WHERE {{
        <{DS}file/%2Ffiles%2Ftemp%2Fdownloaded_file.txt> provml:location ?loc }} ORDER BY ?loc""",
    )
    assert [r["loc"] for r in places] == [
        "/files/temp/downloaded_file.txt",
        "file:///files/temp/downloaded_file.txt",
    ]
    # ownership: an agent the job is attributed to; an unknown facet is kept as JSON
    owners = select(
        store,
        """SELECT DISTINCT ?who WHERE { ?plan a provml:OpenLineageJob ;
        provml:name "BQ.upload" ; prov:wasAttributedTo/provml:name ?who }""",
    )
    assert owners == [{"who": "***"}]
    kept = select(
        store,
        f"""SELECT ?m WHERE {{
        <{RUN}01936898-5bd1-7215-b04d-472cd95b85cb> provml:metadata ?m }}""",
    )
    assert any("unknownSourceAttribute" in r["m"] for r in kept)


def test_column_lineage_scenario() -> None:
    store = load(events_of("CLL"))
    app = RUN + "019127de-fd25-7707-bfa4-3ec02693a531"
    ctas = RUN + "019127df-0850-72bc-b214-b255290588a6"
    tbl1 = DS + "file/%2Ftmp%2Fcll_test%2Ftbl1"
    # the Spark application is the workflow run; its three actions are part of it
    parts = select(
        store,
        f"""SELECT ?name WHERE {{ ?t provml:partOf <{app}> ;
        provml:name ?name . FILTER(?t != <{app}>) }} ORDER BY ?name""",
    )
    assert sorted(r["name"].rsplit(".", 1)[1] for r in parts) == [
        "cll_test_cll_source1",
        "cll_test_cll_source2",
        "default_tbl1",
    ]
    # the CTAS run: START, RUNNING ×2, COMPLETE merged into one finished run
    state = select(
        store,
        f"""SELECT ?status (GROUP_CONCAT(?type; separator=",") AS ?types)
        WHERE {{ <{ctas}> provml:status ?status ; provml:eventType ?type }} GROUP BY ?status""",
    )
    assert len(state) == 1 and state[0]["status"] == "finished"
    assert sorted(state[0]["types"].split(",")) == ["COMPLETE", "RUNNING", "START"]
    # tbl1 derived from both sources; its columns from theirs, through the CTAS run
    cols = select(
        store,
        f"""SELECT ?out ?in WHERE {{
        ?o provml:columnOf <{tbl1}> ; provml:name ?out ; prov:wasDerivedFrom ?i ;
           prov:qualifiedDerivation [ prov:entity ?i ; prov:hadActivity <{ctas}> ] .
        ?i provml:columnOf/provml:name ?ds ; provml:name ?f .
        BIND(CONCAT(REPLACE(?ds, "^.*/", ""), ".", ?f) AS ?in) }} ORDER BY ?out ?in""",
    )
    assert [(r["out"], r["in"]) for r in cols] == [
        ("agg", "cll_source1.a"),
        ("agg", "cll_source1.b"),
        ("agg", "cll_source2.a"),
        ("agg", "cll_source2.c"),
        ("ident", "cll_source1.a"),
        ("ident", "cll_source1.b"),
        ("ident", "cll_source2.a"),
        ("trans", "cll_source1.a"),
        ("trans", "cll_source1.b"),
        ("trans", "cll_source2.a"),
    ]
    schema = select(
        store,
        f"""SELECT ?name ?type WHERE {{ ?c provml:columnOf <{tbl1}> ;
        provml:name ?name ; provml:dataType ?type }} ORDER BY ?name""",
    )
    assert [(r["name"], r["type"]) for r in schema] == [
        ("agg", "long"),
        ("ident", "integer"),
        ("trans", "string"),
    ]
    derived = select(store, f"SELECT ?in WHERE {{ <{tbl1}> prov:wasDerivedFrom ?in }} ORDER BY ?in")
    assert [r["in"].rsplit("%2F", 1)[1] for r in derived] == ["cll_source1", "cll_source2"]
    assert ask(store, "workflow-consumers", workflow="open_lineage_integration_create_table") == []


@pytest.mark.parametrize("scenario", ["CLL", "airflow"])
def test_any_order_and_replays_give_the_same_graph(scenario: str) -> None:
    # airflow: the BQ DAG run, START and COMPLETE of it and of its 3 tasks; CLL: the
    # CTAS run's 4 events and the Spark application's COMPLETE
    events = events_of(scenario)[:8] if scenario == "airflow" else events_of(scenario)[4:]
    reference = quads(load(events))
    orders = list(itertools.permutations(events))
    for order in [*orders[:: max(1, len(orders) // 24)], orders[-1]]:
        assert quads(load(list(order))) == reference
    twice = load(events + events[::-1])  # every event again, in reverse: nothing more
    assert quads(twice) == reference


def test_a_run_whose_parent_facet_comes_in_one_event_only_is_its_parents_task() -> None:
    # START without the parent facet, COMPLETE with it: the task run was mapped as a
    # workflow run of its own too (listed by `runs`, its own task), in any order
    def parent(run_id: str, job: str) -> dict[str, Any]:
        return {"parent": {"run": {"runId": run_id}, "job": {"namespace": "a", "name": job}}}

    task = [
        event("START", run_id="t"),
        event("COMPLETE", run_id="t", time="2024-05-01T12:05:00Z",
              run={"runId": "t", "facets": parent("dag-run", "dag")}),
    ]  # fmt: skip
    dag = [event("START", run_id="dag-run", job={"namespace": "a", "name": "dag"})]
    # a run part of a parent and itself the parent of a run stays a workflow run
    middle = [
        event("START", run_id="mid"),
        event("START", run_id="leaf", run={"runId": "leaf", "facets": parent("mid", "m")}),
        event("OTHER", run_id="mid", run={"runId": "mid", "facets": parent("dag-run", "dag")}),
    ]
    events = task + dag + middle
    reference = None
    for order in [events, events[::-1], task[::-1] + middle[::-1] + dag]:
        store = load(order)
        runs = {r["run"] for r in ask(store, "runs")}
        assert RUN + "t" not in runs and RUN + "dag-run" in runs
        part_of = select(store, "SELECT ?r ?p WHERE { ?r provml:partOf ?p }")
        assert {"r": RUN + "t", "p": RUN + "dag-run"} in part_of
        assert {"r": RUN + "t", "p": RUN + "t"} not in part_of
        assert {"r": RUN + "mid", "p": RUN + "mid"} not in part_of
        assert bool(store.query(f"ASK {{ <{RUN}mid> a provml:WorkflowExecution }}"))
        reference = reference or quads(store)
        assert quads(store) == reference
        assert quads(load(events, store)) == reference  # again: nothing more


def test_a_run_that_never_ends_stays_running() -> None:
    store = load([event("START"), event("RUNNING", time="2024-05-01T12:05:00Z")])
    (row,) = [r for r in ask(store, "runs") if r["run"] == RUN + "r-1"]
    assert row["status"] == "running" and "ended" not in row
    store = load(
        [
            event(
                "FAIL",
                time="2024-05-01T12:09:00Z",
                run={
                    "runId": "r-1",
                    "facets": {"errorMessage": {"message": "boom", "programmingLanguage": "py"}},
                },
            )
        ],
        store,
    )
    (row,) = [r for r in ask(store, "runs") if r["run"] == RUN + "r-1"]
    assert row["status"] == "failed"
    errors = select(store, f"SELECT ?e WHERE {{ <{RUN}r-1> provml:error ?e }}")
    assert errors == [{"e": "boom"}]


def test_facets_become_attributes_and_agents() -> None:
    job = {
        "namespace": "spark",
        "name": "etl",
        "facets": {
            "sql": {"query": "SELECT * FROM a"},
            "sourceCodeLocation": {
                "type": "git",
                "url": "https://git/x/blob/main/etl.py",
                "repoUrl": "https://git/x",
                "version": "abc123",
                "branch": "main",
            },
            "ownership": {"owners": [{"name": "team:data", "type": "TEAM"}]},
            "madeUpFacet": {"anything": [1, 2]},
        },
    }
    out = {
        "namespace": "s3://bucket",
        "name": "out/part",
        "facets": {
            "version": {"datasetVersion": "7"},
            "dataSource": {"name": "s3", "uri": "s3://bucket"},
            "ownership": {"owners": [{"name": "user:ann"}]},
        },
    }
    store = load([event("COMPLETE", job=job, outputs=[out])])
    plan = ol.job_iri("spark", "etl")
    rows = select(
        store,
        f"""SELECT ?sql ?url ?owner ?meta WHERE {{ <{plan}> provml:sql ?sql ;
        provml:sourceCodeUrl ?url ; prov:wasAttributedTo/provml:name ?owner ;
        provml:metadata ?meta }}""",
    )
    assert rows == [
        {
            "sql": "SELECT * FROM a",
            "url": "https://git/x/blob/main/etl.py",
            "owner": "team:data",
            "meta": '{"madeUpFacet":{"anything":[1,2]}}',
        }
    ]
    git = select(
        store,
        f"SELECT ?c ?b ?r WHERE {{ <{RUN}r-1> provml:gitCommit ?c ; "
        f"provml:gitBranch ?b ; provml:gitRemote ?r }}",
    )
    assert git == [{"c": "abc123", "b": "main", "r": "https://git/x"}]
    ds = ol.dataset_iri("s3://bucket", "out/part")
    rows = select(
        store,
        f"""SELECT ?loc ?src ?owner ?v WHERE {{ <{ds}> provml:location ?loc ;
        provml:source ?src ; prov:wasAttributedTo/provml:name ?owner ;
        prov:qualifiedGeneration/provml:version ?v }}""",
    )
    assert rows == [
        {"loc": "s3://bucket/out/part", "src": "s3://bucket", "owner": "user:ann", "v": "7"}
    ]


def test_job_and_dataset_events() -> None:
    job_event = {
        "eventTime": "2024-05-01T12:00:00Z",
        "producer": "p",
        "schemaURL": SCHEMA.replace("RunEvent", "JobEvent"),
        "job": {
            "namespace": "dbt",
            "name": "model.orders",
            "facets": {"sql": {"query": "select 1"}},
        },
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.raw"}],
        "outputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
    }
    dataset_event = {
        "eventTime": "2024-05-01T12:00:00Z",
        "producer": "p",
        "schemaURL": SCHEMA.replace("RunEvent", "DatasetEvent"),
        "dataset": {
            "namespace": "postgres://db:5432",
            "name": "shop.public.orders",
            "facets": {
                "schema": {
                    "fields": [
                        {"name": "id", "type": "int"},
                        {
                            "name": "addr",
                            "type": "struct",
                            "fields": [{"name": "zip", "type": "string"}],
                        },
                    ]
                }
            },
        },
    }
    store = load([job_event, dataset_event])
    assert select(store, "SELECT ?a WHERE { ?a a prov:Activity }") == []  # no run, no activity
    plan = select(
        store, f"SELECT ?q WHERE {{ <{ol.job_iri('dbt', 'model.orders')}> provml:sql ?q }}"
    )
    assert plan == [{"q": "select 1"}]
    ds = ol.dataset_iri("postgres://db:5432", "shop.public.orders")
    cols = select(
        store,
        f"""SELECT ?n ?t WHERE {{ ?c provml:columnOf <{ds}> ; provml:name ?n ;
        provml:dataType ?t }} ORDER BY ?n""",
    )
    assert [(r["n"], r["t"]) for r in cols] == [
        ("addr", "struct"),
        ("addr.zip", "string"),
        ("id", "int"),
    ]
    loc = select(store, f"SELECT ?l WHERE {{ <{ds}> provml:location ?l }}")
    assert loc == [{"l": "postgres://db:5432/shop.public.orders"}]


def test_spec_1_events_are_read_too() -> None:
    old = event("COMPLETE", inputs=[{"namespace": "file", "name": "/d/in.csv"}])
    old["schemaURL"] = "https://openlineage.io/spec/1-0-5/OpenLineage.json#/definitions/RunEvent"
    store = load([old])
    assert store.query(f"ASK {{ <{RUN}r-1> prov:used <{ol.dataset_iri('file', '/d/in.csv')}> }}")


BAD: list[tuple[str, Any, str]] = [
    ("not JSON", b"{bad", "not valid JSON"),
    ("not an object", b"[1]", "is a JSON object"),
    ("missing runId", {"run": {}}, "run.runId: required"),
    ("wrong eventType", {"eventType": "DONE"}, "eventType: must be one of"),
    ("no eventTime", {"eventTime": None}, "eventTime: required"),
    ("a time without offset", {"eventTime": "2024-05-01T12:00:00"}, "eventTime: required"),
    # accepted, the manager could not write them (year 0 / 10000 in UTC): lost
    ("a time before year 1 in UTC", {"eventTime": "0001-01-01T00:00:00+01:00"}, "eventTime"),
    ("a time after year 9999 in UTC", {"eventTime": "9999-12-31T23:00:00-05:00"}, "eventTime"),
    ("no job name", {"job": {"namespace": "x"}}, "job.name: required"),
    ("a dataset without a name", {"inputs": [{"namespace": "x"}]}, "inputs[0].name: required"),
    ("inputs not an array", {"inputs": {"a": 1}}, "inputs: must be an array"),
    ("a facet not an object", {"run": {"runId": "r", "facets": {"x": 1}}}, "a facet is an object"),
    (
        "a bad parent facet",
        {"run": {"runId": "r", "facets": {"parent": {"run": {}}}}},
        "run.facets.parent",
    ),
    (
        "bad column lineage",
        {
            "outputs": [
                {
                    "namespace": "a",
                    "name": "b",
                    "facets": {
                        "columnLineage": {"fields": {"x": {"inputFields": [{"namespace": "a"}]}}}
                    },
                }
            ]
        },
        "columnLineage.fields.x.inputFields[0].name: required",
    ),
    ("spec 3", {"schemaURL": "https://openlineage.io/spec/3-0-0/OpenLineage.json"}, "spec 3"),
]


@pytest.mark.parametrize(("why", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_are_refused_whole(why: str, change: Any, message: str) -> None:
    if isinstance(change, bytes):
        body = change
    else:
        doc = event("START")
        doc.update(change)
        body = orjson.dumps([event("START", run_id="fine"), doc])  # the good one is refused too
    with pytest.raises(ValidationError) as info:
        ol.parse_events(body)
    assert any(message in d for d in [info.value.message, *(info.value.details or [])]), (
        info.value.message,
        info.value.details,
    )


def test_unknown_facets_and_members_are_accepted() -> None:
    doc = event("OTHER", extra={"x": 1})
    doc["run"]["facets"] = {
        "spark_unknown": {"whatever": {"deep": [1]}},
        "gone": {"_deleted": True},
    }
    (checked,) = ol.parse_events(orjson.dumps(doc))
    assert list(checked.run_facets) == ["spark_unknown"]


def test_the_join_by_place_with_capture_lib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Spark-like job writes file:///…/table.csv; a capture_lib training run reads the
    file there and trains a model: downstream of the job's input reaches the model, in
    either order of arrival; a file elsewhere, or on another host, is never joined."""
    import capture_lib as cl
    from provml.core.resolve import resolve_batch
    from provml.core.wire import parse_batch
    from provml.offline import expand, read_lines

    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n3,4\n")
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    try:
        used = {"data": cl.dataset(str(table)), "other": cl.dataset(str(other))}
        with (
            cl.workflow("train-on-table") as wf,
            wf.task("train", stage="training", used=used) as t,
        ):
            model = tmp_path / "model.bin"
            model.write_bytes(b"weights")
            t.generated(model=cl.model(str(model), framework="none"))
        monkeypatch.chdir(tmp_path)  # the same file by a relative path: never joined
        with cl.workflow("relative") as wf, wf.task("peek", used={"d": cl.dataset("table.csv")}):
            pass
    finally:
        cl.shutdown(timeout=5)
    batches = [
        resolve_batch(parse_batch(line.body))
        for f in expand([str(tmp_path / "logs")])
        for line in read_lines(f)
    ]
    source = {"namespace": "s3://raw", "name": "events/2024"}
    ol_events = [
        event(
            "START",
            run_id="spark-1",
            inputs=[source],
            outputs=[{"namespace": "file", "name": str(table)}],
        ),
        event("COMPLETE", run_id="spark-1", time="2024-05-01T12:01:00Z"),
        event(
            "COMPLETE",
            run_id="spark-2",
            job={"namespace": "spark", "name": "elsewhere"},
            outputs=[{"namespace": "file://another-host", "name": str(other)}],
        ),
    ]
    graphs = []
    for ol_first in (True, False):
        store = OxigraphStore(None)
        manager = Manager(store)
        if ol_first:
            load(ol_events, store)
        for batch in batches:
            manager.apply(batch)
        if not ol_first:
            load(ol_events, store)
        down = ask(store, "downstream", source=ol.dataset_iri("s3://raw", "events/2024"))
        kinds = sorted((r["kind"], r["entity"].rsplit("/", 1)[1][:12]) for r in down)
        assert ("model", model_sha(tmp_path)[:12]) in kinds
        used = ask(store, "was-used", source=ol.dataset_iri("s3://raw", "events/2024"))
        assert {r["model"] for r in used} == {
            "https://provml.dev/id/data/sha256/" + model_sha(tmp_path)
        }
        consumers = ask(store, "workflow-consumers", workflow="etl")
        assert {(r["consumer"], r["consumerTask"]) for r in consumers} == {
            ("train-on-table", "train")
        }
        # only the absolute path joined: the same file by a relative path is not
        users = select(
            store,
            f"""SELECT ?n WHERE {{
            ?t prov:used <{ol.dataset_iri("file", str(table))}> ; provml:name ?n }}""",
        )
        assert sorted(r["n"] for r in users) == ["train"]
        # other.csv is on this host, the dataset on another-host: no join
        assert not store.query(
            f"""ASK {{ ?t prov:used <{ol.dataset_iri("file://another-host", str(other))}> }}"""
        )
        graphs.append(quads(store))
    assert graphs[0] == graphs[1]


def model_sha(tmp_path: Path) -> str:
    import hashlib

    return hashlib.sha256((tmp_path / "model.bin").read_bytes()).hexdigest()


def test_the_mapping_uses_declared_terms_only() -> None:
    g = rdflib.Graph()
    g.parse(data=ontology_turtle(), format="turtle")
    declared = {
        str(s)
        for s, o in g.subject_objects(RDF.type)
        if o in (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, RDF.Property)
    }
    used: set[str] = set()
    for scenario in ("CLL", "airflow", "simple_run_event"):
        for doc in events_of(scenario):
            for q in graph.event_quads(ol.parse_events(orjson.dumps(doc))[0]):
                used.add(q.predicate.value)
                if q.predicate.value.endswith("#type"):
                    used.add(q.object.value)
    missing = {t for t in used if t.startswith(PROVML_NS) and t not in declared}
    assert not missing


def test_facets_too_large_are_named_not_kept() -> None:
    doc = event("START")
    doc["run"]["facets"] = {"spark.logicalPlan": {"plan": "x" * (graph.MAX_FACETS_JSON + 10)}}
    (checked,) = ol.parse_events(orjson.dumps(doc))
    meta = [o for s, p, o in graph.event_triples(checked) if p.endswith("#metadata")]
    assert len(meta) == 1 and "not_kept" in meta[0].value and len(meta[0].value) < 200
    assert copy.deepcopy(doc) == doc


def test_the_checks_agree_with_the_spec_schema() -> None:
    """Every corpus event is valid by OpenLineage's JSON Schema (2-0-2) and accepted; the
    refusals above that the schema can express, it makes too."""
    import jsonschema

    spec = json.loads((CORPUS / "openlineage-spec" / "spec" / "OpenLineage.json").read_text())
    schema = jsonschema.validators.validator_for(spec)(spec)
    for scenario in ("CLL", "airflow", "simple_run_event"):
        for doc in events_of(scenario):
            assert not list(schema.iter_errors(doc))
            assert len(ol.parse_events(orjson.dumps(doc))) == 1
    expressible = {
        "missing runId",
        "wrong eventType",
        "no eventTime",
        "no job name",
        "a dataset without a name",
        "inputs not an array",
        "a facet not an object",
    }
    for why, change, _ in BAD:
        if why in expressible:
            doc = event("START")
            doc.update(change)
            assert list(schema.iter_errors(doc)), why
