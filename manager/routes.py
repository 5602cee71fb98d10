"""The manager's routes: ``POST /api/v1/batches`` writes a batch to the store,
``POST /api/v1/import`` a W3C PROV document."""

from __future__ import annotations

import orjson
from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue

from manager.service import Manager
from provml import interop
from provml.core import config as settings
from provml.core.errors import ValidationError
from provml.core.wire import TooLarge
from provml.web import audit
from provml.web.app import requires
from provml.web.auth import ADMIN, CAPTURE, READ

bp = Blueprint("manager", __name__)
#: the import route, at the root even when the manager shares a process with the tracker
#: (whose /api/v1/batches moves the manager's own routes under /manager)
import_bp = Blueprint("manager_import", __name__)


def manager() -> Manager:
    m: Manager = current_app.extensions["provml.manager"]
    return m


@bp.post("/api/v1/batches")
@requires(CAPTURE)
def post_batch() -> ResponseReturnValue:
    audit.note("batch", batch=None, session=None, records=None)
    try:
        obj = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not valid JSON (UTF-8): {exc}") from None
    if isinstance(obj, list):  # several resolved batches (a tracker's group): one write
        answers = manager().apply_many_json(obj)
        audit.update(batches=len(answers), records=sum(a["records"] for a in answers))
        return {"batches": answers}, 200
    answer = manager().apply_json(obj)
    audit.update(**audit.batch_fields(answer))
    return answer, 200


@import_bp.post("/api/v1/import")
@requires(ADMIN)  # a PROV document may hold any triple in any graph: more than a batch
def import_document() -> ResponseReturnValue:
    """Import a W3C PROV document (PROV-JSON, PROV-XML, PROV-N, Turtle, TriG, N-Triples,
    N-Quads): ``?format=`` (else guessed from the content type) and ``?base=`` (a base
    IRI for documents with relative IRIs). The document lands whole or not at all."""
    audit.note("import", format=request.args.get("format"), bytes=request.content_length,
               triples=None)  # fmt: skip
    fmt = request.args.get("format") or interop.guess_format(media_type=request.mimetype)
    if not fmt:
        raise ValidationError(
            "give the document's format as ?format= (one of "
            f"{', '.join(interop.IMPORT_FORMATS)}) or a known Content-Type"
        )
    limit = settings.IMPORT_MAX_BYTES.of(current_app.config)
    size = request.content_length
    if size is None or size > limit:  # before reading it: parsing is what costs
        raise TooLarge(
            f"an imported document may be {limit} bytes (PROVML_IMPORT_MAX_BYTES), this one "
            f"is {'of unknown length' if size is None else f'{size} bytes'}: parsing PROV "
            "costs about 4 s and 19 MB per MB of document; split it, or raise the limit on "
            "the manager"
        )
    answer = manager().import_document(request.get_data(cache=False), fmt, request.args.get("base"))
    audit.update(format=request.args.get("format") or answer.get("format"),
                 triples=answer.get("triples"))  # fmt: skip
    return answer


@bp.get("/api/v1/stats")
@requires(READ)
def stats() -> ResponseReturnValue:
    m = manager()
    body = {"store": m.store.describe(), "quads": m.store.count(), **m.counts}
    consumer = current_app.extensions.get("provml.broker_consumer")  # manager.broker
    if consumer is not None:
        body["broker"] = {"consumer": consumer.consumer, "alive": consumer.alive(),
                          **consumer.counts}  # fmt: skip
    return body
