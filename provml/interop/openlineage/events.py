"""OpenLineage events: the JSON checked for what the mapping relies on.

An event is a RunEvent (``run`` and ``job``), a JobEvent (``job``, no ``run``) or a
DatasetEvent (``dataset``), of spec 1-0-x or 2-0-x (``schemaURL``). What the mapping
reads is checked (names, times, the event type, the facets it maps); a problem refuses
the whole event with every problem listed (:class:`~provml.core.errors.ValidationError`,
400). Facets provml does not know, and members it does not read, are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from provml.core.errors import ValidationError
from provml.core.wire import json_type

#: the event types of the spec (2-0-x; 1-0-x has the same); OTHER changes no state
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
#: spec versions understood (the major part of ``…/spec/<major>-<minor>-<patch>/…``)
SPEC_MAJORS = frozenset({1, 2})
#: characters of a name (job, namespace, dataset, field) or of a runId
MAX_NAME = 4096
MAX_PROBLEMS = 50
#: events at most in one request (a JSON array of events)
MAX_EVENTS = 1000

_SPEC = re.compile(r"/spec/(\d+)-(\d+)-(\d+)/")
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)
    #: inputFacets of an input, outputFacets of an output
    io_facets: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """One checked event. ``kind``: ``run``, ``job`` or ``dataset``."""

    kind: str
    time: float
    producer: str
    event_type: str | None = None
    run_id: str | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)
    job: tuple[str, str] | None = None
    job_facets: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    dataset: Dataset | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """32 hex digits naming the event by its content (a replay has the same key)."""
        import hashlib

        from provml.core.ids import canonical_json

        return hashlib.sha256(canonical_json(self.raw)).hexdigest()[:32]


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A request body as sent, or gunzipped (the OpenLineage HTTP transport's
    ``compression: gzip``), never more than ``limit`` + 1 bytes of it."""
    if not encoding or encoding == "identity":
        return body
    if encoding != "gzip":
        raise ValidationError(f"Content-Encoding {encoding!r} is not understood (gzip is)")
    import zlib

    try:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValidationError(f"the body is not valid gzip: {exc}") from None
    return out


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not valid JSON (UTF-8): {exc}") from None


def parse_events(body: bytes) -> list[Event]:
    """A request body: one event (a JSON object) or a JSON array of events; every event
    is checked before any is taken."""
    doc = loads(body)
    many = isinstance(doc, list)
    items = doc if many else [doc]
    if many and not items:
        raise ValidationError("an empty array of OpenLineage events")
    if len(items) > MAX_EVENTS:
        raise ValidationError(f"{len(items)} events in one request, over {MAX_EVENTS}")
    problems: list[str] = []
    events: list[Event] = []
    for i, item in enumerate(items):
        p = _Problems(f"[{i}]" if many else "")
        event = _event(item, p)
        problems += p.items
        if event is not None:
            events.append(event)
    if problems:
        raise ValidationError(
            f"invalid OpenLineage event: {problems[0]}", details=problems[:MAX_PROBLEMS]
        )
    return events


class _Problems:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        where = f"{self.prefix}.{path}" if self.prefix and path else (self.prefix or path)
        self.items.append(f"{where}: {message}" if where else message)


def _name(obj: dict[str, Any], key: str, path: str, p: _Problems) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        p.add(f"{path}{key}", f"required: a non-empty string, got {json_type(value)}")
        return ""
    if len(value) > MAX_NAME:
        p.add(f"{path}{key}", f"{len(value)} characters, over {MAX_NAME}")
    return value


def _object(obj: dict[str, Any], key: str, path: str, p: _Problems) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add(f"{path}{key}", f"must be an object, got {json_type(value)}")
        return {}
    return value


