"""The record → RDF mapping: resolved records to pyoxigraph quads (PROV-O + provml).

Everything the mapping may emit is in the tables below; ``tests/provml`` checks that each
term is declared in the ontology. Records map straight to pyoxigraph terms (no rdflib
graph in between: FINDINGS measured 7–25× faster). Every node is an IRI derived from the
record (no blank nodes), so mapping the same batch twice gives the same quads and a
replay changes nothing in the store. ``docs/mapping.md`` is this module as a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar

from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

from provml.core import ids
from provml.core.vocab import PROV_NS, PROVML, PROVML_NS, RDF_NS, RDF_TYPE, XSD_NS
from provml.core.wire import MISSING, Batch, is_data_ref, is_entity_ref

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
    """Map a resolved batch (see :mod:`provml.core.resolve`) to quads in the default graph,
    each quad once. The emitters yield strings, and a pyoxigraph term is built once per
    distinct IRI or literal of the batch; a quad is made without a graph argument (the
    default graph either way: passing ``DefaultGraph()`` costs ~4 µs a quad in pyoxigraph
    0.5's argument conversion, as a literal object does; bench/README.md)."""
    nodes = _Cache(NamedNode)
    lits = _Cache(_literal_term)
    vocab = _VOCAB
    return [
        Quad(nodes[s], vocab[p], nodes[o] if isinstance(o, str) else lits[o])
        for s, p, o in _triples(batch)
    ]


def batch_to_nquads(batch: Batch) -> bytes:
    """The quads of :func:`batch_to_quads` as N-Quads text (UTF-8), each once, without
    building a pyoxigraph term (for the bulk loader: ``provml ingest --data-dir``). Parsed,
    it gives exactly the quads :func:`batch_to_quads` gives (tests/provml)."""
    terms = _Cache(_term_text)
    vocab = _VOCAB_TEXT
    return "".join(
        [f"{terms[s]} {vocab[p]} {terms[o]} .\n" for s, p, o in _triples(batch)]
    ).encode()


def _triples(batch: Batch) -> Iterable[STriple]:
    """Every triple the records of a batch map to, each once, in order."""
    session = batch.session
    emitters = _EMITTERS
    return dict.fromkeys(
        triple for rec in batch.records for triple in emitters[rec["kind"]](rec, session)
    )


#: an object: an IRI (a str), or a literal as (lexical form, datatype IRI or None for a
#: plain string); subjects and predicates are IRIs
Obj = str | tuple[str, str | None]
STriple = tuple[str, str, Obj]

K = TypeVar("K")
V = TypeVar("V")


class _Cache(dict[K, V]):
    """A term for each key, made once (on the first lookup) by ``make``."""

    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: K) -> V:
        value = self[key] = self.make(key)
        return value


#: characters that may not appear raw in an N-Quads IRI (IRIREF)
_NOT_IN_IRIREF = re.compile(r'[\x00-\x20<>"{}|^`\\]')
#: the escapes N-Quads needs in a string (STRING_LITERAL_QUOTE)
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def _literal_term(lit: tuple[str, str | None]) -> Literal:
    lexical, datatype = lit
    if datatype is None:
        return Literal(lexical)
    return Literal(lexical, datatype=_VOCAB[datatype])


def _iri_text(iri: str) -> str:
    if _NOT_IN_IRIREF.search(iri) is not None:
        NamedNode(iri)  # raises the ValueError batch_to_quads would
        raise ValueError(f"not an IRI: {iri!r}")
    return f"<{iri}>"


def _literal_text(lit: tuple[str, str | None]) -> str:
    lexical, datatype = lit
    text = f'"{lexical.translate(_ESCAPES)}"'
    return text if datatype is None else f"{text}^^{_iri_text(datatype)}"


def _term_text(term: Obj) -> str:
    return _iri_text(term) if isinstance(term, str) else _literal_text(term)


#: predicates and datatypes (a closed set: the tables above) as terms and as N-Quads text
_VOCAB: _Cache[str, NamedNode] = _Cache(NamedNode)
_VOCAB_TEXT: _Cache[str, str] = _Cache(_iri_text)

