"""What every provml Flask service shares: JSON errors, health checks, app assembly.

The pure core (vocab, wire, ids, resolve, mapping, config) never imports Flask; this
module and :mod:`provml.cli` are the shell around it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from provml import __version__
from provml.errors import ProvmlError

log = logging.getLogger(__name__)

#: largest request body accepted (bytes)
MAX_CONTENT_LENGTH = 64 * 1024 * 1024


def make_app(
    name: str,
    blueprints: Iterable[tuple[Blueprint, str]],
    extensions: dict[str, Any],
    config: dict[str, Any] | None = None,
) -> Flask:
    """A Flask app with ``blueprints`` mounted at their prefixes and ``extensions`` set."""
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(config or {})
    app.extensions.update(extensions)
    components = []
    for bp, prefix in blueprints:
        app.register_blueprint(bp, url_prefix=prefix or None)
        component = bp.name.partition("_")[0]  # "manager_import" is part of the manager
        if component not in components:
            components.append(component)
    app.register_error_handler(ProvmlError, _provml_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """Alive: the process answers."""
        return {"status": "ok", "version": __version__, "components": components}

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """Ready: every component can do its work (503 while shutting down)."""
        tracker = app.extensions.get("provml.tracker")
        ready = tracker is None or tracker.ready()
        return {"ready": ready, "components": components}, 200 if ready else 503

    @app.get("/metrics")
    def metrics() -> ResponseReturnValue:
        """Prometheus text exposition format 0.0.4."""
        lines = []
        for key in ("provml.tracker", "provml.manager"):
            component = app.extensions.get(key)
            if component is None:
                continue
            for name, kind, value in component.metrics():
                lines += [f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return "\n".join(lines) + "\n", 200, {"Content-Type": "text/plain; version=0.0.4"}

    return app


def _provml_error(exc: ProvmlError) -> ResponseReturnValue:
    return jsonify(exc.to_json()), exc.status


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    body = {"error": (exc.name or "error").lower().replace(" ", "_"), "message": exc.description}
    response = jsonify(body)
    response.status_code = code
    headers = dict(exc.get_headers())
    for key in ("Allow", "Retry-After"):
        if key in headers:
            response.headers[key] = headers[key]
    return response


def _unexpected_error(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error")
    return jsonify({"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"}), 500
