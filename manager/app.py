"""The manager service: ``POST /api/v1/batches`` writes a batch to the store."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue

from manager.service import Manager
from manager.store import Store, open_store
from provml.errors import ValidationError
from provml.service import make_app

bp = Blueprint("manager", __name__)


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
        [(bp, "")],
        {"provml.store": store, "provml.manager": Manager(store)},
        config,
    )
