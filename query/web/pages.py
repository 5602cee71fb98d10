"""The browser's HTML pages (docs/web.md): runs, a run, lineage, records, predictions,
comparison, search. Each page is rendered from the same functions the JSON endpoints
(:mod:`query.web.api`) answer from, or from the named questions and records the CLI and
REST answer from, read through the query runner (:func:`query.routes.run`).

Tables are rendered on the server, so every page works, and is read by a screen reader,
without JavaScript; the scripts under ``static/js`` add the graphs, the plots and the
expansion of a lineage view. Every URL is made with ``url_for`` (or relative to
``data-root``, the app's ``SCRIPT_NAME``), so the pages work behind a reverse proxy
under a path prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound as RouteNotFound

from provml import __version__
from provml.core.errors import NotFound, ProvmlError, ValidationError
from provml.web import audit
from provml.web.app import OPEN, page, requires
from query.limits import GuardedStore
from query.records import dataset_record, model_record, rows
from query.routes import run as read
from query.web import shape

bp = Blueprint("query_web_pages", __name__, template_folder="templates")
#: the pages' stylesheet, scripts and vendored libraries, served at /assets/
STATIC = Path(__file__).with_name("static")

#: the PROV formats a lineage view exports to (``/api/v1/export``'s names and labels)
EXPORTS = (("provn", "PROV-N"), ("provjson", "PROV-JSON"), ("provxml", "PROV-XML"),
           ("turtle", "Turtle"), ("jsonld", "JSON-LD"))  # fmt: skip
#: rows of a record's list shown at once (the predictions of a model may be 100,000s)
SHOWN = 50
#: runs one comparison takes
MAX_COMPARED = 8
DIRECTIONS = ("up", "down", "both")


def _html(template: str, status: int = 200, **context: Any) -> str:
    return render_template(template, version=__version__, status=status, **context)


@bp.get("/assets/<path:filename>")
@requires(OPEN)  # no secret in them, and a sign-in page needs its stylesheet
def static(filename: str) -> ResponseReturnValue:
    """A file of ``static/``: the stylesheet, the scripts, the vendored libraries."""
    return send_from_directory(STATIC, filename, max_age=3600)


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return _html(template, status, **context), status


@bp.app_template_filter("rooted")
def rooted(url: str | None) -> str:
    """A URL the JSON gives from the app's root (``/datasets/…``) under this request's
    path prefix (SCRIPT_NAME)."""
    if not url:
        return ""
    return request.script_root + url if url.startswith("/") else url


@bp.app_template_filter("short")
def short(value: str | None, keep: int = 12) -> str:
    """An IRI's last part, or a hash's first digits."""
    if not value:
        return ""
    text = str(value)
    last = text.rstrip("/").rsplit("/", 1)[-1] if "/" in text else text
    if len(last) == 64 and all(c in "0123456789abcdef" for c in last):
        return last[:keep]
    return last


@bp.app_template_filter("runid")
def runid(value: str | None) -> str:
    """A run's UUID told apart from its neighbours' in a few characters: its session's
    milliseconds (the first 12 digits: runs of the same minute share the first 8) and
    its number in the session (the last digits)."""
    text = str(value or "")
    return f"{text[:13]}…{text[-4:]}" if len(text) == 36 else text


@bp.app_template_filter("ref")
def ref(iri: str | None) -> str:
    """What a page's URL names a node by: a content IRI's SHA-256, else the IRI."""
    text = str(iri or "")
    last = text.rsplit("/", 1)[-1]
    if "/data/sha256/" in text and len(last) == 64:
        return last
    return text


bp.add_app_template_filter(shape.seconds, "seconds")
bp.add_app_template_filter(shape.shown, "shown")
bp.add_app_template_filter(shape.moment, "moment")


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationError(
            f"{name} must be a whole number from {low} to {high}, got {raw[:40]!r}"
        )
    return int(raw)


# --- runs --------------------------------------------------------------------------


#: the distinct workflows and users, for the filters' suggestions (bounded)
#: the filters' choices: the workflows' plans and the people who ran them (a few nodes
#: each, by their class; DISTINCT over every run's name took 480 ms on 10,000 runs)
_CHOICES = """
SELECT ?what ?value WHERE {
  { SELECT DISTINCT ("workflow" AS ?what) ?value WHERE {
      ?plan a provml:Workflow ; provml:name ?value } LIMIT 500 }
  UNION
  { SELECT DISTINCT ("user" AS ?what) ?value WHERE {
      ?person a provml:Persona ; provml:name ?value } LIMIT 500 }
}"""


def _choices(st: GuardedStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"workflow": [], "user": []}
    for row in st.query(_CHOICES):
        out[row["what"].value].append(row["value"].value)
    return {k: sorted(set(v)) for k, v in out.items()}


@bp.get("/")
@page
def runs_page() -> ResponseReturnValue:
    """The recent workflow runs, with search, filters, sort and paging."""
    audit.note("page", page="runs")
    from query.web.runs import REPEATABLE, runs

    args = request.args
    given: dict[str, str | list[str]] = {}  # as /api/v1/runs reads them, blanks left out
    for key, values in args.lists():
        kept = [v for v in values if v.strip()]
        if kept and key != "pick":
            given[key] = kept if key in REPEATABLE or len(kept) > 1 else kept[0]

    def work(st: GuardedStore) -> tuple[dict[str, Any], dict[str, list[str]]]:
        return runs(st, given), _choices(st)

    data, choices = read(work)
    limit, offset = int(data.get("limit", 50)), int(data.get("offset", 0))

    def paged(new_offset: int) -> str:
        kept = [(k, v) for k, vs in args.lists() for v in vs if k != "offset" and v]
        return url_for(".runs_page") + "?" + _query([*kept, ("offset", str(new_offset))])

    def sorted_by(key: str) -> str:
        now = args.get("sort", "started")
        chosen = f"-{key}" if now == key else key
        kept = [(k, v) for k, vs in args.lists() for v in vs if k not in ("sort", "offset") and v]
        return url_for(".runs_page") + "?" + _query([*kept, ("sort", chosen)])

    return _page(
        "runs.html",
        nav="runs",
        data=data,
        args=args,
        choices=choices,
        prev_url=paged(max(offset - limit, 0)) if offset else None,
        next_url=paged(offset + limit) if data.get("more") else None,
        sorted_by=sorted_by,
    )


def _query(pairs: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(pairs)


@bp.get("/runs/<path:ref>")
@page
def run_page(ref: str) -> ResponseReturnValue:
    """One run: its tasks as a DAG and a timeline, parameters, metrics, environment,
    resources, failures, what it used and produced."""
    audit.note("page", page="run", ref=audit.truncate(ref, 500)[0])
    from query.web.runs import run as run_of

    data = read(lambda st: run_of(st, ref))
    return _page("run.html", nav="runs", **run_context(data))


def run_context(data: dict[str, Any]) -> dict[str, Any]:
    """What ``run.html`` shows of a run record (:func:`query.web.runs.run`): its page,
    and its report (:mod:`query.web.report`)."""
    tasks = data.get("tasks", [])
    names = shape.task_names(tasks)
    return {
        "data": data,
        "names": names,
        "timeline": shape.timeline(data["run"], tasks),
        "series": shape.metric_series(data.get("metrics", []), names),
        "scalars": shape.scalars(data.get("metrics", []), names),
        "failures": [t for t in tasks if t.get("error") or t.get("status") == "failed"],
    }


# --- lineage -----------------------------------------------------------------------


@bp.get("/lineage")
@page
def lineage_page() -> ResponseReturnValue:
    """A node's lineage as a graph, and the same view as a table of nodes and edges."""
    node = request.args.get("node", "").strip()
    direction = request.args.get("direction", "both")
    if direction not in DIRECTIONS:
        raise ValidationError(f"direction is up, down or both, not {direction[:40]!r}")
    depth = _int("depth", 2, 1, 10)
    fold = _int("fold", 25, 1, 1000)
    audit.note("page", page="lineage", node=audit.truncate(node, 500)[0] or None)
    if not node:
        return _page("lineage.html", view=None, node="", direction=direction, depth=depth,
                     fold=fold, exports=EXPORTS)  # fmt: skip
    from query.web.lineage import lineage

    view = read(lambda st: lineage(st, node, direction, depth, fold))
    return _page(
        "lineage.html",
        view=view,
        compact=shape.compact(view),
        labels={n["id"]: n.get("label") or short(n["id"]) for n in view["nodes"]},
        node=node,
        direction=direction,
        depth=depth,
        fold=fold,
        exports=EXPORTS,
    )