_XSD_BOOLEAN = XSD_NS + "boolean"
_XSD_INTEGER = XSD_NS + "integer"
_XSD_DOUBLE = XSD_NS + "double"
_XSD_DATETIME = XSD_NS + "dateTime"
_JSON = JSON_DATATYPE.value
_TRUE, _FALSE = ("true", _XSD_BOOLEAN), ("false", _XSD_BOOLEAN)


def _lit(value: Any) -> tuple[str, str | None]:
    """A JSON value as a literal (see :func:`literal`)."""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return str(value), _XSD_INTEGER
    if isinstance(value, float):
        return repr(value), _XSD_DOUBLE
    if isinstance(value, str):
        return value, None
    return ids.canonical_json(value).decode(), _JSON


def _time(t: float) -> tuple[str, str | None]:
    text = datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return text, _XSD_DATETIME


def literal(value: Any) -> Literal:
    """A JSON value as a typed RDF literal (objects, arrays and null as rdf:JSON)."""
    return _literal_term(_lit(value))


def timestamp(t: float) -> Literal:
    return _literal_term(_time(t))


class _Iris:
    """Attribute access to the IRIs of one namespace, as strings: ``_P.used``."""

    def __init__(self, base: str) -> None:
        self._base = base

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        iri = self._base + name
        object.__setattr__(self, name, iri)
        return iri


_P = _Iris(PROV_NS)
_M = _Iris(PROVML_NS)
_TYPE = RDF_TYPE.value
_STAGE_CLASSES = {k: (a.value, b.value) for k, (a, b) in STAGE_CLASSES.items()}
_PARAM_CLASSES = {k: (a.value, b.value) for k, (a, b) in PARAM_CLASSES.items()}
_DATA_CLASSES = {k: v.value for k, v in DATA_CLASSES.items()}
_USE_FIELDS = {k: v.value for k, v in USE_FIELDS.items()}
_DATA_FIELDS = {k: v.value for k, v in DATA_FIELDS.items()}
_ENV_FIELDS = {k: v.value for k, v in ENV_FIELDS.items()}
_RESOURCE_FIELDS = {k: (p.value, f) for k, (p, f) in RESOURCE_FIELDS.items()}
_MISSING_FIELDS = (*_USE_FIELDS.items(), ("error", PROVML.error.value))


def _plan(plan: str, name: str, classes: Iterable[str]) -> Iterable[STriple]:
    yield plan, _TYPE, _P.Plan
    yield plan, _TYPE, _P.Entity
    for cls in classes:
        yield plan, _TYPE, cls
    yield plan, _M.name, (name, None)


def _association(act: str, plan: str, agent: str | None) -> Iterable[STriple]:
    assoc = act + "/association"
    yield act, _P.qualifiedAssociation, assoc
    yield assoc, _TYPE, _P.Association
    yield assoc, _P.hadPlan, plan
    if agent is not None:
        yield assoc, _P.agent, agent
        yield act, _P.wasAssociatedWith, agent


def _attribute(
    plan: str, direction: str, name: str, link: str, cls: str
) -> tuple[str, list[STriple]]:
    attr = ids.attribute_iri(plan, direction, name)
    return attr, [
        (plan, link, attr),
        (attr, _TYPE, _M.Attribute),
        (attr, _TYPE, cls),
        (attr, _TYPE, _P.Role),
        (attr, _M.name, (name, None)),
    ]


def _params(rec: dict[str, Any], act: str, plan: str) -> Iterable[STriple]:
    decl_cls, value_cls = _PARAM_CLASSES.get(rec.get("stage"), _PARAM_CLASSES[None])
    params = rec.get("params") or {}
    if params:
        # all the settings as one canonical JSON object: equal settings, equal literal
        # (runs compared "with the same hyperparameters" join on it)
        yield act, _M.parameters, _lit(params)
    for name, value in params.items():
        node = rec["ids"]["params"][name]
        attr, triples = _attribute(plan, "param", name, _M.hasParameter, decl_cls)
        yield from triples
        yield act, _P.used, node
        yield node, _TYPE, _P.Entity
        yield node, _TYPE, _M.AttributeValue  # the superclass too: no reasoner
        yield node, _TYPE, value_cls
        yield node, _M.name, (name, None)
        yield node, _P.value, _lit(value)
        yield node, _M.valueOf, attr


