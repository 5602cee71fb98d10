"""The JSON endpoints the browser's pages read, documented and usable on their own
(docs/web.md, "The JSON endpoints"): ``/api/v1/runs``, ``/api/v1/runs/<id>``,
``/api/v1/lineage``, ``/api/v1/search``."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("query_web_api", __name__)