# --- records -----------------------------------------------------------------------


def _sample(st: GuardedStore, question: str, **params: str) -> tuple[list[dict[str, str]], bool]:
    """The first :data:`SHOWN` rows of a question, and whether there are more."""
    found = rows(st, question, **params, limit=str(SHOWN + 1))
    return found[:SHOWN], len(found) > SHOWN


@bp.get("/models/<path:ref>")
@page
def model_page(ref: str) -> ResponseReturnValue:
    """A model's record (``provml model``), its licence verdict, whether the feature
    code serving it changed, and the predictions it made."""
    audit.note("page", page="model", ref=audit.truncate(ref, 500)[0])

    def work(st: GuardedStore) -> dict[str, Any]:
        record = model_record(st, ref)
        model = record["model"]
        predictions, more = _sample(st, "predictions", model=model)
        return {
            "record": record,
            "licences": rows(st, "commercial-use", model=model),
            "features": rows(st, "feature-code", model=model),
            "predictions": predictions,
            "more_predictions": more,
        }

    return _page("model.html", **read(work))


@bp.get("/datasets/<path:ref>")
@page
def dataset_page(ref: str) -> ResponseReturnValue:
    """A dataset's record (``provml dataset``): every version, its sources and licences,
    every model downstream of it."""
    audit.note("page", page="dataset", ref=audit.truncate(ref, 500)[0])
    record = read(lambda st: dataset_record(st, ref))
    return _page("dataset.html", record=record)


