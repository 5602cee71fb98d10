"""What every provml Flask service shares: JSON errors, health checks, app assembly,
access control and the audit log.

The pure core (vocab, wire, ids, resolve, mapping, config) never imports Flask; this
module and :mod:`provml.cli` are the shell around it.

Access control (docs/security.md) is enforced here, for every blueprint, by a
``before_request`` hook keyed on the route's endpoint (:data:`ENDPOINT_SCOPES`): when
the app has tokens (``app.extensions["provml.web.auth"]``, a :class:`provml.web.auth.Tokens`),
every route but ``/healthz`` and ``/readyz`` needs a token with the route's scope; a
route nobody listed needs ``admin``. An ``after_request`` hook writes the audit log
(``app.extensions["provml.web.audit"]``, a :class:`provml.web.audit.AuditLog`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from provml import __version__
from provml.core.errors import ProvmlError
from provml.web.auth import ADMIN, CAPTURE, READ, credentials

log = logging.getLogger(__name__)

#: largest request body accepted (bytes)
MAX_CONTENT_LENGTH = 64 * 1024 * 1024

#: who a request is when the service has no tokens
ANONYMOUS = "anonymous"
#: the scope each endpoint needs (None: open to anyone); then each blueprint's default.
#: An endpoint in neither needs ``admin``: a new route is closed until someone says.
ENDPOINT_SCOPES: dict[str, str | None] = {
    "healthz": None,
    "readyz": None,
    "metrics": READ,
    "tracker.post_batch": CAPTURE,
    "tracker.stats": READ,
    "manager.post_batch": CAPTURE,
    "manager.stats": READ,
    # a PROV document may hold any triple in any graph: more than a capture batch
    "manager_import.import_document": ADMIN,
    # the Graph Store Protocol's read side; its writes are refused (405) to readers, so
    # that a reader learns the endpoint is read-only rather than that a scope is missing
    "query.graph_store_read": READ,
    "query.graph_store_write": READ,
    "query.sparql_write": READ,
}
BLUEPRINT_SCOPES: dict[str, str] = {
    "query": READ,  # /sparql, /store, /api/v1/questions, models, datasets, export
}
#: the ProvLake client's routes (tracker.provlake_*) are capture routes
_PROVLAKE = "tracker.provlake_"


def required_scope(endpoint: str) -> str | None:
    """The scope a request to ``endpoint`` needs; None if it is open."""
    if endpoint in ENDPOINT_SCOPES:
        return ENDPOINT_SCOPES[endpoint]
    if endpoint.startswith(_PROVLAKE):
        return CAPTURE
    blueprint, dot, _ = endpoint.partition(".")
    if dot and blueprint in BLUEPRINT_SCOPES:
        return BLUEPRINT_SCOPES[blueprint]
    return ADMIN


def make_app(
    name: str,
    blueprints: Iterable[tuple[Blueprint, str]],
    extensions: dict[str, Any],
    config: dict[str, Any] | None = None,
) -> Flask:
    """A Flask app with ``blueprints`` mounted at their prefixes and ``extensions`` set."""
    app = Flask(name)
    from provml.core import config as settings

    # larger bodies: 413 (PROVML_MAX_REQUEST_BYTES)
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_REQUEST_BYTES.get()
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
    app.before_request(_authorize)
    app.after_request(_audit)

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
    message = exc.description
    if code == 413:  # Flask's words say nothing of the limits or what to do
        from provml.core import config as settings
        from provml.core.wire import request_too_large

        message = request_too_large(settings.MAX_REQUEST_BYTES.get())
    body = {"error": (exc.name or "error").lower().replace(" ", "_"), "message": message}
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


# --- access control ------------------------------------------------------------------


def _authorize() -> ResponseReturnValue | None:
    """Before every request: the caller's token and the route's scope (no tokens
    configured: everyone is :data:`ANONYMOUS` and may do everything)."""
    g.provml_who = ANONYMOUS
    tokens = current_app.extensions.get("provml.web.auth")
    g.provml_admin = not tokens  # without tokens everyone may do everything
    if not tokens:
        return None
    endpoint = request.endpoint  # None when no route matched (404, 405)
    scope = required_scope(endpoint) if endpoint else None
    if endpoint and scope is None:
        return None
    token = credentials(request.headers.get("Authorization"))
    if token is None:
        return _denied(
            401,
            "unauthorized",
            "this service needs an access token: send Authorization: Bearer <token>",
            'Bearer realm="provml"',
        )
    identity = tokens.check(token)
    del token
    if identity is None:
        return _denied(
            401,
            "invalid_token",
            "the access token is not valid",
            'Bearer realm="provml", error="invalid_token"',
        )
    g.provml_who = identity.name
    g.provml_admin = identity.allows("admin")
    if scope is None or identity.allows(scope):  # no route: let routing say 404 or 405
        return None
    return _denied(
        403,
        "insufficient_scope",
        f"the token {identity.name!r} does not have the {scope} scope this route needs",
        f'Bearer realm="provml", error="insufficient_scope", scope="{scope}"',
        scope=scope,
    )


def _denied(
    status: int, code: str, message: str, challenge: str, scope: str | None = None
) -> Response:
    g.provml_denied = {"reason": code} | ({"scope": scope} if scope else {})
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    return response


# --- the audit log -------------------------------------------------------------------


def _audit(response: Response) -> Response:
    """After every request: its audit event, if it makes one (never failing it)."""
    audit_log = current_app.extensions.get("provml.web.audit")
    if audit_log is not None:
        try:
            _audit_event(audit_log, response)
        except Exception:
            log.exception("cannot write an audit event")
    return response


def _audit_event(audit_log: Any, response: Response) -> None:
    from provml.web.audit import truncate

    endpoint = request.endpoint or ""
    path = truncate(request.path, 500)[0]
    who = {"who": g.get("provml_who", ANONYMOUS), "remote": request.remote_addr,
           "method": request.method, "path": path, "status": response.status_code}  # fmt: skip
    denied = g.get("provml_denied")
    if denied is not None:
        audit_log.write("denied", **who, **denied)
        return
    failed = response.status_code >= 400
    body: dict[str, Any] = {}
    if failed or not endpoint.startswith("query."):
        parsed = response.get_json(silent=True) if response.is_json else None
        body = parsed if isinstance(parsed, dict) else {}
    if failed:
        who["error"] = body.get("error")

    def batch(one: dict[str, Any], **extra: Any) -> None:
        audit_log.write("batch", **who, batch=one.get("batch"), session=one.get("session"),
                        records=one.get("records"), **extra)  # fmt: skip

    if endpoint in ("tracker.post_batch", "manager.post_batch"):
        batch(body)
    elif endpoint.startswith(_PROVLAKE + "retrospective"):
        answers = body.get("batches") if not failed else None
        for one in answers if isinstance(answers, list) else [{}]:
            batch(one if isinstance(one, dict) else {}, via="provlake")
    elif endpoint.startswith(_PROVLAKE + "prospective") and request.method != "GET":
        audit_log.write("provlake_prospective", **who, dataflow=body.get("dataflow_name"))
    elif endpoint == "query.graph_store_read" or (endpoint == "query.sparql" and _graph_read()):
        args = request.args
        graph = truncate(args["graph"], 500)[0] if "graph" in args else None
        audit_log.write("graph", **who, graph=graph, default="default" in args)
    elif endpoint == "query.sparql" and request.method != "POST" and "query" not in request.args:
        audit_log.write("service_description", **who)
    elif endpoint == "query.sparql":
        text, cut = truncate(_query_text() or "")
        audit_log.write("query", **who, query=text, truncated=cut)
    elif endpoint == "query.ask":
        params = {k: truncate(v, 500)[0] for k, v in request.args.items()}
        name = (request.view_args or {}).get("name")
        audit_log.write("question", **who, question=name, params=params)
    elif endpoint in ("query.model", "query.dataset"):
        kind = endpoint.partition(".")[2]
        ref = next(iter((request.view_args or {}).values()), None)
        audit_log.write("record", **who, kind=kind, ref=truncate(str(ref), 500)[0])
    elif endpoint == "query.export":
        args = request.args
        audit_log.write("export", **who, scope=args.get("scope", "all"),
                        id=truncate(args.get("id") or "", 500)[0] or None,
                        format=args.get("format", "turtle"))  # fmt: skip
    elif endpoint == "manager_import.import_document":
        audit_log.write("import", **who, format=request.args.get("format") or body.get("format"),
                        bytes=request.content_length, triples=body.get("triples"))  # fmt: skip


def _graph_read() -> bool:
    """Whether a request to /sparql reads a graph (the Graph Store Protocol's
    ``?graph=``/``?default``, without a query) rather than running a query."""
    args = request.args
    return "query" not in args and ("graph" in args or "default" in args)


def _query_text() -> str | None:
    """The SPARQL query of this request, as /sparql read it (its body, cached)."""
    if request.method == "GET":
        return request.args.get("query")
    if request.mimetype not in ("application/sparql-query", "application/x-www-form-urlencoded"):
        return None
    try:
        body = request.get_data().decode("utf-8", "replace")
    except HTTPException:  # too large, or cut off: no text to keep
        return None
    if request.mimetype == "application/sparql-query":
        return body
    values = parse_qs(body).get("query")
    return values[0] if values else None
