"""ProvLake retrospective records → validated provml wire batches (docs/provlake.md says
what maps to what)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provml.core.errors import ValidationError
from provml.core.ids import canonical_json, value_sha256
from provml.core.wire import (
    DATA_TYPES,
    MAX_DEPTH,
    STAGES,
    WIRE_VERSION,
    Batch,
    json_type,
    validate_batch,
)
from provml.interop.provlake.identities import execution_identity, workflow_session
from provml.interop.provlake.messages import MAX_PROBLEMS, among, is_name
from provml.interop.provlake.prospective import DataflowSpec, TransformationSpec

#: the task or workflow a record without a workflow belongs to (ProvLake's own names)
GLOBAL_WORKFLOW = "global_workflow"
GLOBAL_EXECUTION = "global"

#: ProvLake status → provml status
STATUSES = {"FINISHED": "finished", "ERRORED": "failed", "RUNNING": "running",
            "GENERATED": "running"}  # fmt: skip
TASK_TYPES = ("Generate", "Input", "Output")
CYCLE_TYPES = ("Input", "Output")

#: ``prov_attr_type`` wrappers whose ``values`` is the value itself
WRAPPERS = frozenset({"dict", "list", "dataset", "dataset_item", "attribute_value"})
#: ``prov_attr_type`` of references: data named by where it is, not by its content
REFERENCES = frozenset({"data_reference", "kg_reference"})

MAX_ERROR = 2000  # characters of stderr kept as a failed execution's error
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Problems(list[str]):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")


def to_batches(bag: list[Any], specs: Mapping[str, DataflowSpec] | None = None) -> list[Batch]:
    """Convert a bag of ProvLake records to validated wire batches, one per workflow
    execution (the batch's session is the workflow's). Raise :class:`ValidationError`
    naming every problem, with the index of the ProvLake record it is in."""
    problems = _Problems()
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, rec in enumerate(bag):
        for session, wire in _convert(rec, f"[{i}]", specs or {}, problems):
            groups.setdefault(session, []).append((i, wire))
        if len(problems) > MAX_PROBLEMS:
            break
    batches: list[Batch] = []
    for session, items in groups.items():
        if problems:
            break
        records = [wire for _, wire in items]
        obj = {
            "provml": WIRE_VERSION,
            "batch": hashlib.sha256(canonical_json([session, records])).hexdigest()[:32],
            "session": session,
            "records": records,
        }
        try:
            batches.append(validate_batch(obj))
        except ValidationError as exc:
            for detail in exc.details:
                problems.append(_origin(detail, items))
    if problems:
        raise ValidationError(
            f"invalid ProvLake records: {problems[0]}", details=problems[:MAX_PROBLEMS]
        )
    return batches


def _origin(detail: str, items: list[tuple[int, dict[str, Any]]]) -> str:
    """A wire validator's problem, said of the ProvLake record it came from."""
    m = re.match(r"records\[(\d+)\]", detail)
    if not m:
        return detail
    source, wire = items[int(m.group(1))]
    return f"[{source}] (as provml {wire['kind']}){detail[m.end() :]}"


def _convert(rec: Any, path: str, specs: Mapping[str, DataflowSpec],
             problems: _Problems) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    if not isinstance(rec, dict):
        problems.add(path, f"a ProvLake record is an object, got {json_type(rec)}")
        return []
    prov = rec.get("prov_obj")
    if not isinstance(prov, dict):
        problems.add(f"{path}.prov_obj", "must be an object")
        return []
    dataflow = rec.get("dataflow_name")
    if dataflow is None:
        dataflow = GLOBAL_WORKFLOW
    elif not is_name(dataflow):
        problems.add(f"{path}.dataflow_name", "must be a non-empty string of at most 256 chars")
        return []
    custom = rec.get("custom_metadata")
    if custom is not None and not isinstance(custom, dict):
        problems.add(f"{path}.custom_metadata", "must be an object")
        return []
    act = rec.get("act_type")
    ctx = _Context(path, dataflow, custom or {}, specs.get(dataflow), problems)
    if act == "workflow":
        return ctx.workflow(prov, rec.get("context"))
    if act == "task":
        return ctx.execution(prov, "task", "dt", TASK_TYPES)
    if act == "cycle":
        return ctx.execution(prov, "cycle", "cycle_name", CYCLE_TYPES)
    problems.add(f"{path}.act_type", f"must be 'workflow', 'task' or 'cycle', got {act!r}")
    return []


