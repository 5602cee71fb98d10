"""The JSON wire format that capture_lib sends and the tracker and manager accept.

A *batch* is one JSON object::

    {"provml": 1, "batch": "<32 hex>", "session": "<UUIDv7>", "records": [...]}

``provml`` is the wire format version, ``batch`` a unique id the sender makes,
``session`` the capture session (one per process). Each record has a ``kind`` and a
session-local number ``n``; records refer to each other by ``n``. The full description,
with a JSON Schema, is ``docs/wire-format.md`` and ``provml/schema/batch.schema.json``.

Validation here is hand-written rather than done with the JSON Schema: it runs on every
batch the tracker receives, reports every problem with its path, and checks what a schema
cannot (a task's parent is a workflow of the same batch or an earlier one is *not*
required: records of one task may arrive in different batches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from pyoxigraph import NamedNode

from provml.core.errors import ValidationError
from provml.core.vocab import ID_BASE

WIRE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

MAX_RECORDS = 50_000
MAX_NAME = 256
MAX_DEPTH = 32
MAX_ITEMS = 1_000  # params, used or generated entries of one record
#: one value (an entry of params, used or generated) as JSON, in bytes: a value this
#: large belongs in a file named by content; capture_lib keeps a larger one by digest
MAX_VALUE_BYTES = 1 << 20  # 1 MiB
#: one batch as a client sends it (JSON), in bytes; the same on every path: the tracker,
#: ``provml ingest`` to a tracker or straight into a store (``--data-dir``)
MAX_BATCH_BYTES = 16 << 20  # 16 MiB

STAGES = frozenset({"training", "validation", "evaluation", "inference"})
STATUSES = frozenset({"finished", "failed", "running"})
DATA_TYPES = frozenset({"file", "directory", "dataset", "model", "code", "value", "missing"})
#: ``@data`` of a reference to data that could not be read: no content, so no sha256
MISSING = "missing"
#: string fields of a data reference with a property of their own (see provml.core.mapping)
DATA_STRING_FIELDS = ("path", "framework", "framework_version", "version", "split", "source",
                      "license", "name", "description", "algorithm", "host",
                      "error")  # fmt: skip

#: record kind → number of names in its plan
PLAN_LENGTH = {"task_start": 2, "task_end": 2, "section_start": 3, "section_end": 3}

#: The one table of record kinds: each kind's fields in the order of its compact form, an
#: optional field marked with a trailing ``?``. ``session`` on a record: its own execution
#: began in another session; ``parent_session``: its parent did. :data:`KINDS` (what the
#: checks require and allow) and :data:`COMPACT_FIELDS` are read from it.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "workflow_start": ("n", "session?", "name", "time", "params?", "env?", "user?"),
    "workflow_end": ("n", "session?", "name", "time", "status?", "error?"),
    "task_start": (
        "n", "session?", "parent", "parent_session?", "plan", "time", "stage?", "params?",
        "used?",
    ),
    "task_end": (
        "n", "session?", "plan", "time", "stage?", "status?", "error?", "generated?",
        "resources?",
    ),
    "section_start": ("n", "session?", "parent", "parent_session?", "plan", "time", "index?"),
    "section_end": ("n", "session?", "plan", "time", "status?", "error?"),
    "metric": ("n", "parent", "parent_session?", "name", "value", "time", "step?"),
    "capture_report": ("n", "time", "lost"),
}  # fmt: skip

#: record kind → (required fields, optional fields)
KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    kind: (
        frozenset(f for f in fields if not f.endswith("?")),
        frozenset(f[:-1] for f in fields if f.endswith("?")),
    )
    for kind, fields in RECORD_FIELDS.items()
}

#: The compact form of a record: a JSON array whose first item is the kind and the rest
#: are these fields in this order (null for an absent optional field). capture_lib sends
#: this form: its worker can serialise records without building a dict for each.
COMPACT_FIELDS: dict[str, tuple[str, ...]] = {
    kind: ("kind", *(f.rstrip("?") for f in fields)) for kind, fields in RECORD_FIELDS.items()
}

_HEX32 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# a UUIDv7 whose lowest 32 bits are zero: identifiers put the record number there
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{4}0{8}")


@dataclass
class Batch:
    """A validated batch. ``records`` keep their wire shape (plain dicts)."""

    batch: str
    session: str
    records: list[dict[str, Any]]
    version: int = WIRE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "provml": self.version,
            "batch": self.batch,
            "session": self.session,
            "records": self.records,
        }


class TooLarge(ValidationError):
    """A batch over :data:`MAX_BATCH_BYTES`."""

    status = 413
    code = "too_large"


#: what to do with a value too large to send, for the size limits' messages
LARGE_VALUE_ADVICE = (
    "keep a larger value in a file (cl.file) or by its digest (cl.digest), as capture_lib "
    "does by itself"
)


def request_too_large(limit: int, unread: bool = False) -> str:
    """The message of a request body over ``PROVML_MAX_REQUEST_BYTES`` (``limit``)."""
    when = ", refused before it was read" if unread else ""
    return (
        f"the request body is over PROVML_MAX_REQUEST_BYTES ({limit} bytes){when}. A batch "
        f"holds at most {MAX_BATCH_BYTES} bytes and one value {MAX_VALUE_BYTES}: send fewer "
        f"records per batch, and {LARGE_VALUE_ADVICE}"
    )


def check_batch_size(size: int) -> None:
    """Refuse a batch (or a ProvLake bag) whose JSON is over :data:`MAX_BATCH_BYTES`."""
    if size > MAX_BATCH_BYTES:
        raise TooLarge(
            f"the batch is {size} bytes, over the limit of {MAX_BATCH_BYTES} bytes per "
            f"batch: send fewer records per batch; for a value over {MAX_VALUE_BYTES} bytes, "
            f"{LARGE_VALUE_ADVICE}"
        )


def parse_batch(body: bytes | str) -> Batch:
    """Parse and validate one batch from JSON text.

    >>> b = parse_batch('{"provml": 1, "batch": "' + "a" * 32 + '", '
    ...     '"session": "0190a4e2-7b1c-7d2e-8f00-0123456789ab", "records": []}')
    >>> b.records
    []
    """
    check_batch_size(len(body) if isinstance(body, bytes) else len(body.encode()))
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not valid JSON (UTF-8): {exc}") from None
    return validate_batch(obj)


def validate_batch(obj: Any) -> Batch:
    """Check a decoded batch; raise :class:`ValidationError` listing every problem."""
    problems: list[str] = []
    if not isinstance(obj, dict):
        raise ValidationError("a batch must be a JSON object", details=[f"got {json_type(obj)}"])
    version = obj.get("provml")
    if not (_is_int(version) and version in SUPPORTED_VERSIONS):
        problems.append(
            f"provml: wire format version must be one of {sorted(SUPPORTED_VERSIONS)}, "
            f"got {version!r}"
        )
    batch_id = obj.get("batch")
    if not (isinstance(batch_id, str) and _HEX32.fullmatch(batch_id)):
        problems.append("batch: must be 32 lowercase hex characters")
    session = obj.get("session")
    if not (isinstance(session, str) and _UUID.fullmatch(session)):
        problems.append("session: must be a lowercase UUIDv7 string whose last 8 hex digits are 0")
    records = obj.get("records")
    if not isinstance(records, list):
        problems.append("records: must be an array")
        records = []
    elif len(records) > MAX_RECORDS:
        problems.append(f"records: at most {MAX_RECORDS} records per batch, got {len(records)}")
        records = []
    unknown = set(obj) - {"provml", "batch", "session", "records"}
    if unknown:
        problems.append(f"unknown top-level fields: {sorted(unknown)}")
    for i, rec in enumerate(records):
        if isinstance(rec, list):
            rec = records[i] = _expand(rec, f"records[{i}]", problems)
        _check_record(rec, f"records[{i}]", problems)
        if len(problems) > 50:
            problems.append("… further problems not listed")
            break
    if problems:
        raise ValidationError(f"invalid batch: {problems[0]}", details=problems)
    assert isinstance(batch_id, str) and isinstance(session, str) and isinstance(version, int)
    return Batch(batch=batch_id, session=session, records=records, version=int(version))


def json_type(v: Any) -> str:
    """The JSON type of a decoded value, for error messages ("object", "array", …)."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )


