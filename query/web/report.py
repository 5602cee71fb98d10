"""A run's report: one self-contained HTML page (its tasks as a graph and a timeline,
parameters, metrics as plots, environment, failures, what it used and made), with every
script, style and datum inside it, so that it opens without a server: to attach to a
review or an audit. ``GET /report?run=<ref>``; ``provml report`` saves it to a file.

It is the run's page (``run.html``, from :func:`query.web.pages.run_context`) rendered
with its assets inline (:func:`asset`): the same record, the same tables."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from provml.core.errors import ValidationError
from provml.web import audit
from provml.web.app import page
from query.routes import run as read
from query.web import runs
from query.web.pages import STATIC, _html, run_context

bp = Blueprint("query_web_report", __name__, template_folder="templates")


@cache
def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@bp.app_template_global("asset")
@pass_context
def asset(context: Context, name: str) -> Markup:
    """A style sheet or script of ``static/``: linked, or inside the page when the
    template renders a report (``inline``). Inline text cannot end its element early:
    every ``</`` becomes ``<\\/`` (the same text to CSS and to JavaScript)."""
    if name not in _ASSETS:
        raise ValueError(f"no asset {name!r}")
    css = name.endswith(".css")
    if context.get("inline"):
        text = _static(name).replace("</", "<\\/").replace("<!--", "<\\!--")
        return Markup(f"<style>{text}</style>" if css else f"<script>{text}</script>")
    href = escape(url_for("query_web_pages.static", filename=name))
    if css:
        return Markup(f'<link rel="stylesheet" href="{href}">')
    return Markup(f'<script src="{href}"></script>')


#: the files :func:`asset` serves (under ``query/web/static/``)
_ASSETS = frozenset({
    "css/site.css", "vendor/uplot.min.css", "vendor/cytoscape.min.js",
    "vendor/cytoscape-dagre.min.js", "vendor/uplot.iife.min.js", "js/common.js",
    "js/run.js", "js/lineage.js", "js/compare.js",
})  # fmt: skip


@bp.get("/report")
@page
def report() -> ResponseReturnValue:
    ref = request.args.get("run", "").strip()
    if not ref:
        raise ValidationError("give the run: /report?run=<its UUID, a unique prefix, or IRI>")
    audit.note("report", run=audit.truncate(ref, 500)[0])
    record = read(lambda st: runs.run(st, ref))
    body = _html(
        "report.html",
        inline=True,
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        source=request.url_root,
        **run_context(record),
    )
    name = str(record["run"].get("id") or "run")[:36]
    return Response(
        body,
        content_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="provml-report-{name}.html"'},
    )
