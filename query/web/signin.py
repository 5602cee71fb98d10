"""Signing in to the browser: a form that takes an access token with the ``read`` scope
and keeps it in an HttpOnly, SameSite=Strict cookie (``provml.web.app.SESSION_COOKIE``),
which the service then takes for reading only: GET and HEAD of read routes, never a
write (docs/web.md, "Signing in"). A service without tokens needs no sign-in."""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from provml import __version__
from provml.web import audit
from provml.web.app import OPEN, SESSION_COOKIE, requires
from provml.web.auth import READ

bp = Blueprint("query_web_signin", __name__, template_folder="templates")

#: the longest token the form takes (provml's own are 43 characters)
_MAX_TOKEN = 4096


def _next() -> str:
    """Where to go once signed in: a path of this service (never another site)."""
    target = request.values.get("next") or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 for c in target):
        return "/"
    return target


def _form(message: str | None, status: int) -> ResponseReturnValue:
    response = make_response(
        render_template("signin.html", message=message, next=_next(), version=__version__), status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/signin")
@requires(OPEN)
def signin() -> ResponseReturnValue:
    if not current_app.extensions.get("provml.auth"):  # no tokens: nothing to sign in to
        return redirect(request.script_root + _next(), code=303)
    return _form(None, 200)


@bp.post("/signin")
@requires(OPEN)
def signin_post() -> ResponseReturnValue:
    tokens = current_app.extensions.get("provml.auth")
    if not tokens:
        return redirect(request.script_root + _next(), code=303)
    token = (request.form.get("token") or "").strip()
    if not token:
        return _form("Paste an access token with the read scope.", 400)
    identity = tokens.check(token) if len(token) <= _MAX_TOKEN else None
    if identity is None:
        audit.denied("invalid_token", READ)
        return _form("That token is not valid here.", 401)
    if not identity.allows(READ):
        audit.denied("insufficient_scope", READ)
        return _form(f"The token {identity.name!r} does not have the read scope.", 403)
    audit.note("signin", name=identity.name)
    response = redirect(request.script_root + _next(), code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path=(request.script_root or "") + "/",
    )
    return response


@bp.post("/signout")
@requires(OPEN)
def signout() -> ResponseReturnValue:
    response = redirect(url_for("query_web_signin.signin"), code=303)
    response.delete_cookie(SESSION_COOKIE, path=(request.script_root or "") + "/")
    return response