def _expand(rec: list[Any], path: str, problems: list[str]) -> Any:
    """A compact record as the object it stands for (absent fields left out)."""
    fields = COMPACT_FIELDS.get(rec[0]) if rec and isinstance(rec[0], str) else None
    if fields is None:
        return rec  # reported by _check_record
    if len(rec) != len(fields):
        problems.append(
            f"{path}: a compact {rec[0]} record has {len(fields)} items, not {len(rec)}"
        )
        return rec
    return {name: value for name, value in zip(fields, rec, strict=True) if value is not None}


def _check_record(rec: Any, path: str, problems: list[str]) -> None:
    if not isinstance(rec, dict):
        problems.append(f"{path}: a record must be an object, got {json_type(rec)}")
        return
    kind = rec.get("kind")
    spec = KINDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        problems.append(
            f"{path}.kind: unknown record kind {kind!r}; expected one of {sorted(KINDS)}"
        )
        return
    required, optional = spec
    missing = required - rec.keys()
    if missing:
        problems.append(f"{path}: {kind} record lacks {sorted(missing)}")
    extra = rec.keys() - required - optional - {"kind"}
    if extra:
        problems.append(f"{path}: unknown fields for {kind}: {sorted(extra)}")
    for key, value in rec.items():
        check = _FIELD_CHECKS.get(key)
        if check is not None and key in required | optional:
            err = check(value)
            if err:
                problems.append(f"{path}.{key}: {err}")
    plan = rec.get("plan")
    if isinstance(plan, list) and kind in PLAN_LENGTH and len(plan) != PLAN_LENGTH[kind]:
        names = "[workflow, task]" if PLAN_LENGTH[kind] == 2 else "[workflow, task, section]"
        problems.append(f"{path}.plan: a {kind} record's plan is {names}")