@dataclass
class _Context:
    path: str
    dataflow: str
    custom: dict[str, Any]
    spec: DataflowSpec | None
    problems: _Problems

    def _time(self, obj: dict[str, Any], key: str, where: str) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.add(f"{self.path}.prov_obj{where}.{key}", "must be seconds (a number)")
            return None
        return value

    def _status(self, obj: dict[str, Any], where: str) -> str | None:
        value = obj.get("status")
        if value is None:
            return None
        status = STATUSES.get(value.upper()) if isinstance(value, str) else None
        if status is None:
            self.problems.add(
                f"{self.path}.prov_obj{where}.status", f"must be one of {sorted(STATUSES)}"
            )
        return status

    def workflow(self, prov: dict[str, Any], context: Any) -> list[tuple[str, dict[str, Any]]]:
        wf_execution = prov.get("wf_execution")
        if wf_execution is None:
            wf_execution = GLOBAL_EXECUTION
        session = workflow_session(self.dataflow, wf_execution)
        start = self._time(prov, "startTime", "")
        generated = self._time(prov, "generatedTime", "")
        end = self._time(prov, "endTime", "")
        status = self._status(prov, "")
        t0 = start if start is not None else generated
        head: dict[str, Any] = {"kind": "workflow_start", "n": 1, "name": self.dataflow}
        if end is None:
            if t0 is None:
                self.problems.add(f"{self.path}.prov_obj", "a workflow record has startTime")
                return []
            rec: dict[str, Any] = {**head, "time": t0}
            env = _env(self.custom, context)
            if env:
                rec["env"] = env
            params = self._values(prov.get("values"), ".values")
            if params:
                rec["params"] = {k: self._plain(v, f".values.{k}") for k, v in params.items()}
            return [(session, rec)]
        # the end record repeats the start time: the start again (the same triples) makes
        # the execution whole even if the begin record was lost
        out: list[tuple[str, dict[str, Any]]] = []
        if t0 is not None:
            out.append((session, {**head, "time": t0}))
        end_rec: dict[str, Any] = {"kind": "workflow_end", "n": 1, "name": self.dataflow,
                                   "time": end}  # fmt: skip
        if status is not None:
            end_rec["status"] = status
            if status == "failed" and isinstance(prov.get("stderr"), str):
                end_rec["error"] = prov["stderr"][:MAX_ERROR]
        out.append((session, end_rec))
        return out

    def execution(self, prov: dict[str, Any], kind: str, name_key: str,
                  types: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
        """A task (``Generate``/``Input``/``Output``) or cycle (``Input``/``Output``)."""
        inner = prov.get(kind)
        where = f".{kind}"
        if not isinstance(inner, dict):
            self.problems.add(f"{self.path}.prov_obj.{kind}", "must be an object")
            return []
        ident_key = "id" if kind == "task" else "iteration_id"
        ident = inner.get(ident_key)
        if ident is None or isinstance(ident, dict | list):
            self.problems.add(
                f"{self.path}.prov_obj{where}.{ident_key}", "must be a number or a string"
            )
            return []
        name = prov.get(name_key)
        if not is_name(name):
            self.problems.add(
                f"{self.path}.prov_obj.{name_key}",
                "must be a non-empty string of at most 256 chars",
            )
            return []
        typ = prov.get("type")
        if typ not in types:
            self.problems.add(f"{self.path}.prov_obj.type", f"must be one of {list(types)}")
            return []
        wf_execution = inner.get("wf_execution")
        if wf_execution is None:
            wf_execution = GLOBAL_EXECUTION
        w_session = workflow_session(self.dataflow, wf_execution)
        session, n = execution_identity(kind, self.dataflow, wf_execution, name, ident)
        generated = self._time(inner, "generatedTime", where)
        start = self._time(inner, "startTime", where)
        end = self._time(inner, "endTime", where)
        status = self._status(inner, where)
        # a task's inputs are bound when it is made (Generate): it starts then
        t0 = generated if generated is not None else start
        plan = [self.dataflow, name]
        spec = self.spec.transformations.get(name) if self.spec else None
        stage = self._stage(spec)
        head: dict[str, Any] = {"kind": "task_start", "n": n, "session": session, "parent": 1,
                                "plan": plan}  # fmt: skip
        if stage is not None:
            head["stage"] = stage
        values = self._values(prov.get("values"), ".values")
        if typ in ("Generate", "Input"):
            if t0 is None:
                self.problems.add(f"{self.path}.prov_obj{where}", f"{typ} has generatedTime or "
                                  "startTime")  # fmt: skip
                return []
            rec: dict[str, Any] = {**head, "time": t0}
            params, used = self._inputs(values, spec)
            if kind == "cycle":
                params.setdefault("iteration_id", ident)
            if params:
                rec["params"] = params
            if used:
                rec["used"] = used
            return [(w_session, rec)]
        if end is None:
            self.problems.add(f"{self.path}.prov_obj{where}", "an Output record has endTime")
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        if t0 is not None:  # the same start as the Generate record's: adds nothing new
            out.append((w_session, {**head, "time": t0}))
        end_rec: dict[str, Any] = {"kind": "task_end", "n": n, "session": session, "plan": plan,
                                   "time": end}  # fmt: skip
        if stage is not None:
            end_rec["stage"] = stage
        if status is not None:
            end_rec["status"] = status
            if status == "failed" and isinstance(inner.get("stderr"), str):
                end_rec["error"] = inner["stderr"][:MAX_ERROR]
        generated_values = {
            role: self._output(value, f".values.{role}") for role, value in values.items()
        }
        if generated_values:
            end_rec["generated"] = generated_values
        out.append((w_session, end_rec))
        return out

    def _stage(self, spec: TransformationSpec | None) -> str | None:
        stage = self.custom.get("stage")
        if among(stage, STAGES):
            return str(stage)
        return spec.stage if spec is not None else None

    def _values(self, values: Any, where: str) -> dict[str, Any]:
        if values is None:
            return {}
        if not isinstance(values, dict):
            self.problems.add(f"{self.path}.prov_obj{where}", "must be an object (name → value)")
            return {}
        return values

    def _inputs(
        self, values: dict[str, Any], spec: TransformationSpec | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Data references are used data; other values are parameters, unless the
        prospective specification declares them as inputs that are not parameters."""
        params: dict[str, Any] = {}
        used: dict[str, Any] = {}
        for name, raw in values.items():
            where = f".values.{name}"
            ref = self._reference(raw, where)
            if ref is not None:
                used[name] = ref
            elif spec is not None and name in spec.inputs:
                used[name] = self._plain(raw, where)
            else:
                params[name] = self._plain(raw, where)
        return params, used

    def _output(self, raw: Any, where: str) -> Any:
        ref = self._reference(raw, where)
        return ref if ref is not None else self._plain(raw, where)

    def _reference(self, raw: Any, where: str) -> dict[str, Any] | None:
        """A ProvLake data or KG reference (possibly wrapped with custom metadata) as a
        provml data reference, or None for any other value."""
        if not isinstance(raw, dict):
            return None
        kind = raw.get("prov_attr_type")
        meta: dict[str, Any] = {}
        if kind == "attribute_value" and isinstance(raw.get("custom_metadata"), dict):
            meta = raw["custom_metadata"]
            inner = raw.get("values")
            if isinstance(inner, dict) and among(inner.get("prov_attr_type"), REFERENCES):
                raw, kind = inner, inner["prov_attr_type"]
            elif "@data" in meta:  # a plain value marked as data by its custom metadata
                raw, kind = {"values": inner}, "data_reference"
        if not among(kind, REFERENCES):
            return None
        if "values" not in raw:
            self.problems.add(f"{self.path}.prov_obj{where}", f"a {kind} has values")
            return None
        target = self._plain(raw["values"], where)
        store = raw.get("data_store_id")
        named = isinstance(target, dict) and isinstance(target.get("sha256"), str)
        data_type = meta.get("@data") or (named and target.get("@data")) or "file"
        if not among(data_type, DATA_TYPES):
            self.problems.add(
                f"{self.path}.prov_obj{where}.custom_metadata.@data",
                f"must be one of {sorted(DATA_TYPES)}",
            )
            return None
        ref: dict[str, Any] = {"@data": data_type}
        content = meta.get("sha256")
        if named:
            content = target["sha256"]  # the reference names its content: keep its members
            ref.update(target)
        elif isinstance(target, str):
            ref["path"] = target
        else:
            ref["reference"] = target
        if isinstance(content, str) and _SHA256.fullmatch(content):
            ref["sha256"] = content
        else:  # named by where it is: the same reference is the same node
            identity = {"reference": target}
            if store is not None:
                identity["data_store_id"] = store
            ref["sha256"] = value_sha256(identity)
            ref["sha256_of"] = "reference"
        if store is not None:
            ref["data_store_id"] = self._plain(store, where)
        if kind == "kg_reference":
            ref["reference_type"] = kind
        for key, value in meta.items():
            if key not in ("@data", "sha256"):
                ref[key] = self._plain(value, where)
        ref["@data"] = data_type
        return ref

    def _plain(self, value: Any, where: str, depth: int = 0) -> Any:
        """A value with ProvLake's ``prov_attr_type`` wrappers taken off (references
        below the top of a value become their plain target)."""
        if depth > MAX_DEPTH:
            self.problems.add(f"{self.path}.prov_obj{where}", f"nested deeper than {MAX_DEPTH}")
            return None
        if isinstance(value, list):
            return [self._plain(v, where, depth + 1) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("prov_attr_type")
        if kind is None:
            return {k: self._plain(v, where, depth + 1) for k, v in value.items()}
        if not among(kind, WRAPPERS | REFERENCES):
            self.problems.add(
                f"{self.path}.prov_obj{where}.prov_attr_type",
                f"unknown {kind!r}; expected one of {sorted(WRAPPERS | REFERENCES)}",
            )
            return None
        return self._plain(value.get("values"), where, depth + 1)


def _env(custom: dict[str, Any], context: Any) -> dict[str, Any]:
    """A workflow's custom metadata (and the client's context) as provml ``env``: scalars
    as they are, other values as JSON text."""
    env: dict[str, Any] = {}
    for key, value in custom.items():
        env[key] = _scalar(value)
    if context is not None:
        env["provlake_context"] = _scalar(context)
    return env


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return canonical_json(value).decode()