def _data(node: str, value: Any, stage: str | None, generated: bool) -> Iterable[STriple]:
    if is_entity_ref(value):  # an entity already in the graph: nothing to add
        return
    yield node, _TYPE, _P.Entity
    yield node, _TYPE, _M.Data
    if is_data_ref(value) and value["@data"] == MISSING:
        # named by this use alone (provml.core.resolve): where it was and why it was not read
        yield node, _TYPE, _M.MissingData
        for key, field in _MISSING_FIELDS:
            if isinstance(value.get(key), str):
                yield node, field, (value[key], None)
        return
    if is_data_ref(value):
        kind = value["@data"]
        if kind in _DATA_CLASSES:
            yield node, _TYPE, _DATA_CLASSES[kind]
        elif stage in LEARNING_STAGES and not generated and kind != "value":
            yield node, _TYPE, _M.LearningData
        if generated and stage == "inference" and kind == "value":
            yield node, _TYPE, _M.Prediction
        for key, item in value.items():
            prop = _DATA_FIELDS.get(key)
            if prop is not None:
                yield node, prop, _lit(item)
    else:
        if generated and stage == "inference":
            yield node, _TYPE, _M.Prediction
        yield node, _M.sha256, (ids.value_sha256(value), None)
        yield node, _P.value, _lit(value)


def _use(event: str, value: Any) -> Iterable[STriple]:
    """Where a used or generated file was and what the run called it, on the usage or
    generation (USE_FIELDS; other members as one provml:metadata JSON object)."""
    if is_data_ref(value):
        missing = value["@data"] == MISSING  # its error is on its own node
        extra: dict[str, Any] = {}
        for key, item in value.items():
            prop = _USE_FIELDS.get(key)
            if prop is not None:
                yield event, prop, _lit(item)
            elif key != "@data" and key not in _DATA_FIELDS and not missing:
                extra[key] = item
        if extra:
            yield event, _M.metadata, _lit(extra)


