"""The query service as a Flask app: on its own (:func:`create_app`), or installed in
the all-in-one app by :mod:`provml.server` (:func:`install`) — the same path either way."""

from __future__ import annotations

from typing import Any

from flask import Flask

from manager.store import Store, open_store
from provml.web.app import make_app, mount
from query import web
from query.limits import Limits, Runner
from query.routes import bp


def install(app: Flask, store: Store) -> Runner:
    """The query routes in ``app``, reading ``store`` through a runner with the app's
    limits (``PROVML_QUERY_*``); :func:`provml.server.close_app` closes it."""
    runner = Runner(Limits.of(app.config))
    app.extensions["provml.store"] = store
    app.extensions["provml.query_runner"] = runner
    mount(app, bp)
    web.install(app)
    return runner


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The query service on its own. ``config["store"]``: a :class:`Store` or a URL; other
    keys go to ``app.config`` (``PROVML_*`` settings among them)."""
    config = dict(config or {})
    store = config.pop("store", None) or "memory:"
    app = make_app("provml.query", config=config)
    install(app, store if isinstance(store, Store) else open_store(store))
    return app