def parse_time(text: Any) -> float | None:
    """An RFC 3339 date-time with its offset, as seconds since the epoch; None if not."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp()
    try:  # a time the mapping can write (year 1 at +01:00 is year 0 in UTC: not one)
        datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return seconds


def _event(doc: Any, p: _Problems) -> Event | None:
    if not isinstance(doc, dict):
        p.add("", f"an OpenLineage event is a JSON object, got {json_type(doc)}")
        return None
    time = parse_time(doc.get("eventTime"))
    if time is None:
        p.add("eventTime", "required: a date-time with its offset (2024-05-01T12:00:00.000Z)")
    producer = _name(doc, "producer", "", p)
    schema = doc.get("schemaURL")
    if not isinstance(schema, str) or not schema:
        p.add("schemaURL", f"required: the URL of the event's schema, got {json_type(schema)}")
    else:
        version = _SPEC.search(schema)
        if version is not None and int(version.group(1)) not in SPEC_MAJORS:
            p.add("schemaURL", f"spec {version.group(1)}-x-x is not understood (1-0-x, 2-0-x)")
    if "dataset" in doc and "run" not in doc:
        kind = "dataset"
    elif "run" in doc or "eventType" in doc:
        kind = "run"
    else:
        kind = "job"
    event_type = None
    run_id, run_facets = None, {}
    if kind == "run":
        event_type = doc.get("eventType")
        if event_type is not None and event_type not in EVENT_TYPES:
            p.add("eventType", f"must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
        run = doc.get("run")
        if not isinstance(run, dict):
            p.add("run", f"required: an object with a runId, got {json_type(run)}")
        else:
            run_id = _name(run, "runId", "run.", p)
            run_facets = _facets(run, "run.", p)
            _check_run_facets(run_facets, p)
    job, job_facets = None, {}
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    dataset = None
    if kind == "dataset":
        dataset = _dataset(doc.get("dataset"), "dataset", None, p)
    else:
        raw_job = doc.get("job")
        if not isinstance(raw_job, dict):
            p.add(
                "job", f"required: an object with a namespace and a name, got {json_type(raw_job)}"
            )
        else:
            job = (_name(raw_job, "namespace", "job.", p), _name(raw_job, "name", "job.", p))
            job_facets = _facets(raw_job, "job.", p)
            _check_job_facets(job_facets, p)
        inputs = _datasets(doc, "inputs", "inputFacets", p)
        outputs = _datasets(doc, "outputs", "outputFacets", p)
    if p.items:
        return None
    assert time is not None
    return Event(kind, time, producer, event_type, run_id, run_facets, job, job_facets,
                 inputs, outputs, dataset, doc)  # fmt: skip


def _facets(obj: dict[str, Any], path: str, p: _Problems, key: str = "facets") -> dict[str, Any]:
    """The facets of a node, each an object (a facet marked ``_deleted`` is left out)."""
    facets = _object(obj, key, path, p)
    out = {}
    for name, facet in facets.items():
        if not isinstance(facet, dict):
            p.add(f"{path}{key}.{name}", f"a facet is an object, got {json_type(facet)}")
        elif facet.get("_deleted") is not True:
            out[name] = facet
    return out


def _datasets(doc: dict[str, Any], key: str, io_key: str, p: _Problems) -> tuple[Dataset, ...]:
    items = doc.get(key)
    if items is None:
        return ()
    if not isinstance(items, list):
        p.add(key, f"must be an array of datasets, got {json_type(items)}")
        return ()
    out = [_dataset(item, f"{key}[{i}]", io_key, p) for i, item in enumerate(items)]
    return tuple(d for d in out if d is not None)


def _dataset(item: Any, path: str, io_key: str | None, p: _Problems) -> Dataset | None:
    if not isinstance(item, dict):
        p.add(path, f"a dataset is an object with a namespace and a name, got {json_type(item)}")
        return None
    before = len(p.items)
    namespace = _name(item, "namespace", f"{path}.", p)
    name = _name(item, "name", f"{path}.", p)
    facets = _facets(item, f"{path}.", p)
    io = _facets(item, f"{path}.", p, io_key) if io_key else {}
    _check_dataset_facets(facets, f"{path}.facets.", p)
    if len(p.items) > before:
        return None
    return Dataset(namespace, name, facets, io)


# The facets the mapping reads: their shape is checked, so that a wrong one is refused
# rather than half read.


def _check_run_facets(facets: dict[str, Any], p: _Problems) -> None:
    parent = facets.get("parent")
    if parent is not None:
        run, job = parent.get("run"), parent.get("job")
        if not isinstance(run, dict) or not isinstance(job, dict):
            p.add("run.facets.parent", "needs run {runId} and job {namespace, name}")
        else:
            _name(run, "runId", "run.facets.parent.run.", p)
            _name(job, "namespace", "run.facets.parent.job.", p)
            _name(job, "name", "run.facets.parent.job.", p)
    error = facets.get("errorMessage")
    if error is not None and not isinstance(error.get("message"), str):
        p.add("run.facets.errorMessage.message", "required: a string")


def _check_job_facets(facets: dict[str, Any], p: _Problems) -> None:
    sql = facets.get("sql")
    if sql is not None and not isinstance(sql.get("query"), str):
        p.add("job.facets.sql.query", "required: a string")
    _check_owners(facets.get("ownership"), "job.facets.ownership", p)
    location = facets.get("sourceCodeLocation")
    if location is not None:
        for key in ("type", "url", "repoUrl", "path", "version", "tag", "branch"):
            if location.get(key) is not None and not isinstance(location[key], str):
                p.add(f"job.facets.sourceCodeLocation.{key}", "must be a string")


def _check_owners(facet: Any, path: str, p: _Problems) -> None:
    if facet is None:
        return
    owners = facet.get("owners")
    if not isinstance(owners, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) and o["name"] for o in owners
    ):
        p.add(f"{path}.owners", "required: an array of {name, type?}")


def _check_dataset_facets(facets: dict[str, Any], path: str, p: _Problems) -> None:
    schema = facets.get("schema")
    if schema is not None:
        _check_fields(schema.get("fields"), f"{path}schema.fields", p, 0)
    lineage = facets.get("columnLineage")
    if lineage is not None:
        fields = lineage.get("fields")
        if not isinstance(fields, dict):
            p.add(f"{path}columnLineage.fields", "required: an object of output fields")
        else:
            for out, spec in fields.items():
                where = f"{path}columnLineage.fields.{out}"
                if not isinstance(spec, dict):
                    p.add(where, "must be an object with inputFields")
                    continue
                _check_input_fields(spec.get("inputFields"), f"{where}.inputFields", p)
        if lineage.get("dataset") is not None:
            _check_input_fields(lineage.get("dataset"), f"{path}columnLineage.dataset", p)
    _check_owners(facets.get("ownership"), f"{path}ownership", p)
    version = facets.get("version")
    if version is not None and not isinstance(version.get("datasetVersion"), str):
        p.add(f"{path}version.datasetVersion", "required: a string")
    source = facets.get("dataSource")
    if source is not None and source.get("uri") is not None and not isinstance(source["uri"], str):
        p.add(f"{path}dataSource.uri", "must be a string")
    content = facets.get("contentHash")
    if content is not None and not re.fullmatch(r"[0-9a-f]{64}", str(content.get("sha256"))):
        p.add(f"{path}contentHash.sha256", "required: 64 lowercase hex digits")


def _check_fields(fields: Any, path: str, p: _Problems, depth: int) -> None:
    if fields is None:
        return
    if not isinstance(fields, list) or depth > 16:
        p.add(path, "must be an array of {name, type?, fields?}")
        return
    for i, f in enumerate(fields):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            p.add(f"{path}[{i}]", "a field is an object with a name")
            continue
        if f.get("type") is not None and not isinstance(f["type"], str):
            p.add(f"{path}[{i}].type", "must be a string")
        _check_fields(f.get("fields"), f"{path}[{i}].fields", p, depth + 1)


def _check_input_fields(items: Any, path: str, p: _Problems) -> None:
    if not isinstance(items, list):
        p.add(path, "must be an array of {namespace, name, field}")
        return
    for i, f in enumerate(items):
        if not isinstance(f, dict):
            p.add(f"{path}[{i}]", "must be an object with namespace, name and field")
            continue
        for key in ("namespace", "name", "field"):
            _name(f, key, f"{path}[{i}].", p)
