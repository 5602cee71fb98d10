"""The tracker service: ``POST /api/v1/batches``.

A batch is validated whole (any problem: 400 with every problem listed, nothing
forwarded), resolved (identifiers assigned, executions linked to their plans, see
:mod:`provml.resolve`) and handed to the manager. The tracker answers 200 only once the
manager has written the batch, so an acknowledged batch is durable in the store.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from flask import Blueprint, Flask, current_app, request
from flask.typing import ResponseReturnValue

from provml.errors import ConfigError, ValidationError
from provml.resolve import resolve_batch
from provml.service import make_app
from provml.wire import parse_batch
from tracker.forward import Forwarder, HttpForwarder

bp = Blueprint("tracker", __name__)


class Tracker:
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def ingest(self, body: bytes) -> dict[str, Any]:
        try:
            batch = parse_batch(body)
        except ValidationError:
            with self._lock:
                self.counts["batches_rejected"] += 1
            raise
        resolved = resolve_batch(batch)
        result = self.forwarder.forward(resolved)
        with self._lock:
            self.counts["batches"] += 1
            self.counts["records"] += len(batch.records)
        return {
            "batch": batch.batch,
            "session": batch.session,
            "records": len(batch.records),
            "triples": result.get("triples"),
        }


def tracker() -> Tracker:
    t: Tracker = current_app.extensions["provml.tracker"]
    return t


@bp.post("/api/v1/batches")
def post_batch() -> ResponseReturnValue:
    if not request.is_json:
        raise ValidationError("send the batch as JSON (Content-Type: application/json)")
    return tracker().ingest(request.get_data(cache=False)), 200


@bp.get("/api/v1/tracker/stats")
def stats() -> ResponseReturnValue:
    return dict(tracker().counts)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The tracker on its own. ``config["manager_url"]`` or ``config["forwarder"]``."""
    config = dict(config or {})
    forwarder = config.pop("forwarder", None)
    if forwarder is None:
        url = config.pop("manager_url", None)
        if not url:
            raise ConfigError("a tracker on its own needs the manager's URL (--manager-url)")
        forwarder = HttpForwarder(url)
    return make_app("provml.tracker", [(bp, "")], {"provml.tracker": Tracker(forwarder)}, config)
