"""The JSON endpoints the browser's pages read, documented and usable on their own
(docs/web.md, "The JSON endpoints"): ``/api/v1/runs``, ``/api/v1/runs/<id>``,
``/api/v1/lineage``, ``/api/v1/lineage/fold``, ``/api/v1/search``. Each reads the store
only through the query runner (:func:`query.routes.run`), under the query limits."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from provml.core.errors import ValidationError
from provml.web import audit
from provml.web.app import requires
from provml.web.auth import READ
from query.routes import run
from query.web import lineage as lineage_view
from query.web import runs as runs_view
from query.web import search as search_view

bp = Blueprint("query_web_api", __name__)


def _args(*allowed: str) -> dict[str, str]:
    """The query string's parameters, each given once and each among ``allowed``."""
    out: dict[str, str] = {}
    for key, values in request.args.lists():
        if key not in allowed:
            raise ValidationError(
                f"unknown parameter {key!r}; {request.path} takes {', '.join(allowed)}"
            )
        if len(values) > 1:
            raise ValidationError(f"parameter {key!r} given {len(values)} times")
        out[key] = values[0]
    return out


def _noted(args: dict[str, str]) -> dict[str, str]:
    return {k: audit.truncate(v, 500)[0] for k, v in args.items()}


@bp.get("/api/v1/runs")
@requires(READ)
def runs() -> ResponseReturnValue:
    """A page of the workflow runs, filtered and sorted (docs/web.md)."""
    args: dict[str, str | list[str]] = {}
    for key, values in request.args.lists():
        args[key] = (
            values if key in runs_view.REPEATABLE else (values[0] if len(values) == 1 else values)
        )
    audit.note(
        "browse",
        view="runs",
        params={
            k: audit.truncate(", ".join(v) if isinstance(v, list) else v, 500)[0]
            for k, v in args.items()
        },
    )
    return run(lambda st: runs_view.runs(st, args))


@bp.get("/api/v1/runs/<path:ref>")
@requires(READ)
def one_run(ref: str) -> ResponseReturnValue:
    """A run: its tasks, their DAG, parameters, metrics, environment (docs/web.md)."""
    audit.note("browse", view="run", ref=audit.truncate(ref, 500)[0])
    _args()
    return run(lambda st: runs_view.run(st, ref))


@bp.get("/api/v1/lineage")
@requires(READ)
def lineage() -> ResponseReturnValue:
    """The lineage view of a node: ``node``, ``direction``, ``depth``, ``fold``."""
    args = _args("node", "direction", "depth", "fold")
    audit.note("browse", view="lineage", params=_noted(args))
    if not args.get("node", "").strip():
        raise ValidationError("give node: an IRI, a SHA-256 or a unique prefix of one")
    return run(
        lambda st: lineage_view.lineage(
            st,
            args["node"],
            args.get("direction", "both"),
            args.get("depth", 2),
            args.get("fold", lineage_view.DEFAULT_FOLD),
        )
    )


@bp.get("/api/v1/lineage/fold")
@requires(READ)
def lineage_fold() -> ResponseReturnValue:
    """A page of the nodes a folded node stands for."""
    args = _args("node", "relation", "type", "direction", "offset", "limit")
    audit.note("browse", view="lineage-fold", params=_noted(args))
    for key in ("node", "relation", "direction"):
        if not args.get(key, "").strip():
            raise ValidationError(f"give {key} (the fold's, as /api/v1/lineage gave it)")
    return run(
        lambda st: lineage_view.fold_page(
            st,
            args["node"],
            args["relation"],
            args.get("type", ""),
            args["direction"],
            args.get("offset", 0),
            args.get("limit", 100),
        )
    )


@bp.get("/api/v1/search")
@requires(READ)
def search() -> ResponseReturnValue:
    """Nodes by name, path, hash prefix, workflow, user or IRI."""
    args = _args("q", "limit")
    audit.note("browse", view="search", params=_noted(args))
    return run(
        lambda st: search_view.search(
            st, args.get("q"), args.get("limit", search_view.DEFAULT_LIMIT)
        )
    )
