"""A checked OpenLineage event → quads (PROV-O + provml), docs/openlineage.md as code.

Every node is named by OpenLineage's own names (the runId, a job's or a dataset's
namespace and name, a column's field), and every event maps to triples that hold
whatever else arrives: the graph of a run is the union of its events' triples, the
same whatever their order, and an event sent twice adds nothing. A run's state is
monotone: START gives its start, COMPLETE / FAIL / ABORT its end and status, RUNNING
and OTHER only the record that they were seen; a run with no end event has no status,
which the questions read as ``running``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from pyoxigraph import Literal, NamedNode, Quad

from provml.core.ids import content_iri, persona_iri
from provml.core.mapping import literal, timestamp
from provml.core.vocab import PROV_NS, PROVML_NS, RDF_TYPE
from provml.interop.openlineage.events import Dataset, Event
from provml.interop.openlineage.names import (
    column_iri,
    dataset_iri,
    job_iri,
    locations,
    run_iri,
    short_hash,
)

P, M, TYPE = PROV_NS, PROVML_NS, RDF_TYPE.value
#: bytes of JSON of the facets kept as one provml:metadata literal; past it, their names
MAX_FACETS_JSON = 16 << 10
#: event type → the run's status (the end events); ABORT is a failure saying so
STATUS = {"COMPLETE": "finished", "FAIL": "failed", "ABORT": "failed"}
ABORTED = "aborted (OpenLineage ABORT event)"

#: facets read into their own triples (the others are kept as provml:metadata JSON)
RUN_MAPPED = frozenset({"parent", "errorMessage"})
JOB_MAPPED = frozenset({"sql", "sourceCodeLocation", "ownership"})
DATASET_MAPPED = frozenset({"schema", "columnLineage", "ownership", "dataSource", "version",
                            "contentHash"})  # fmt: skip

Obj = str | Literal
Triple = tuple[str, str, Obj]


def event_quads(event: Event) -> list[Quad]:
    """The quads of one event, each once, in the default graph."""
    return [
        Quad(NamedNode(s), NamedNode(p), NamedNode(o) if isinstance(o, str) else o)
        for s, p, o in dict.fromkeys(event_triples(event))
    ]


def runs(event: Event) -> list[str]:
    """The activities an event names (for the manager's derivation edges)."""
    return [run_iri(event.run_id)] if event.kind == "run" and event.run_id else []


def datasets(event: Event) -> list[str]:
    """The datasets of an event that have a location (for the join by place)."""
    found = [event.dataset] if event.dataset else [*event.inputs, *event.outputs]
    return sorted({dataset_iri(d.namespace, d.name) for d in found
                   if locations(d.namespace, d.name)[0]})  # fmt: skip


def event_triples(event: Event) -> Iterator[Triple]:
    if event.kind == "dataset":
        assert event.dataset is not None
        yield from _dataset(event.dataset, None)
        return
    assert event.job is not None
    plan = job_iri(*event.job)
    yield from _job(plan, *event.job, event.job_facets)
    run = run_iri(event.run_id) if event.kind == "run" and event.run_id else None
    if run is not None:
        yield from _run(run, plan, event)
    for d in event.inputs:
        node = dataset_iri(d.namespace, d.name)
        yield from _dataset(d, run)
        if run is not None:
            yield from _io(run, node, d, generated=False)
    for d in event.outputs:
        node = dataset_iri(d.namespace, d.name)
        yield from _dataset(d, run)
        if run is not None:
            yield from _io(run, node, d, generated=True)


def _metadata(node: str, facets: dict[str, Any], skip: Iterable[str] = ()) -> Iterator[Triple]:
    kept = {k: v for k, v in facets.items() if k not in skip}
    if not kept:
        return
    text = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    if len(text) > MAX_FACETS_JSON:
        kept = {"facets": sorted(kept), "not_kept": f"{len(text)} bytes of JSON"}
    yield node, M + "metadata", literal(kept)


def _s(value: str) -> Literal:
    return Literal(value)


def _activity(run: str, name: str, run_id: str, plan: str) -> Iterator[Triple]:
    yield run, TYPE, P + "Activity"
    yield run, TYPE, M + "DataTransformationExecution"
    yield run, TYPE, M + "OpenLineageRun"
    yield run, M + "runId", _s(run_id)
    yield run, M + "name", _s(name)
    assoc = run + "/association"
    yield run, P + "qualifiedAssociation", assoc
    yield assoc, TYPE, P + "Association"
    yield assoc, P + "hadPlan", plan


def _run(run: str, plan: str, event: Event) -> Iterator[Triple]:
    assert event.job is not None and event.run_id is not None
    yield from _activity(run, event.job[1], event.run_id, plan)
    yield run, M + "producer", _s(event.producer)
    kind = event.event_type
    if kind is not None:
        yield run, M + "eventType", _s(kind)
    if kind == "START":
        yield run, P + "startedAtTime", timestamp(event.time)
    if kind in STATUS:
        yield run, P + "endedAtTime", timestamp(event.time)
        yield run, M + "status", _s(STATUS[kind])
        if kind == "ABORT":
            yield run, M + "error", _s(ABORTED)
    facets = event.run_facets
    if "errorMessage" in facets:
        yield run, M + "error", _s(facets["errorMessage"]["message"])
    parent = facets.get("parent")
    if parent is not None:
        p_run = run_iri(parent["run"]["runId"])
        p_job = (parent["job"]["namespace"], parent["job"]["name"])
        p_plan = job_iri(*p_job)
        yield run, M + "partOf", p_run
        yield from _activity(p_run, p_job[1], parent["run"]["runId"], p_plan)
        yield p_run, TYPE, M + "WorkflowExecution"
        yield from _job(p_plan, *p_job, {})
        yield p_plan, TYPE, M + "Workflow"
        yield p_plan, M + "hasTransformation", plan
    else:  # a run of its own: a workflow run, with itself as its one task
        yield run, TYPE, M + "WorkflowExecution"
        yield run, M + "partOf", run
    location = event.job_facets.get("sourceCodeLocation") or {}
    for key, prop in (("repoUrl", "gitRemote"), ("version", "gitCommit"), ("branch", "gitBranch")):
        if location.get(key):
            yield run, M + prop, _s(location[key])
    yield from _metadata(run, facets, RUN_MAPPED)


def _agent(name: str) -> Iterator[Triple]:
    agent = persona_iri(name)
    yield agent, TYPE, P + "Agent"
    yield agent, TYPE, M + "Persona"
    yield agent, M + "name", _s(name)


def _owners(node: str, facet: dict[str, Any] | None) -> Iterator[Triple]:
    for owner in (facet or {}).get("owners", []):
        yield from _agent(owner["name"])
        yield node, P + "wasAttributedTo", persona_iri(owner["name"])


def _job(plan: str, namespace: str, name: str, facets: dict[str, Any]) -> Iterator[Triple]:
    yield plan, TYPE, P + "Plan"
    yield plan, TYPE, P + "Entity"
    yield plan, TYPE, M + "DataTransformation"
    yield plan, TYPE, M + "OpenLineageJob"
    yield plan, M + "namespace", _s(namespace)
    yield plan, M + "name", _s(name)
    if "sql" in facets:
        yield plan, M + "sql", _s(facets["sql"]["query"])
    yield from _owners(plan, facets.get("ownership"))
    url = (facets.get("sourceCodeLocation") or {}).get("url")
    if url:
        yield plan, M + "sourceCodeUrl", _s(url)
    yield from _metadata(plan, facets, JOB_MAPPED)


def _dataset_node(node: str, namespace: str, name: str) -> Iterator[Triple]:
    yield node, TYPE, P + "Entity"
    yield node, TYPE, M + "Data"
    yield node, TYPE, M + "OpenLineageDataset"
    yield node, M + "namespace", _s(namespace)
    yield node, M + "name", _s(name)
    places, host = locations(namespace, name)
    for place in places:
        yield node, M + "location", _s(place)
    if places and host:
        yield node, M + "locationHost", _s(host)


def _content(d: Dataset) -> str | None:
    """The content node a dataset's hash facet names (the node capture_lib makes for the
    same bytes): ``contentHash.sha256``, or a ``version`` of ``sha256:<64 hex>``."""
    sha = (d.facets.get("contentHash") or {}).get("sha256")
    version = (d.facets.get("version") or {}).get("datasetVersion", "")
    if not sha and version.startswith("sha256:") and len(version) == 71:
        sha = version[7:].lower()
        if any(c not in "0123456789abcdef" for c in sha):
            sha = None
    return content_iri(sha) if sha else None


def _dataset(d: Dataset, run: str | None) -> Iterator[Triple]:
    node = dataset_iri(d.namespace, d.name)
    yield from _dataset_node(node, d.namespace, d.name)
    facets = d.facets
    source = (facets.get("dataSource") or {}).get("uri")
    if source:
        yield node, M + "source", _s(source)
    yield from _owners(node, facets.get("ownership"))
    content = _content(d)
    if content is not None:
        yield content, TYPE, P + "Entity"
        yield content, TYPE, M + "Data"
        yield content, M + "sha256", _s(content.rsplit("/", 1)[1])
        yield content, P + "specializationOf", node
    for path, type_ in _fields((facets.get("schema") or {}).get("fields") or [], ""):
        col = column_iri(node, path)
        yield from _column(col, node, path)
        if type_:
            yield col, M + "dataType", _s(type_)
    yield from _column_lineage(node, facets.get("columnLineage"), run)
    yield from _metadata(node, facets, DATASET_MAPPED)


def _fields(fields: list[dict[str, Any]], prefix: str) -> Iterator[tuple[str, str | None]]:
    for f in fields:
        path = prefix + f["name"]
        yield path, f.get("type")
        yield from _fields(f.get("fields") or [], path + ".")


def _column(col: str, dataset: str, field: str) -> Iterator[Triple]:
    yield col, TYPE, P + "Entity"
    yield col, TYPE, M + "Column"
    yield col, M + "name", _s(field)
    yield col, M + "columnOf", dataset


def _column_lineage(node: str, facet: dict[str, Any] | None, run: str | None) -> Iterator[Triple]:
    if not facet:
        return
    for out_field, spec in (facet.get("fields") or {}).items():
        out = column_iri(node, out_field)
        yield from _column(out, node, out_field)
        how = {k: v for k, v in spec.items() if k != "inputFields"}
        for f in spec["inputFields"]:
            source = dataset_iri(f["namespace"], f["name"])
            yield from _dataset_node(source, f["namespace"], f["name"])
            col = column_iri(source, f["field"])
            yield from _column(col, source, f["field"])
            yield out, P + "wasDerivedFrom", col
            if run is None:
                continue
            derivation = f"{out}/derivation/{short_hash(col, run)}"
            yield out, P + "qualifiedDerivation", derivation
            yield derivation, TYPE, P + "Derivation"
            yield derivation, P + "entity", col
            yield derivation, P + "hadActivity", run
            detail = {**how, **{k: v for k, v in f.items()
                                if k not in ("namespace", "name", "field")}}  # fmt: skip
            if detail:
                yield derivation, M + "metadata", literal(detail)


def _io(run: str, node: str, d: Dataset, generated: bool) -> Iterator[Triple]:
    """The run used (``generated``: made) the dataset, and the content its hash facet
    names; the qualified usage or generation holds its version and input/output facets."""
    content = _content(d)
    if generated:
        event = f"{run}/generation/{short_hash(node)}"
        yield node, P + "qualifiedGeneration", event
        yield event, TYPE, P + "Generation"
        yield event, P + "activity", run
        for entity in (node, content) if content else (node,):
            yield entity, P + "wasGeneratedBy", run
    else:
        event = f"{run}/usage/{short_hash(node)}"
        yield run, P + "qualifiedUsage", event
        yield event, TYPE, P + "Usage"
        yield event, P + "entity", node
        for entity in (node, content) if content else (node,):
            yield run, P + "used", entity
    yield from _use_fields(event, d)


def _use_fields(event: str, d: Dataset) -> Iterator[Triple]:
    version = (d.facets.get("version") or {}).get("datasetVersion")
    if version:
        yield event, M + "version", _s(version)
    yield from _metadata(event, d.io_facets)