def _workflow_start(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    act, plan = rec["id"], rec["plan_id"]
    yield act, _TYPE, _P.Activity
    yield act, _TYPE, _M.WorkflowExecution
    yield act, _M.name, (rec["name"], None)
    yield act, _P.startedAtTime, _time(rec["time"])
    yield act, _M.session, (session, None)
    yield from _plan(plan, rec["name"], [_M.Workflow])
    agent = None
    if rec.get("user"):
        agent = ids.persona_iri(rec["user"])
        yield agent, _TYPE, _P.Agent
        yield agent, _TYPE, _M.Persona
        yield agent, _M.name, (rec["user"], None)
    yield from _association(act, plan, agent)
    yield from _params(rec, act, plan)
    env = rec.get("env") or {}
    extra = {}
    for key, value in env.items():
        prop = _ENV_FIELDS.get(key)
        if prop is not None and value is not None:
            yield act, prop, _lit(value)
        elif key != "collected_ms":
            extra[key] = value
    if extra:
        yield act, _M.metadata, _lit(extra)
    if isinstance(env.get("run_key"), str) and env["run_key"]:
        # every rank of one batch job is part of one run of the workflow
        run = ids.run_iri(env["run_key"], rec["name"])
        yield act, _M.partOf, run
        yield run, _TYPE, _P.Activity
        yield run, _TYPE, _M.WorkflowExecution
        yield run, _M.name, (rec["name"], None)
        yield run, _M.runKey, (env["run_key"], None)
        yield from _association(run, plan, None)


def _end(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    act = rec["id"]
    yield act, _P.endedAtTime, _time(rec["time"])
    yield act, _M.status, (rec.get("status") or "finished", None)
    if rec.get("error"):
        yield act, _M.error, (rec["error"], None)


def _execution_start(
    rec: dict[str, Any], plan_classes: list[str], act_class: str, link: str
) -> Iterable[STriple]:
    act, plan = rec["id"], rec["plan_id"]
    yield act, _TYPE, _P.Activity
    yield act, _TYPE, act_class
    yield act, _M.name, (rec["plan"][-1], None)
    yield act, _P.startedAtTime, _time(rec["time"])
    yield act, _M.partOf, rec["parent_id"]
    yield from _plan(plan, rec["plan"][-1], plan_classes)
    yield rec["parent_plan_id"], link, plan
    yield from _association(act, plan, None)


def _task_start(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    stage = rec.get("stage")
    plan_cls, act_cls = _STAGE_CLASSES[stage]
    classes = [_M.DataTransformation] + ([plan_cls] if stage is not None else [])
    if stage in LEARNING_STAGES:
        classes.append(_M.LearningStage)
    act, plan = rec["id"], rec["plan_id"]
    if stage is not None:
        yield act, _M.stage, (stage, None)
    yield from _execution_start(rec, classes, act_cls, _M.hasTransformation)
    if act_cls != _M.DataTransformationExecution:
        yield act, _TYPE, _M.DataTransformationExecution
    yield from _params(rec, act, plan)
    used = rec.get("used")
    if not used:
        return
    when = _time(rec["time"])
    for role, value in used.items():
        node = rec["ids"]["used"][role]
        attr, triples = _attribute(plan, "in", role, _M.hasInput, _M.Attribute)
        yield from triples
        usage = f"{act}/usage/{attr.rsplit('/', 1)[1]}"
        yield act, _P.used, node
        yield act, _P.qualifiedUsage, usage
        yield usage, _TYPE, _P.Usage
        yield usage, _P.entity, node
        yield usage, _P.hadRole, attr
        yield usage, _P.atTime, when
        yield from _use(usage, value)
        yield from _data(node, value, stage, generated=False)


def _task_end(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    yield from _end(rec, session)
    act, plan = rec["id"], rec["plan_id"]
    for key, number in (rec.get("resources") or {}).items():
        prop, factor = _RESOURCE_FIELDS[key]
        yield act, prop, _lit(number * factor)
    generated = rec.get("generated")
    if not generated:
        return
    when = _time(rec["time"])
    stage = rec.get("stage")
    for role, value in generated.items():
        node = rec["ids"]["generated"][role]
        attr, triples = _attribute(plan, "out", role, _M.hasOutput, _M.Attribute)
        yield from triples
        gen = f"{act}/generation/{attr.rsplit('/', 1)[1]}"
        yield node, _P.wasGeneratedBy, act
        yield node, _P.qualifiedGeneration, gen
        yield gen, _TYPE, _P.Generation
        yield gen, _P.activity, act
        yield gen, _P.hadRole, attr
        yield gen, _P.atTime, when
        yield from _use(gen, value)
        yield from _data(node, value, stage, generated=True)


def _section_start(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    yield from _execution_start(
        rec,
        [_M.DataTransformation, _M.LearningStageSection],
        _M.LearningStageSectionExecution,
        _M.hasSection,
    )
    yield rec["id"], _TYPE, _M.DataTransformationExecution
    if rec.get("index") is not None:
        yield rec["id"], _M.index, _lit(rec["index"])


def _metric(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    node = rec["id"]
    yield node, _TYPE, _P.Entity
    yield node, _TYPE, _M.ModelEvaluation
    yield node, _M.name, (rec["name"], None)
    value = rec["value"]
    yield (
        node,
        _P.value,
        ((value, _XSD_DOUBLE) if isinstance(value, str) else _lit(float(value))),
    )
    yield node, _P.wasGeneratedBy, rec["parent_id"]
    yield node, _P.generatedAtTime, _time(rec["time"])
    if rec.get("step") is not None:
        yield node, _M.step, _lit(rec["step"])


def _capture_report(rec: dict[str, Any], session: str) -> Iterable[STriple]:
    node = rec["id"]
    yield node, _TYPE, _P.Entity
    yield node, _TYPE, _M.CaptureReport
    yield node, _M.session, (session, None)
    yield node, _P.generatedAtTime, _time(rec["time"])
    yield node, _M.lostRecords, _lit(sum(rec["lost"].values()))
    yield node, _M.metadata, _lit(rec["lost"])


_EMITTERS: dict[str, Callable[[dict[str, Any], str], Iterable[STriple]]] = {
    "workflow_start": _workflow_start,
    "workflow_end": _end,
    "task_start": _task_start,
    "task_end": _task_end,
    "section_start": _section_start,
    "section_end": _end,
    "metric": _metric,
    "capture_report": _capture_report,
}
