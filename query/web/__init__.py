"""The lineage browser, served by the query component: HTML pages (:mod:`query.web.pages`)
and the JSON endpoints they read (:mod:`query.web.api`), both answered from the same
named questions and records as the CLI and REST (docs/web.md)."""

from __future__ import annotations

from flask import Flask

from provml.web.app import SIGNIN, mount


def install(app: Flask) -> None:
    """The browser's pages and its JSON endpoints in ``app`` (the query routes' app); a
    page (``@page``) opened without a token goes to the sign-in page."""
    from query.web import api, pages, report, signin

    mount(app, api.bp)
    mount(app, pages.bp)
    mount(app, report.bp)
    mount(app, signin.bp)
    app.extensions[SIGNIN] = "query_web_signin.signin"
