"""Identifier assignment and plan linking: a wire batch → a *resolved* batch.

This is the tracker's work (see :mod:`tracker.app`); it lives in the core because it is
pure and deterministic and the manager checks resolved batches with the same code. A
resolved record is its wire record plus

* ``id``: the execution's (or metric value's) IRI,
* ``parent_id``: the IRI of the workflow or task execution it belongs to,
* ``plan_id`` (and ``parent_plan_id``): the plan the execution follows (prospective
  provenance) and that plan's own parent plan,
* ``ids``: ``{"params"|"used"|"generated": {name: IRI}}`` for every value it names.

Because every IRI is a function of the record, resolving a batch twice gives the same
result; that is what makes replays harmless downstream.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from provml.core import ids
from provml.core.wire import MISSING, Batch, is_data_ref, is_entity_ref, is_missing_ref

#: kinds whose records are not executions
ID_MAKERS = {"metric": ids.metric_iri, "capture_report": ids.report_iri}

RESOLVED_FIELDS = frozenset({"id", "parent_id", "plan_id", "parent_plan_id", "ids"})


def resolve_batch(batch: Batch) -> Batch:
    """Return a copy of ``batch`` whose records carry their identifiers."""
    return Batch(
        batch=batch.batch,
        session=batch.session,
        records=[resolve_record(batch.session, rec) for rec in batch.records],
        version=batch.version,
    )


def resolve_record(session: str, rec: dict[str, Any]) -> dict[str, Any]:
    kind: str = rec["kind"]
    out = dict(rec)
    make_id = ID_MAKERS.get(kind, ids.execution_iri)
    out["id"] = this = make_id(rec.get("session") or session, rec["n"])
    if "parent" in rec:
        out["parent_id"] = ids.execution_iri(rec.get("parent_session") or session, rec["parent"])
    if kind.startswith("workflow_"):
        out["plan_id"] = ids.plan_iri(rec["name"])
    elif "plan" in rec:
        plan = rec["plan"]
        out["plan_id"] = ids.plan_iri(*plan)
        out["parent_plan_id"] = ids.plan_iri(*plan[:-1])
    for key in ("used", "generated"):
        if rec.get(key):
            out[key] = {role: _upgrade(v) for role, v in rec[key].items()}
    value_ids: dict[str, dict[str, str]] = {}
    if rec.get("params"):
        value_ids["params"] = {
            name: f"{this}/param/{quote(name, safe='')}" for name in rec["params"]
        }
    if rec.get("used"):
        value_ids["used"] = {role: used_value_iri(this, role, v) for role, v in out["used"].items()}
    if rec.get("generated"):
        value_ids["generated"] = {
            role: generated_iri(this, role, v) for role, v in out["generated"].items()
        }
    if value_ids:
        out["ids"] = value_ids
    return out


#: what capture_lib before wire format 1's "missing" references wrote for a file it could
#: not read: an inline value, which would be named by content and shared by every run that
#: lacked the same path; read as the missing reference it stands for
_LEGACY_MISSING = frozenset({"path", "error"})


def _upgrade(value: Any) -> Any:
    if (
        isinstance(value, dict)
        and value.keys() == _LEGACY_MISSING
        and all(isinstance(v, str) for v in value.values())
    ):
        return {"@data": MISSING, **value}
    return value


def used_value_iri(execution: str, role: str, value: Any) -> str:
    """A used value is named by its content, typed reference or inline JSON alike; data
    that could not be read has no content and is named by this use alone."""
    if is_missing_ref(value):
        return ids.missing_data_iri(execution, "used", role)
    if is_data_ref(value):
        return ids.content_iri(value["sha256"])
    if is_entity_ref(value):
        return str(value["@entity"])
    return ids.content_iri(ids.value_sha256(value))


def generated_iri(execution: str, role: str, value: Any) -> str:
    """Generated files and models are named by content; generated inline values
    (predictions, scores) by the execution that generated them, as is data that could not
    be read."""
    if is_missing_ref(value):
        return ids.missing_data_iri(execution, "generated", role)
    if is_data_ref(value):
        return ids.content_iri(value["sha256"])
    if is_entity_ref(value):
        return str(value["@entity"])
    return ids.generated_value_iri(execution, role)


def validate_resolved(obj: Any) -> Batch:
    """Check a resolved batch (what the tracker forwards to the manager).

    The wire part is validated as usual, then resolved again here: any identifier that
    differs from what the record implies is refused, so a manager never writes ids it
    cannot account for.
    """
    from provml.core.errors import ValidationError
    from provml.core.wire import validate_batch

    if not isinstance(obj, dict) or not isinstance(obj.get("records"), list):
        return validate_batch(obj)  # raises with the usual message
    wire_records = []
    for rec in obj["records"]:
        if isinstance(rec, dict):
            rec = {k: v for k, v in rec.items() if k not in RESOLVED_FIELDS}
        wire_records.append(rec)
    batch = validate_batch({**obj, "records": wire_records})
    resolved = resolve_batch(batch)
    for i, (given, expected) in enumerate(zip(obj["records"], resolved.records, strict=True)):
        if not isinstance(given, dict):
            continue  # a compact record carries no identifiers to check
        for key in RESOLVED_FIELDS:
            if key in given and given[key] != expected.get(key):
                raise ValidationError(
                    f"records[{i}].{key}: identifier does not match the record",
                    details=[f"expected {expected.get(key)!r}"],
                )
    return resolved
