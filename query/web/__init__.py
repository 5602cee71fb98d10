"""The lineage browser, served by the query component: HTML pages (:mod:`query.web.pages`)
and the JSON endpoints they read (:mod:`query.web.api`), both answered from the same
named questions and records as the CLI and REST (docs/web.md)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from provml.web.app import OPEN, mount, page, required_scope, requires
from provml.web.auth import READ


def install(app: Flask) -> None:
    """The browser's pages and its JSON endpoints in ``app`` (the query routes' app)."""
    from provml.web.app import SIGNIN
    from query.web import api, pages, report, signin

    mount(app, api.bp)
    mount(app, pages.bp)
    mount(app, report.bp)

    mount(app, signin.bp)
    app.extensions[SIGNIN] = "query_web_signin.signin"
    # the pages' styles, scripts and vendored libraries hold nothing of the graph: open,
    # so that the sign-in page is styled too
    send = app.view_functions["query_web_pages.static"]  # a bound method: wrapped

    def assets(filename: str) -> Any:
        return send(filename=filename)

    app.view_functions["query_web_pages.static"] = requires(OPEN)(assets)
    # every page that reads sends a browser without a token to sign in (not a 401)
    with app.app_context():
        for endpoint, view in app.view_functions.items():
            ours = endpoint.startswith(("query_web_pages.", "query_web_report."))
            if ours and required_scope(endpoint) == READ:
                page(view)
