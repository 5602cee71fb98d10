"""The record → RDF mapping: resolved records to pyoxigraph quads (PROV-O + provml).

Everything the mapping may emit is in the tables below; ``tests/provml`` checks that each
term is declared in the ontology. Records map straight to pyoxigraph terms (no rdflib
graph in between: FINDINGS measured 7–25× faster). Every node is an IRI derived from the
record (no blank nodes), so mapping the same batch twice gives the same quads and a
replay changes nothing in the store. ``docs/mapping.md`` is this module as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

from provml.core import ids
from provml.core.vocab import PROV, PROVML, RDF_NS, RDF_TYPE, XSD
from provml.core.wire import MISSING, Batch, is_data_ref, is_entity_ref

Term = NamedNode | Literal

#: stage → (class of the task's plan, class of its execution)
STAGE_CLASSES: dict[str | None, tuple[NamedNode, NamedNode]] = {
    None: (PROVML.DataTransformation, PROVML.DataTransformationExecution),
    "training": (PROVML.Training, PROVML.TrainingExecution),
    "validation": (PROVML.Validation, PROVML.ValidationExecution),
    "evaluation": (PROVML.Evaluation, PROVML.EvaluationExecution),
    "inference": (PROVML.Inference, PROVML.InferenceExecution),
}

#: stage → (class of a parameter's declaration, class of its value)
PARAM_CLASSES: dict[str | None, tuple[NamedNode, NamedNode]] = {
    None: (PROVML.Attribute, PROVML.AttributeValue),
    "training": (PROVML.LearningHyperparameter, PROVML.LearningHyperparameterValue),
}

#: ``@data`` type of a reference → extra class of the data node
DATA_CLASSES: dict[str, NamedNode] = {
    "model": PROVML.Model,
    "dataset": PROVML.LearningData,
    "code": PROVML.Code,
}

#: stages whose non-model inputs are learning data
LEARNING_STAGES = frozenset({"training", "validation", "evaluation"})

#: field of a data reference that says where the data was or what a run called it, not
#: what it is → property of the qualified usage or generation: the same bytes at two paths
#: in two runs are one content node, and each run's path, name, version label, split and
#: framework stay with that run's use of it (docs/mapping.md). Members in no table
#: (``provml:metadata`` JSON) go there too.
USE_FIELDS: dict[str, NamedNode] = {
    "path": PROVML.path,
    "host": PROVML.hostname,
    "name": PROVML.name,
    "version": PROVML.version,
    "split": PROVML.split,
    "description": PROVML.description,
    "framework": PROVML.framework,
    "framework_version": PROVML.frameworkVersion,
    "algorithm": PROVML.algorithm,
}

#: field of a data reference that is a fact about its content → property of the data node
DATA_FIELDS: dict[str, NamedNode] = {
    "sha256": PROVML.sha256,
    "size": PROVML.sizeBytes,
    "source": PROVML.source,
    "license": PROVML.license,
}

#: key of a workflow's ``env`` (see capture_lib.environment) → property of the execution;
#: other keys (allow-listed environment variables …) are kept as provml:metadata JSON
ENV_FIELDS: dict[str, NamedNode] = {
    "hostname": PROVML.hostname,
    "pid": PROVML.processId,
    "python": PROVML.pythonVersion,
    "platform": PROVML.platform,
    "os": PROVML.operatingSystem,
    "cpu_count": PROVML.cpuCount,
    "argv": PROVML.commandLine,
    "executable": PROVML.executable,
    "git_commit": PROVML.gitCommit,
    "git_branch": PROVML.gitBranch,
    "git_dirty": PROVML.gitDirty,
    "git_remote": PROVML.gitRemote,
    "packages": PROVML.packages,
    "packages_sha256": PROVML.packagesSha256,
    "gpus": PROVML.gpus,
    "container_id": PROVML.containerId,
    "container": PROVML.containerRuntime,
    "batch_system": PROVML.batchSystem,
    "job_id": PROVML.jobId,
    "job_step": PROVML.jobStep,
    "job_nodes": PROVML.jobNodes,
    "job_array_id": PROVML.jobArrayId,
    "job_array_task": PROVML.jobArrayTask,
    "cluster": PROVML.cluster,
    "mpi_rank": PROVML.mpiRank,
    "mpi_size": PROVML.mpiSize,
    "run_key": PROVML.runKey,
}

#: key of a task's ``resources`` → (property, factor to the property's unit)
RESOURCE_FIELDS: dict[str, tuple[NamedNode, int]] = {
    "cpu_seconds": (PROVML.cpuSeconds, 1),
    "max_rss_kib": (PROVML.maxRssBytes, 1024),
}

JSON_DATATYPE = NamedNode(RDF_NS + "JSON")
_G = DefaultGraph()


#: stages whose outputs are not recorded as derived from their inputs: a model serves
#: many predictions, and derivation edges through them would make every lineage walk
#: from a source visit every prediction downstream of it (bench/QUERY.md)
NOT_DERIVING_STAGES = frozenset({"inference"})


def deriving_executions(batch: Batch) -> list[str]:
    """The task executions in a resolved batch whose outputs derive from their inputs."""
    return sorted(
        {
            rec["id"]
            for rec in batch.records
            if rec["kind"] in ("task_start", "task_end")
            and rec.get("stage") not in NOT_DERIVING_STAGES
        }
    )


def derivation_update(executions: Iterable[str]) -> str | None:
    """A SPARQL update adding ``?output prov:wasDerivedFrom ?input`` for the data inputs
    (not the parameters) of the given task executions, or None if there are none. Metric
    values (``provml:ModelEvaluation``) get ``prov:wasInfluencedBy`` instead: they are
    about the model, not data made from it, and lineage walks over ``prov:wasDerivedFrom``
    need not visit them (half of what a walk from a raw file would visit, measured).

    A task's inputs arrive in its ``task_start`` record and its outputs in ``task_end``,
    possibly in other batches; the manager runs this after writing each batch, for the
    executions the batch names, so whichever of the two is written last adds the edges
    (replays and re-runs add nothing new). Execution IRIs are checked NamedNodes.
    """
    terms = " ".join(str(NamedNode(e)) for e in executions)
    if not terms:
        return None
    return (
        "INSERT { ?output ?link ?input } WHERE { "
        f"VALUES ?execution {{ {terms} }} "
        "?output prov:wasGeneratedBy ?execution . ?execution prov:used ?input . "
        "FILTER(?output != ?input) "
        "FILTER NOT EXISTS { ?input a provml:AttributeValue } "
        "BIND(IF(EXISTS { ?output a provml:ModelEvaluation }, prov:wasInfluencedBy, "
        "prov:wasDerivedFrom) AS ?link) }"
    )


def batch_to_quads(batch: Batch) -> list[Quad]:
    """Map a resolved batch (see :mod:`provml.core.resolve`) to quads in the default graph."""
    out: list[Quad] = []
    for rec in batch.records:
        emit = _EMITTERS[rec["kind"]]
        for s, p, o in emit(rec, batch.session):
            out.append(Quad(s, p, o, _G))
    return out


Triple = tuple[NamedNode, NamedNode, Term]


def literal(value: Any) -> Literal:
    """A JSON value as a typed RDF literal (objects, arrays and null as rdf:JSON)."""
    if isinstance(value, bool):
        return Literal("true" if value else "false", datatype=XSD.boolean)
    if isinstance(value, int):
        return Literal(str(value), datatype=XSD.integer)
    if isinstance(value, float):
        return Literal(repr(value), datatype=XSD.double)
    if isinstance(value, str):
        return Literal(value)
    return Literal(ids.canonical_json(value).decode(), datatype=JSON_DATATYPE)


def timestamp(t: float) -> Literal:
    text = datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return Literal(text, datatype=XSD.dateTime)


def _plan(plan: NamedNode, name: str, classes: Iterable[NamedNode]) -> Iterable[Triple]:
    yield plan, RDF_TYPE, PROV.Plan
    yield plan, RDF_TYPE, PROV.Entity
    for cls in classes:
        yield plan, RDF_TYPE, cls
    yield plan, PROVML.name, Literal(name)


def _association(act: NamedNode, plan: NamedNode, agent: NamedNode | None) -> Iterable[Triple]:
    assoc = NamedNode(act.value + "/association")
    yield act, PROV.qualifiedAssociation, assoc
    yield assoc, RDF_TYPE, PROV.Association
    yield assoc, PROV.hadPlan, plan
    if agent is not None:
        yield assoc, PROV.agent, agent
        yield act, PROV.wasAssociatedWith, agent


def _attribute(
    plan: NamedNode, direction: str, name: str, link: NamedNode, cls: NamedNode
) -> tuple[NamedNode, list[Triple]]:
    attr = NamedNode(ids.attribute_iri(plan.value, direction, name))
    return attr, [
        (plan, link, attr),
        (attr, RDF_TYPE, PROVML.Attribute),
        (attr, RDF_TYPE, cls),
        (attr, RDF_TYPE, PROV.Role),
        (attr, PROVML.name, Literal(name)),
    ]


def _params(rec: dict[str, Any], act: NamedNode, plan: NamedNode) -> Iterable[Triple]:
    decl_cls, value_cls = PARAM_CLASSES.get(rec.get("stage"), PARAM_CLASSES[None])
    params = rec.get("params") or {}
    if params:
        # all the settings as one canonical JSON object: equal settings, equal literal
        # (runs compared "with the same hyperparameters" join on it)
        yield act, PROVML.parameters, literal(params)
    for name, value in params.items():
        node = NamedNode(rec["ids"]["params"][name])
        attr, triples = _attribute(plan, "param", name, PROVML.hasParameter, decl_cls)
        yield from triples
        yield act, PROV.used, node
        yield node, RDF_TYPE, PROV.Entity
        yield node, RDF_TYPE, PROVML.AttributeValue  # the superclass too: no reasoner
        yield node, RDF_TYPE, value_cls
        yield node, PROVML.name, Literal(name)
        yield node, PROV.value, literal(value)
        yield node, PROVML.valueOf, attr


def _data(node: NamedNode, value: Any, stage: str | None, generated: bool) -> Iterable[Triple]:
    if is_entity_ref(value):  # an entity already in the graph: nothing to add
        return
    yield node, RDF_TYPE, PROV.Entity
    yield node, RDF_TYPE, PROVML.Data
    if is_data_ref(value) and value["@data"] == MISSING:
        # named by this use alone (provml.core.resolve): where it was and why it was not read
        yield node, RDF_TYPE, PROVML.MissingData
        for key, field in (*USE_FIELDS.items(), ("error", PROVML.error)):
            if isinstance(value.get(key), str):
                yield node, field, Literal(value[key])
        return
    if is_data_ref(value):
        kind = value["@data"]
        if kind in DATA_CLASSES:
            yield node, RDF_TYPE, DATA_CLASSES[kind]
        elif stage in LEARNING_STAGES and not generated and kind != "value":
            yield node, RDF_TYPE, PROVML.LearningData
        if generated and stage == "inference" and kind == "value":
            yield node, RDF_TYPE, PROVML.Prediction
        for key, item in value.items():
            prop = DATA_FIELDS.get(key)
            if prop is not None:
                yield node, prop, literal(item)
    else:
        if generated and stage == "inference":
            yield node, RDF_TYPE, PROVML.Prediction
        yield node, PROVML.sha256, Literal(ids.value_sha256(value))
        yield node, PROV.value, literal(value)


def _use(event: NamedNode, value: Any) -> Iterable[Triple]:
    """Where a used or generated file was and what the run called it, on the usage or
    generation (USE_FIELDS; other members as one provml:metadata JSON object)."""
    if is_data_ref(value):
        missing = value["@data"] == MISSING  # its error is on its own node
        extra: dict[str, Any] = {}
        for key, item in value.items():
            prop = USE_FIELDS.get(key)
            if prop is not None:
                yield event, prop, literal(item)
            elif key != "@data" and key not in DATA_FIELDS and not missing:
                extra[key] = item
        if extra:
            yield event, PROVML.metadata, literal(extra)


def _workflow_start(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    act, plan = NamedNode(rec["id"]), NamedNode(rec["plan_id"])
    yield act, RDF_TYPE, PROV.Activity
    yield act, RDF_TYPE, PROVML.WorkflowExecution
    yield act, PROVML.name, Literal(rec["name"])
    yield act, PROV.startedAtTime, timestamp(rec["time"])
    yield act, PROVML.session, Literal(session)
    yield from _plan(plan, rec["name"], [PROVML.Workflow])
    agent = None
    if rec.get("user"):
        agent = NamedNode(ids.persona_iri(rec["user"]))
        yield agent, RDF_TYPE, PROV.Agent
        yield agent, RDF_TYPE, PROVML.Persona
        yield agent, PROVML.name, Literal(rec["user"])
    yield from _association(act, plan, agent)
    yield from _params(rec, act, plan)
    env = rec.get("env") or {}
    extra = {}
    for key, value in env.items():
        prop = ENV_FIELDS.get(key)
        if prop is not None and value is not None:
            yield act, prop, literal(value)
        elif key != "collected_ms":
            extra[key] = value
    if extra:
        yield act, PROVML.metadata, literal(extra)
    if isinstance(env.get("run_key"), str) and env["run_key"]:
        # every rank of one batch job is part of one run of the workflow
        run = NamedNode(ids.run_iri(env["run_key"], rec["name"]))
        yield act, PROVML.partOf, run
        yield run, RDF_TYPE, PROV.Activity
        yield run, RDF_TYPE, PROVML.WorkflowExecution
        yield run, PROVML.name, Literal(rec["name"])
        yield run, PROVML.runKey, Literal(env["run_key"])
        yield from _association(run, plan, None)


def _end(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    act = NamedNode(rec["id"])
    yield act, PROV.endedAtTime, timestamp(rec["time"])
    yield act, PROVML.status, Literal(rec.get("status") or "finished")
    if rec.get("error"):
        yield act, PROVML.error, Literal(rec["error"])


def _execution_start(
    rec: dict[str, Any], plan_classes: list[NamedNode], act_class: NamedNode, link: NamedNode
) -> Iterable[Triple]:
    act, plan = NamedNode(rec["id"]), NamedNode(rec["plan_id"])
    parent_plan = NamedNode(rec["parent_plan_id"])
    yield act, RDF_TYPE, PROV.Activity
    yield act, RDF_TYPE, act_class
    yield act, PROVML.name, Literal(rec["plan"][-1])
    yield act, PROV.startedAtTime, timestamp(rec["time"])
    yield act, PROVML.partOf, NamedNode(rec["parent_id"])
    yield from _plan(plan, rec["plan"][-1], plan_classes)
    yield parent_plan, link, plan
    yield from _association(act, plan, None)


def _task_start(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    stage = rec.get("stage")
    plan_cls, act_cls = STAGE_CLASSES[stage]
    classes = [PROVML.DataTransformation] + ([plan_cls] if stage is not None else [])
    if stage in LEARNING_STAGES:
        classes.append(PROVML.LearningStage)
    if stage is not None:
        yield NamedNode(rec["id"]), PROVML.stage, Literal(stage)
    yield from _execution_start(rec, classes, act_cls, PROVML.hasTransformation)
    if act_cls != PROVML.DataTransformationExecution:
        yield NamedNode(rec["id"]), RDF_TYPE, PROVML.DataTransformationExecution
    act, plan = NamedNode(rec["id"]), NamedNode(rec["plan_id"])
    yield from _params(rec, act, plan)
    for role, value in (rec.get("used") or {}).items():
        node = NamedNode(rec["ids"]["used"][role])
        attr, triples = _attribute(plan, "in", role, PROVML.hasInput, PROVML.Attribute)
        yield from triples
        usage = NamedNode(f"{act.value}/usage/{attr.value.rsplit('/', 1)[1]}")
        yield act, PROV.used, node
        yield act, PROV.qualifiedUsage, usage
        yield usage, RDF_TYPE, PROV.Usage
        yield usage, PROV.entity, node
        yield usage, PROV.hadRole, attr
        yield usage, PROV.atTime, timestamp(rec["time"])
        yield from _use(usage, value)
        yield from _data(node, value, stage, generated=False)


def _task_end(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    yield from _end(rec, session)
    act, plan = NamedNode(rec["id"]), NamedNode(rec["plan_id"])
    for key, number in (rec.get("resources") or {}).items():
        prop, factor = RESOURCE_FIELDS[key]
        yield act, prop, literal(number * factor)
    for role, value in (rec.get("generated") or {}).items():
        node = NamedNode(rec["ids"]["generated"][role])
        attr, triples = _attribute(plan, "out", role, PROVML.hasOutput, PROVML.Attribute)
        yield from triples
        gen = NamedNode(f"{act.value}/generation/{attr.value.rsplit('/', 1)[1]}")
        yield node, PROV.wasGeneratedBy, act
        yield node, PROV.qualifiedGeneration, gen
        yield gen, RDF_TYPE, PROV.Generation
        yield gen, PROV.activity, act
        yield gen, PROV.hadRole, attr
        yield gen, PROV.atTime, timestamp(rec["time"])
        yield from _use(gen, value)
        yield from _data(node, value, rec.get("stage"), generated=True)


def _section_start(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    yield from _execution_start(
        rec,
        [PROVML.DataTransformation, PROVML.LearningStageSection],
        PROVML.LearningStageSectionExecution,
        PROVML.hasSection,
    )
    yield NamedNode(rec["id"]), RDF_TYPE, PROVML.DataTransformationExecution
    if rec.get("index") is not None:
        yield NamedNode(rec["id"]), PROVML.index, literal(rec["index"])


def _metric(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    node = NamedNode(rec["id"])
    yield node, RDF_TYPE, PROV.Entity
    yield node, RDF_TYPE, PROVML.ModelEvaluation
    yield node, PROVML.name, Literal(rec["name"])
    value = rec["value"]
    yield (
        node,
        PROV.value,
        (Literal(value, datatype=XSD.double) if isinstance(value, str) else literal(float(value))),
    )
    yield node, PROV.wasGeneratedBy, NamedNode(rec["parent_id"])
    yield node, PROV.generatedAtTime, timestamp(rec["time"])
    if rec.get("step") is not None:
        yield node, PROVML.step, literal(rec["step"])


def _capture_report(rec: dict[str, Any], session: str) -> Iterable[Triple]:
    node = NamedNode(rec["id"])
    yield node, RDF_TYPE, PROV.Entity
    yield node, RDF_TYPE, PROVML.CaptureReport
    yield node, PROVML.session, Literal(session)
    yield node, PROV.generatedAtTime, timestamp(rec["time"])
    yield node, PROVML.lostRecords, literal(sum(rec["lost"].values()))
    yield node, PROVML.metadata, literal(rec["lost"])


_EMITTERS: dict[str, Callable[[dict[str, Any], str], Iterable[Triple]]] = {
    "workflow_start": _workflow_start,
    "workflow_end": _end,
    "task_start": _task_start,
    "task_end": _task_end,
    "section_start": _section_start,
    "section_end": _end,
    "metric": _metric,
    "capture_report": _capture_report,
}
