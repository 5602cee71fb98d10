"""The manager service: ``POST /api/v1/batches`` writes a batch to the store."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue

from manager.service import Manager
from manager.store import Store, open_store
from provml.core import config as settings
from provml.core.errors import ValidationError
from provml.core.wire import TooLarge
from provml.web.app import make_app

bp = Blueprint("manager", __name__)
#: the import route, at the root even when the manager shares a process with the tracker
#: (whose /api/v1/batches moves the manager's own routes under /manager)
import_bp = Blueprint("manager_import", __name__)


def manager() -> Manager:
    m: Manager = current_app.extensions["provml.manager"]
    return m


@bp.post("/api/v1/batches")
def post_batch() -> ResponseReturnValue:
    try:
        obj = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not valid JSON (UTF-8): {exc}") from None
    return manager().apply_json(obj), 200


@import_bp.post("/api/v1/import")
def import_document() -> ResponseReturnValue:
    """Import a W3C PROV document (PROV-JSON, PROV-XML, PROV-N, Turtle, TriG, N-Triples,
    N-Quads): ``?format=`` (else guessed from the content type) and ``?base=`` (a base
    IRI for documents with relative IRIs). The document lands whole or not at all."""
    from provml import interop

    fmt = request.args.get("format") or interop.guess_format(media_type=request.mimetype)
    if not fmt:
        raise ValidationError(
            "give the document's format as ?format= (one of "
            f"{', '.join(interop.IMPORT_FORMATS)}) or a known Content-Type"
        )
    limit = settings.IMPORT_MAX_BYTES.get()
    size = request.content_length
    if size is None or size > limit:  # before reading it: parsing is what costs
        raise TooLarge(
            f"an imported document may be {limit} bytes (PROVML_IMPORT_MAX_BYTES), this one "
            f"is {'of unknown length' if size is None else f'{size} bytes'}: parsing PROV "
            "costs about 4 s and 19 MB per MB of document; split it, or raise the limit on "
            "the manager"
        )
    return manager().import_document(request.get_data(cache=False), fmt, request.args.get("base"))


@bp.get("/api/v1/stats")
def stats() -> ResponseReturnValue:
    m = manager()
    return {"store": m.store.describe(), "quads": m.store.count(), **m.counts}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The manager on its own. ``config["store"]``: a :class:`Store` or a store URL."""
    config = dict(config or {})
    store = config.pop("store", None) or "memory:"
    if not isinstance(store, Store):
        store = open_store(store)
    return make_app(
        "provml.manager",
        [(bp, ""), (import_bp, "")],
        {"provml.store": store, "provml.manager": Manager(store)},
        config,
    )
