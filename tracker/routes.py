"""The tracker's routes: ``POST /api/v1/batches``, its statistics, and the ProvLake
client's routes (its ``retrospective-provenance`` records take the batches' path once
converted, :mod:`provml.interop.provlake`; its ``prospective-provenance`` is kept by
:mod:`tracker.provlake`; docs/provlake.md says how to point a ProvLake workflow here)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

from provml.core.errors import ValidationError
from provml.core.wire import MAX_BATCH_BYTES
from provml.interop import openlineage, provlake
from provml.web import audit
from provml.web.app import caller, requires
from provml.web.auth import CAPTURE, READ
from tracker.service import Tracker

bp = Blueprint("tracker", __name__)


def tracker() -> Tracker:
    t: Tracker = current_app.extensions["provml.tracker"]
    return t


@bp.post("/api/v1/batches")
@requires(CAPTURE)
def post_batch() -> ResponseReturnValue:
    audit.note("batch", batch=None, session=None, records=None)
    if not request.is_json:
        raise ValidationError("send the batch as JSON (Content-Type: application/json)")
    answer, status = tracker().ingest(request.get_data(cache=False))
    audit.update(**audit.batch_fields(answer))
    return answer, status


@bp.post("/api/v1/lineage")
@requires(CAPTURE)
def post_openlineage() -> ResponseReturnValue:
    """OpenLineage events (the HTTP transport's default endpoint; ``GET`` on the same
    path is the query service's lineage view). docs/openlineage.md."""
    audit.note("openlineage", events=None)
    if not request.is_json:
        raise ValidationError("send the events as JSON (Content-Type: application/json)")
    body = openlineage.decode_body(request.get_data(cache=False), request.content_encoding,
                                   MAX_BATCH_BYTES)  # fmt: skip
    answer, status = tracker().ingest_openlineage(body)
    audit.update(events=len(answer["events"]))
    return answer, status


# The ProvLake client's routes. It joins its service_url with urljoin, so with
# service_url="http://host:port/provlake/" it calls /provlake/retrospective-provenance;
# a service_url without the trailing slash loses its last segment and calls
# /retrospective-provenance: both are served. See docs/provlake.md.
PROVLAKE_PREFIXES = ("/provlake", "")


def _flag(name: str, default: bool = False) -> bool:
    """A boolean query parameter as the ProvLake client sends it (``True``/``False``)."""
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValidationError(f"query parameter {name} must be True or False, got {value!r}")


@requires(CAPTURE)
def provlake_retrospective() -> ResponseReturnValue:
    """A JSON array of ProvLake records (``?with_validation=`` is checked, ``?db_name=``
    ignored: provml has one store)."""
    audit.note("batch", batch=None, session=None, records=None, via="provlake")
    if not request.is_json:
        raise ValidationError("send the records as JSON (Content-Type: application/json)")
    _flag("with_validation")
    who, admin = caller()
    answer, status = tracker().ingest_provlake(
        request.get_data(cache=False), None if admin else who
    )
    audit.forget()
    for one in answer["batches"]:  # one event per batch taken
        audit.also("batch", **audit.batch_fields(one), via="provlake")
    return answer, status


@requires(CAPTURE)
def provlake_prospective() -> ResponseReturnValue:
    """GET: the specifications kept. POST ``?overwrite=True`` or PUT: keep (replace) a
    dataflow's specification; POST without overwrite: 409 if a different one is kept."""
    store = tracker().prospective
    who, admin = caller()
    if request.method == "GET":  # a token's own dataflows; an admin's: all
        return {"dataflows": store.documents(None if admin else who)}
    audit.note("provlake_prospective", dataflow=None)
    if not request.is_json:
        raise ValidationError("send the specification as JSON (Content-Type: application/json)")
    overwrite = request.method == "PUT" or _flag("overwrite")
    spec, created = store.put(
        provlake.loads(request.get_data(cache=False)), overwrite=overwrite, owner=who, admin=admin
    )
    tracker().count("provlake_prospective_received")
    audit.update(dataflow=spec.name)
    answer = {"dataflow_name": spec.name, "data_transformations": len(spec.transformations),
              "status": "stored"}  # fmt: skip
    return answer, 201 if created else 200


for _prefix in PROVLAKE_PREFIXES:
    _name = _prefix.strip("/") or "root"
    bp.add_url_rule(
        f"{_prefix}/retrospective-provenance",
        endpoint=f"provlake_retrospective_{_name}",
        view_func=provlake_retrospective,
        methods=["POST"],
    )
    bp.add_url_rule(
        f"{_prefix}/prospective-provenance",
        endpoint=f"provlake_prospective_{_name}",
        view_func=provlake_prospective,
        methods=["GET", "POST", "PUT"],
    )


@bp.get("/api/v1/tracker/stats")
@requires(READ)
def stats() -> ResponseReturnValue:
    t = tracker()
    body: dict[str, Any] = dict(t.counts)
    if t.queue is not None:
        body.update(queue_depth=t.queue.depth, queue_bytes=t.queue.bytes)
    return body