@bp.get("/predictions/<path:ref>")
@page
def prediction_page(ref: str) -> ResponseReturnValue:
    """A prediction traced to the model that made it, and from there to the model's
    training data, hyperparameters and code version (the prediction-trace question)."""
    audit.note("page", page="prediction", ref=audit.truncate(ref, 500)[0])

    def work(st: GuardedStore) -> dict[str, Any]:
        trace = rows(st, "prediction-trace", prediction=ref)
        made = rows(st, "prediction-model", prediction=ref)
        if not trace and not made:
            raise NotFound(f"no prediction {ref!r} made by a model in the graph")
        return {"trace": trace, "made": made}

    found = read(work)
    return _page("prediction.html", ref=ref, **found)


# --- compare and search ------------------------------------------------------------


@bp.get("/compare")
@page
def compare_page() -> ResponseReturnValue:
    """Runs side by side, differences against a baseline run highlighted."""
    given = [*request.args.get("runs", "").split(","), *request.args.getlist("pick")]
    refs = [r.strip() for r in given if r.strip()]
    audit.note("page", page="compare", runs=[audit.truncate(r, 200)[0] for r in refs[:20]])
    if len(refs) > MAX_COMPARED:
        raise ValidationError(f"compare at most {MAX_COMPARED} runs at once, not {len(refs)}")
    if len(refs) < 2:
        return _page("compare.html", refs=refs, details=[], table=None, curves={})
    baseline = _int("baseline", 0, 0, len(refs) - 1)
    only = request.args.get("diff") in ("1", "true", "on")
    from query.web.runs import run as run_of

    details = read(lambda st: [run_of(st, r) for r in refs])
    labels = [f"{d['run'].get('workflow', '?')} {runid(d['run'].get('id'))}" for d in details]
    return _page(
        "compare.html",
        refs=refs,
        details=details,
        labels=labels,
        baseline=baseline,
        only=only,
        table=shape.compared(details, baseline),
        curves=shape.overlaid(details, labels),
    )


@bp.get("/search")
@page
def search_page() -> ResponseReturnValue:
    """Runs, tasks, data, models, predictions and people by name, path, hash prefix,
    workflow or user."""
    q = request.args.get("q", "").strip()
    limit = _int("limit", 50, 1, 200)
    audit.note("page", page="search", q=audit.truncate(q, 500)[0])
    if not q:
        return _page("search.html", nav="search", q="", results=None)
    from query.web.search import search

    found = read(lambda st: search(st, q, limit))
    return _page("search.html", nav="search", q=q, results=found.get("results", []), limit=limit)


# --- errors ------------------------------------------------------------------------


@bp.errorhandler(ProvmlError)
def _page_error(exc: ProvmlError) -> ResponseReturnValue:
    """A page's error as a page (the JSON endpoints keep their JSON errors)."""
    body = _html("error.html", exc.status, code=exc.code, message=str(exc))
    return Response(body, status=exc.status, headers=exc.headers(), mimetype="text/html")


def wants_html() -> bool:
    """Whether this request is a browser's for a page (not one for the API, SPARQL, the
    graph store, the tracker or the manager, and not one that prefers JSON)."""
    if request.path.startswith(("/api/", "/sparql", "/store", "/manager", "/assets/")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > 0


@bp.app_errorhandler(RouteNotFound)
def _no_route(exc: RouteNotFound) -> ResponseReturnValue:
    """A URL nothing answers: a page for a browser, provml's JSON error otherwise."""
    if wants_html():
        return _page("error.html", status=404, code="not_found", message=exc.description)
    return {"error": "not_found", "message": exc.description}, 404
