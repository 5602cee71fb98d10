"""record → wire → RDF → SPARQL gives back the same facts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
from hypothesis import given, settings
from hypothesis import strategies as st

from provml.core import ids
from provml.core.errors import ValidationError
from provml.core.mapping import batch_to_nquads, batch_to_quads
from provml.core.resolve import resolve_batch
from provml.core.vocab import sparql_prefixes
from provml.core.wire import parse_batch
from tests.conftest import SHA_A, SHA_M, full_records, make_batch


def load(records: list[dict[str, Any]], session: str | None = None) -> pyoxigraph.Store:
    store = pyoxigraph.Store()
    batch = resolve_batch(parse_batch(orjson.dumps(make_batch(records, session))))
    store.extend(batch_to_quads(batch))
    return store


def select(store: pyoxigraph.Store, query: str) -> list[dict[str, str]]:
    result = store.query(sparql_prefixes() + query)
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = result.variables
    return [
        {v.value: s[v].value for v in names if s[v] is not None}  # type: ignore[union-attr]
        for s in result
    ]


def test_training_lineage_round_trips() -> None:
    store = load(full_records())
    rows = select(
        store,
        f"""SELECT ?data ?name ?value WHERE {{
            <{ids.content_iri(SHA_M)}> prov:wasGeneratedBy ?t .
            ?t a provml:TrainingExecution ; prov:used ?data .
            OPTIONAL {{ ?data provml:name ?name ; prov:value ?value }} }}""",
    )
    data = {r["data"] for r in rows if "name" not in r}
    params = {r["name"]: r["value"] for r in rows if "name" in r}
    assert data == {ids.content_iri("c" * 64)}
    assert params == {"lr": "0.1", "epochs": "2", "layers": "[8,4]"}
    # and the dataset came from the raw file through "clean"
    upstream = select(
        store,
        f"""SELECT ?src WHERE {{ <{ids.content_iri("c" * 64)}>
            (prov:wasGeneratedBy/prov:used)+ ?src . ?src provml:sha256 ?h }}""",
    )
    assert {r["src"] for r in upstream} == {ids.content_iri(SHA_A)}


def test_stages_types_and_status() -> None:
    store = load(full_records())
    rows = select(store, "SELECT ?n ?c WHERE { ?t provml:name ?n ; a ?c . ?t a prov:Activity }")
    classes: dict[str, set[str]] = {}
    for r in rows:
        classes.setdefault(r["n"], set()).add(r["c"].rsplit("#", 1)[1])
    assert "TrainingExecution" in classes["train"]
    assert "ValidationExecution" in classes["validate"]
    assert "EvaluationExecution" in classes["evaluate"]
    assert "InferenceExecution" in classes["predict"]
    assert "LearningStageSectionExecution" in classes["epoch"]
    assert "WorkflowExecution" in classes["wf"]
    failed = select(
        store, "SELECT ?n ?e WHERE { ?t provml:status 'failed' ; provml:name ?n ; provml:error ?e }"
    )
    assert failed == [{"n": "validate", "e": "ValueError: boom"}]


def test_metrics_including_non_finite_values() -> None:
    store = load(full_records())
    rows = select(
        store,
        """SELECT ?v ?epoch WHERE { ?m a provml:ModelEvaluation ; provml:name "loss" ;
           prov:value ?v ; prov:wasGeneratedBy ?s . ?s provml:index ?epoch }""",
    )
    values = [float(r["v"]) for r in rows]
    assert len(values) == 2
    assert 0.5 in values and sum(math.isnan(v) for v in values) == 1


def test_prediction_traces_to_its_model() -> None:
    store = load(full_records())
    rows = select(
        store,
        """SELECT ?p ?model ?value WHERE { ?p a provml:Prediction ; prov:value ?value ;
           prov:wasGeneratedBy/prov:used ?model . ?model a provml:Model }""",
    )
    assert [(r["model"], r["value"]) for r in rows] == [(ids.content_iri(SHA_M), '{"y":1}')]


def test_mapping_twice_adds_nothing() -> None:
    records = full_records()
    session = ids.new_session_id()
    store = load(records, session)
    before = len(store)
    store.extend(
        batch_to_quads(resolve_batch(parse_batch(orjson.dumps(make_batch(records, session)))))
    )
    assert len(store) == before
    assert not any(isinstance(q.subject, pyoxigraph.BlankNode) for q in store)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        # a key starting with "@" makes an object a data or entity reference (provml.core.wire)
        | st.dictionaries(
            st.text(max_size=8).filter(lambda k: not k.startswith("@")), inner, max_size=4
        )
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)


@settings(max_examples=60, deadline=None)
@given(
    params=st.dictionaries(names, json_values, min_size=1, max_size=6),
    stage=st.sampled_from([None, "training", "evaluation", "inference"]),
)
def test_parameters_round_trip(params: dict[str, Any], stage: str | None) -> None:
    rec: dict[str, Any] = {
        "kind": "task_start",
        "n": 2,
        "parent": 1,
        "plan": ["w", "t"],
        "time": 1.5,
        "params": params,
    }
    if stage:
        rec["stage"] = stage
    store = load([rec])
    rows = select(
        store,
        "SELECT ?name ?value WHERE { ?t prov:used ?p . ?p provml:name ?name ; prov:value ?value }",
    )
    got = {r["name"]: r["value"] for r in rows}
    assert set(got) == set(params)
    for name, value in params.items():
        text = got[name]
        if isinstance(value, bool):
            assert text == ("true" if value else "false")
        elif isinstance(value, (int, float)):
            assert float(text) == float(value)
        elif isinstance(value, str):
            assert text == value
        else:
            assert orjson.loads(text) == value


def test_ranks_of_one_batch_job_join_one_run() -> None:
    store = pyoxigraph.Store()
    for rank in range(2):  # two ranks: two processes, two sessions, one SLURM job
        env = {
            "hostname": f"node{rank}",
            "run_key": "slurm:hpc:4242",
            "mpi_rank": rank,
            "mpi_size": 2,
            "git_commit": "abc123",
            "packages": "numpy==2.0",
        }
        rec = {"kind": "workflow_start", "n": 1, "name": "train", "time": 1.0, "env": env}
        batch = resolve_batch(parse_batch(orjson.dumps(make_batch([rec]))))
        store.extend(batch_to_quads(batch))
    rows = select(
        store,
        """SELECT ?run ?rank ?commit WHERE { ?w provml:partOf ?run ;
        provml:mpiRank ?rank ; provml:gitCommit ?commit . ?run provml:runKey ?key }""",
    )
    assert len(rows) == 2 and len({r["run"] for r in rows}) == 1
    assert {r["rank"] for r in rows} == {"0", "1"} and {r["commit"] for r in rows} == {"abc123"}
    # runs-history lists each rank (the node joining them is no run of its own)
    from query import questions

    history = select(store, questions.get("runs-history").text({"workflow": "train"}))
    assert [r["user"] for r in history if "user" in r] == [] and len(history) == 2


def test_older_captures_of_unreadable_files_are_missing_data_not_content() -> None:
    """capture_lib before the "missing" reference wrote ``{"path", "error"}`` inline for a
    file it could not read: two runs that lacked the same path must not share a node."""
    legacy = {"path": "raw.csv", "error": "No such file or directory"}
    records = [
        {"kind": "workflow_start", "n": n, "name": "w", "time": 1.0} for n in (1, 10)
    ] + [
        {"kind": "task_start", "n": n + 1, "parent": n, "plan": ["w", "clean"], "time": 2.0,
         "used": {"raw": dict(legacy)}}
        for n in (1, 10)
    ]  # fmt: skip
    store = load(records)
    rows = select(
        store,
        "SELECT ?node ?path ?task WHERE { ?node a provml:MissingData ; provml:path ?path . "
        "?task prov:used ?node }",
    )
    assert len({r["node"] for r in rows}) == len({r["task"] for r in rows}) == 2
    assert {r["path"] for r in rows} == {"raw.csv"}
    shared = ids.content_iri(ids.value_sha256(legacy))
    assert not select(store, f"SELECT ?p WHERE {{ <{shared}> ?p ?o }}")


# --- the quads themselves: the same ones in both forms, and the same ones as before -------

GOLDEN = Path(__file__).with_name("mapping_full_records.nq")


def quads_and_nquads(records: list[dict[str, Any]], session: str | None = None) -> tuple[
    set[pyoxigraph.Quad], set[pyoxigraph.Quad]
]:  # fmt: skip
    batch = resolve_batch(parse_batch(orjson.dumps(make_batch(records, session))))
    quads = batch_to_quads(batch)
    assert len(quads) == len(set(quads))  # each quad once
    text = batch_to_nquads(batch)
    return set(quads), set(pyoxigraph.parse(text, format=pyoxigraph.RdfFormat.N_QUADS))


def test_the_mapping_of_every_record_kind_is_unchanged() -> None:
    """The quads of :func:`full_records` as the mapping made them before it was rewritten
    for speed (terms built once per distinct IRI, N-Quads text for the bulk loader). A
    deliberate change of the mapping regenerates the file (sorted N-Quads)."""
    quads, from_text = quads_and_nquads(full_records(), "0190a4e2-7b1c-7d2e-8f00-012300000000")
    golden = set(pyoxigraph.parse(GOLDEN.read_bytes(), format=pyoxigraph.RdfFormat.N_QUADS))
    assert quads == golden
    assert from_text == golden


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
    value=json_values,
    path=st.text(max_size=30),
)
def test_nquads_text_is_the_quads(name: str, value: Any, path: str) -> None:
    """Quotes, backslashes, line breaks, control characters and any Unicode in names,
    values and paths: the N-Quads text parses to exactly the quads."""
    records: list[dict[str, Any]] = [
        {"kind": "workflow_start", "n": 1, "name": name, "time": 1.5, "user": name,
         "params": {name: value}, "env": {"hostname": path, "argv": name}},
        {"kind": "task_start", "n": 2, "parent": 1, "plan": [name, name], "time": 2.0,
         "stage": "training", "used": {name: {"@data": "file", "sha256": SHA_A,
                                              "path": path, name: value}}},
        {"kind": "task_end", "n": 2, "plan": [name, name], "time": 3.0, "status": "failed",
         "error": path, "generated": {name: value}},
        {"kind": "metric", "n": 3, "parent": 2, "name": name, "value": 0.25, "time": 2.5},
        {"kind": "workflow_end", "n": 1, "name": name, "time": 4.0},
    ]  # fmt: skip
    try:
        quads, from_text = quads_and_nquads(records)
    except ValidationError:
        return
    assert quads == from_text
