"""The tracker as a Flask app: on its own (:func:`create_app`), or installed in the
all-in-one app by :mod:`provml.server` (:func:`install`) — the same path either way."""

from __future__ import annotations

from typing import Any

from flask import Flask

from provml.core import config as settings
from provml.core.errors import ConfigError
from provml.web.app import make_app, mount
from tracker.forward import Forwarder, HttpForwarder
from tracker.queue import DurableQueue
from tracker.routes import bp
from tracker.service import Tracker


def install(app: Flask, forwarder: Forwarder, queue_dir: str | None = None) -> Tracker:
    """The tracker's routes and service in ``app``, with the app's settings
    (``PROVML_QUEUE_MAX_BYTES``, ``PROVML_ACK_WAIT``); without ``queue_dir``, batches
    are forwarded synchronously."""
    max_bytes = settings.QUEUE_MAX_BYTES.of(app.config)
    queue = DurableQueue(queue_dir, max_bytes=max_bytes) if queue_dir else None
    tracker = Tracker(forwarder, queue, ack_wait=settings.ACK_WAIT.of(app.config))
    app.extensions["provml.tracker"] = tracker
    mount(app, bp, service=tracker)
    return tracker


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The tracker on its own: ``config["manager_url"]`` (and ``"manager_token"``), or
    ``"forwarder"``, and ``config["queue_dir"]`` (no queue: batches are forwarded
    synchronously); other keys go to ``app.config`` (``PROVML_*`` settings among them)."""
    config = dict(config or {})
    forwarder = config.pop("forwarder", None)
    if forwarder is None:
        url = config.pop("manager_url", None)
        if not url:
            raise ConfigError("a tracker on its own needs the manager's URL (--manager-url)")
        forwarder = HttpForwarder(url, token=config.pop("manager_token", None))
    queue_dir = config.pop("queue_dir", None)
    app = make_app("provml.tracker", config=config)
    install(app, forwarder, queue_dir)
    return app
