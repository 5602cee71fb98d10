"""The manager as a Flask app: on its own (:func:`create_app`), or installed in the
all-in-one app by :mod:`provml.server` (:func:`install`) — the same path either way."""

from __future__ import annotations

from typing import Any

from flask import Flask

from manager.routes import bp, import_bp
from manager.service import Manager
from manager.store import Store, open_store
from provml.web.app import make_app, mount


def install(app: Flask, store: Store, prefix: str = "") -> Manager:
    """The manager's routes and service in ``app``, writing to ``store``; its batch route
    under ``prefix`` (``/manager`` when a tracker shares the process and takes
    ``/api/v1/batches``); the import route always at the root."""
    manager = Manager(store)
    app.extensions["provml.store"] = store
    app.extensions["provml.manager"] = manager
    mount(app, bp, prefix, service=manager)
    mount(app, import_bp)
    return manager


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The manager on its own. ``config["store"]``: a :class:`Store` or a store URL; other
    keys go to ``app.config`` (``PROVML_*`` settings among them)."""
    config = dict(config or {})
    store = config.pop("store", None) or "memory:"
    app = make_app("provml.manager", config=config)
    install(app, store if isinstance(store, Store) else open_store(store))
    return app
