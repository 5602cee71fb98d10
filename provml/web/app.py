"""What every provml Flask service shares: the app factory, JSON errors, health checks,
access control and the audit log. It knows no service's routes: each view says the scope
it needs (:func:`requires`) and the audit event it makes (:func:`audited`,
:func:`provml.web.audit.note`).

Access control (docs/security.md): when the app has tokens
(``app.extensions["provml.auth"]``, a :class:`provml.web.auth.Tokens`), a
``before_request`` hook checks the caller's token against the scope of the view the
request goes to; a view that did not say needs ``admin`` (a new route is closed until
someone says). An ``after_request`` hook writes the audit event the view made
(``app.extensions["provml.audit"]``, a :class:`provml.web.audit.AuditLog`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from provml import __version__
from provml.core import config as settings
from provml.core.errors import ProvmlError
from provml.web import audit
from provml.web.auth import ADMIN, READ, credentials

log = logging.getLogger(__name__)

#: who a request is when the service has no tokens
ANONYMOUS = "anonymous"
#: the attribute :func:`requires` sets on a view; a view without it needs ``admin``
_SCOPE = "provml_scope"
#: a view open to anyone (the health checks)
OPEN = None
#: the cookie the browser's sign-in page sets (query.web.signin): a token, sent back by
#: the browser and taken in place of an Authorization header for reading (GET and HEAD
#: of a ``read`` route) only; HttpOnly, SameSite=Strict
SESSION_COOKIE = "provml_session"
#: the attribute :func:`page` sets: a browser's page, sent to sign in when it has no token
_PAGE = "provml_page"
#: ``app.extensions`` key: the endpoint of the sign-in page, if the app has one
SIGNIN = "provml.signin"

V = TypeVar("V", bound=Callable[..., Any])


def requires(scope: str | None) -> Callable[[V], V]:
    """Mark a view as needing a token with ``scope`` (None: open to anyone)."""

    def mark(view: V) -> V:
        setattr(view, _SCOPE, scope)
        return view

    return mark


def page(view: V) -> V:
    """Mark a view as one of the browser's pages: it needs ``read``, and a request without
    a token is sent to the sign-in page (when the app has one) rather than answered 401."""
    setattr(view, _SCOPE, READ)
    setattr(view, _PAGE, True)
    return view


def required_scope(endpoint: str) -> str | None:
    """The scope a request to ``endpoint`` needs (the current app's views); None if open."""
    view = current_app.view_functions.get(endpoint)
    return getattr(view, _SCOPE, ADMIN)


def caller() -> tuple[str, bool]:
    """Who makes this request (a token's name, or ``anonymous``) and whether they are an
    admin (everyone is, on a service without tokens)."""
    return g.get("provml_who", ANONYMOUS), bool(g.get("provml_admin", True))


def make_app(name: str, config: dict[str, Any] | None = None) -> Flask:
    """A Flask app with provml's errors, access control, audit and health checks, and no
    routes yet (each service's ``install`` mounts its own, :func:`mount`). The server
    settings are read here, once, into ``app.config``; ``config`` overrides them."""
    app = Flask(name)
    app.config.update(settings.load(settings.SERVER))
    app.config.update(config or {})
    # larger bodies: 413 (PROVML_MAX_REQUEST_BYTES)
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_REQUEST_BYTES.of(app.config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    components: dict[str, Any] = {}
    app.extensions["provml.components"] = components
    app.register_error_handler(ProvmlError, _provml_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_authorize)
    app.after_request(audit.write_event)

    @app.get("/healthz")
    @requires(OPEN)
    def healthz() -> ResponseReturnValue:
        """Alive: the process answers."""
        return {"status": "ok", "version": __version__, "components": list(components)}

    @app.get("/readyz")
    @requires(OPEN)
    def readyz() -> ResponseReturnValue:
        """Ready: every component can do its work (503 while shutting down)."""
        ready = all(c.ready() for c in components.values() if hasattr(c, "ready"))
        return {"ready": ready, "components": list(components)}, 200 if ready else 503

    @app.get("/metrics")
    @requires(READ)
    def metrics() -> ResponseReturnValue:
        """Prometheus text exposition format 0.0.4."""
        lines = []
        for component in components.values():
            for name, kind, value in component.metrics() if hasattr(component, "metrics") else ():
                lines += [f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return "\n".join(lines) + "\n", 200, {"Content-Type": "text/plain; version=0.0.4"}

    return app


def mount(app: Flask, bp: Blueprint, prefix: str = "", service: Any = None) -> None:
    """Register a service's blueprint at ``prefix``; its component (the blueprint's name
    up to ``_``: ``manager_import`` is the manager) is listed by ``/healthz``, and
    ``service``, if given, answers ``/readyz`` (``ready()``) and ``/metrics``
    (``metrics()``: ``(name, type, value)`` triples)."""
    app.register_blueprint(bp, url_prefix=prefix or None)
    components = app.extensions["provml.components"]
    component = bp.name.partition("_")[0]
    if service is not None or component not in components:
        components[component] = service if service is not None else components.get(component)


def _provml_error(exc: ProvmlError) -> ResponseReturnValue:
    return jsonify(exc.to_json()), exc.status, exc.headers()


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
    tokens = current_app.extensions.get("provml.auth")
    g.provml_admin = not tokens  # without tokens everyone may do everything
    if not tokens:
        return None
    endpoint = request.endpoint  # None when no route matched (404, 405)
    scope = required_scope(endpoint) if endpoint else None
    if endpoint and scope is None:
        return None
    header = request.headers.get("Authorization")
    token = credentials(header)
    # the sign-in cookie stands for a token only where a page may read: GET or HEAD of a
    # read route, and never beside an Authorization header
    by_cookie = header is None and scope == READ and request.method in ("GET", "HEAD")
    if by_cookie:
        token = request.cookies.get(SESSION_COOKIE) or None
    if token is None:
        if endpoint and _is_page(endpoint):
            return _to_signin("unauthorized", scope)
        return _denied(
            401,
            "unauthorized",
            "this service needs an access token: send Authorization: Bearer <token>",
            'Bearer realm="provml"',
        )
    identity = tokens.check(token)
    del token
    if identity is not None and by_cookie and not identity.allows(READ):
        identity = None  # a cookie holding a token that may not read: as no token
    if identity is None:
        if by_cookie and endpoint and _is_page(endpoint):
            return _to_signin("invalid_token", scope)
        return _denied(
            401,
            "invalid_token",
            "the access token is not valid",
            'Bearer realm="provml", error="invalid_token"',
        )
    g.provml_who = identity.name
    g.provml_admin = identity.allows("admin") and not by_cookie
    if scope is None or identity.allows(scope):  # no route: let routing say 404 or 405
        return None
    return _denied(
        403,
        "insufficient_scope",
        f"the token {identity.name!r} does not have the {scope} scope this route needs",
        f'Bearer realm="provml", error="insufficient_scope", scope="{scope}"',
        scope=scope,
    )


def _is_page(endpoint: str) -> bool:
    return bool(getattr(current_app.view_functions.get(endpoint), _PAGE, False))


def _to_signin(reason: str, scope: str | None) -> ResponseReturnValue:
    """A page reached without a (valid) token: to the sign-in page (303), which comes back
    here once signed in; an app without one answers 401."""
    signin = current_app.extensions.get(SIGNIN)
    if signin is None:
        return _denied(401, reason, "this page needs a read token", 'Bearer realm="provml"')
    audit.denied(reason, scope)
    response = redirect(url_for(signin, next=request.full_path.rstrip("?")), code=303)
    if reason == "invalid_token":  # revoked, or never valid: forget it
        response.delete_cookie(SESSION_COOKIE, path=request.script_root or "/")
    return response


def _denied(
    status: int, code: str, message: str, challenge: str, scope: str | None = None
) -> Response:
    audit.denied(code, scope)
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    return response
