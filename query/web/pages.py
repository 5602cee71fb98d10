"""The browser's HTML pages (docs/web.md): runs, a run, lineage, records, predictions,
comparison, search. Each page is rendered from the same functions the JSON endpoints
(:mod:`query.web.api`) answer from."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "query_web_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