def _positive_int(v: Any) -> str | None:
    if not _is_int(v) or not 0 < v < 2**32:
        return "must be an integer between 1 and 2**32-1"
    return None


def _name(v: Any) -> str | None:
    if not isinstance(v, str) or not v or len(v) > MAX_NAME:
        return f"must be a non-empty string of at most {MAX_NAME} characters"
    return None


def _plan(v: Any) -> str | None:
    if not isinstance(v, list) or not 2 <= len(v) <= 3:
        return "must be an array of 2 or 3 names: [workflow, task] or [workflow, task, section]"
    for item in v:
        err = _name(item)
        if err:
            return f"each name {err}"
    return None


def _time(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 32503680000:
        return "must be seconds since the Unix epoch (a number)"
    return None


#: characters of an execution's error message (capture_lib cuts longer ones)
MAX_ERROR_CHARS = 65_536


def _error_text(v: Any) -> str | None:
    if not isinstance(v, str):
        return "must be a string"
    if len(v) > MAX_ERROR_CHARS:
        return (
            f"is {len(v)} characters, over the limit of {MAX_ERROR_CHARS} for an error "
            "message (capture_lib cuts longer ones)"
        )
    return None


def _optional(check: Any) -> Any:
    return lambda v: None if v is None else check(v)


def _mapping(check_value: Any) -> Any:
    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return f"must be an object, got {json_type(v)}"
        if len(v) > MAX_ITEMS:
            return f"at most {MAX_ITEMS} entries"
        for key, item in v.items():
            err = _name(key) or check_value(item) or _value_size(item)
            if err:
                return f"entry {key!r}: {err}"
        return None

    return check


def _json_value(v: Any, depth: int = 0) -> str | None:
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(v, dict):
        if "@data" in v and depth == 0:
            return _data_ref(v)
        if "@entity" in v and depth == 0:
            return _entity_ref(v)
        for item in v.values():
            err = _json_value(item, depth + 1)
            if err:
                return err
    elif isinstance(v, list):
        for item in v:
            err = _json_value(item, depth + 1)
            if err:
                return err
    elif isinstance(v, float) and v != v:
        return "NaN is not a JSON value"
    return None


def _value_size(v: Any) -> str | None:
    """The per-value limit (:data:`MAX_VALUE_BYTES`) on the value's compact JSON."""
    if v is None or isinstance(v, (bool, int, float)):
        return None
    if isinstance(v, str) and len(v) * 6 + 2 <= MAX_VALUE_BYTES:  # \uXXXX at worst
        return None
    try:
        size = len(orjson.dumps(v))
    except TypeError:  # an integer beyond 64 bits: measure it the slow way
        import json

        size = len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VALUE_BYTES:
        return (
            f"the value is {size} bytes of JSON, over the limit of {MAX_VALUE_BYTES} bytes "
            "per value: record a large value as a file, or by digest"
        )
    return None


def _data_ref(v: dict[str, Any]) -> str | None:
    if not (isinstance(v["@data"], str) and v["@data"] in DATA_TYPES):
        return f"@data must be one of {sorted(DATA_TYPES)}"
    sha = v.get("sha256")
    if v["@data"] == MISSING:
        # nothing was read, so nothing may name it by content (docs/wire-format.md)
        if sha is not None:
            return "a missing data reference has no sha256: its content was never read"
        if not (isinstance(v.get("path"), str) and v["path"]):
            return "a missing data reference needs the path that could not be read"
    elif not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        return "a data reference needs sha256: 64 lowercase hex characters"
    if "size" in v and not (_is_int(v["size"]) and v["size"] >= 0):
        return "size must be a non-negative integer"
    for key in DATA_STRING_FIELDS:
        if key in v and not isinstance(v[key], str):
            return f"{key} must be a string"
    return None


def _entity_ref(v: dict[str, Any]) -> str | None:
    iri = v["@entity"]
    if len(v) != 1 or not isinstance(iri, str) or not iri.startswith(ID_BASE):
        return f'an entity reference is {{"@entity": "<an IRI under {ID_BASE}>"}} alone'
    if len(iri) > 2000:
        return "@entity is too long"
    try:
        NamedNode(iri)
    except ValueError:
        return "@entity is not a valid IRI"
    if any(ord(c) < 33 for c in iri):
        return "@entity is not a valid IRI"
    return None


NON_FINITE = frozenset({"NaN", "INF", "-INF"})


def _scalar(v: Any) -> str | None:
    if isinstance(v, str) and v in NON_FINITE:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return 'a metric value must be a number, or "NaN", "INF" or "-INF"'
    return None


def _str_map(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(
        isinstance(k, str) and isinstance(x, (str, int, float, bool, type(None)))
        for k, x in v.items()
    ):
        return "must be an object of scalar values"
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _integer(v: Any) -> str | None:
    return None if _is_int(v) else "must be an integer"


def _one_of(options: frozenset[str]) -> Any:
    message = f"must be one of {sorted(options)}"
    return _optional(lambda v: None if isinstance(v, str) and v in options else message)


def _session_ref(v: Any) -> str | None:
    if isinstance(v, str) and _UUID.fullmatch(v):
        return None
    return "must be a session id (as the batch's session)"


def _counts(v: Any) -> str | None:
    if not isinstance(v, dict) or len(v) > 100:
        return "must be an object of at most 100 counts"
    for key, count in v.items():
        if not key or len(key) > MAX_NAME or not (_is_int(count) and count >= 0):
            return f"entry {key!r}: counts are non-negative integers under short names"
    return None


def _resources(v: Any) -> str | None:
    if not isinstance(v, dict) or set(v) - RESOURCE_FIELDS:
        return f"must be an object with only {sorted(RESOURCE_FIELDS)}"
    for key, number in v.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < 0:
            return f"{key} must be a non-negative number"
    return None


RESOURCE_FIELDS = frozenset({"cpu_seconds", "max_rss_kib"})

_FIELD_CHECKS: dict[str, Any] = {
    "n": _positive_int,
    "parent": _positive_int,
    "name": _name,
    "plan": _plan,
    "time": _time,
    "stage": _one_of(STAGES),
    "status": _one_of(STATUSES),
    "error": _optional(lambda v: _error_text(v)),
    "params": _optional(_mapping(_json_value)),
    "used": _optional(_mapping(_json_value)),
    "generated": _optional(_mapping(_json_value)),
    "env": _optional(_str_map),
    "user": _optional(_name),
    "index": _optional(_integer),
    "step": _optional(_integer),
    "value": _scalar,
    "session": _optional(_session_ref),
    "parent_session": _optional(_session_ref),
    "lost": _counts,
    "resources": _optional(_resources),
}


def is_entity_ref(value: Any) -> bool:
    """True for a reference to an entity already in the graph (``{"@entity": IRI}``)."""
    return isinstance(value, dict) and "@entity" in value


def is_missing_ref(value: Any) -> bool:
    """True for a reference to data that could not be read (``{"@data": "missing", …}``)."""
    return isinstance(value, dict) and value.get("@data") == MISSING


def is_data_ref(value: Any) -> bool:
    """True for a typed data reference (``{"@data": "file", "sha256": …}``)."""
    return isinstance(value, dict) and "@data" in value
