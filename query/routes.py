"""The query service's routes: the SPARQL 1.1 Protocol endpoint at ``/sparql``
(read-only), the Graph Store Protocol's read side at ``/store``, the named questions at
``/api/v1/questions``, the records of models and datasets, and export. Every route reads
the store only through the app's query runner (:func:`run`, :mod:`query.limits`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, request, url_for
from flask.typing import ResponseReturnValue
from pyoxigraph import NamedNode
from werkzeug.exceptions import HTTPException

from manager.store import Store
from provml.core import config as settings
from provml.core.errors import ForbiddenOperation, QueryError, ValidationError
from provml.core.sparql_text import is_update
from provml.core.wire import TooLarge
from provml.web import audit
from provml.web.app import requires
from provml.web.auth import READ
from query import federation, graph_store, pages, questions, service_description
from query.errors import READ_ONLY, ReadOnly
from query.limits import GuardedStore, Runner
from query.results import negotiate

T = TypeVar("T")

bp = Blueprint("query", __name__)

_UPDATE_REFUSED = "this endpoint is read-only: SPARQL updates are refused"
_POST_TYPES = ("application/x-www-form-urlencoded", "application/sparql-query")
_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")


def store() -> Store:
    s: Store = current_app.extensions["provml.store"]
    return s


def run(work: Callable[[GuardedStore], T]) -> T:
    """``work`` under the app's query limits (:mod:`query.limits`): every query route
    reads the store only through this."""
    runner: Runner = current_app.extensions["provml.query_runner"]
    value: T = runner.run(store(), work)
    return value


#: what each read-only resource allows (HEAD and OPTIONS Flask answers by itself)
_SPARQL_ALLOWS = ("GET", "HEAD", "OPTIONS", "POST")
_STORE_ALLOWS = ("GET", "HEAD", "OPTIONS")
_WRITES = ["PUT", "DELETE", "PATCH"]


@bp.route("/sparql", methods=["GET", "POST"])
@requires(READ)
def sparql() -> ResponseReturnValue:
    """SPARQL 1.1 Protocol query operation: GET, POST form-encoded, POST sparql-query.

    The dataset parameters (``default-graph-uri``, ``named-graph-uri``) go in the URL, or
    in the form body with the query; given, they replace the query's FROM and FROM NAMED.
    Without a query, GET answers the Service Description, or with ``?graph=IRI`` or
    ``?default`` that graph (the Graph Store Protocol's read side, as ``/store``).
    """
    _note_sparql()
    params = _params(request.query_string, "the URL's query string")
    if "update" in params:
        raise ForbiddenOperation(_UPDATE_REFUSED)
    given = _params(request.query_string, "the URL's query string", keep_blank=True)
    reading = request.method in ("GET", "HEAD")  # Flask answers HEAD with GET's view
    if "query" not in given:  # (even empty: "?query=" is a missing query, not no query)
        if graph_store.is_graph_request(given):  # ?default has no value
            if not reading:  # a Graph Store write (POST adds to a graph): refused as updates are
                raise ForbiddenOperation(
                    f"{READ_ONLY}: POST with ?graph or ?default would add to a graph (the "
                    "Graph Store Protocol's write); read a graph with GET"
                )
            return _graph(given)
        if reading:
            return _service_description()
    if reading:
        text = _single(params, "query")
    else:
        ctype = request.mimetype
        if ctype == "application/sparql-update":
            raise ForbiddenOperation(_UPDATE_REFUSED)
        charset = request.mimetype_params.get("charset", "utf-8")
        if ctype in _POST_TYPES and charset.lower() not in _UTF8:
            raise ValidationError(f"a SPARQL request is encoded in UTF-8, not {charset}")
        if ctype == "application/x-www-form-urlencoded":
            form = _params(request.get_data(), "the form body")
            if "update" in form:
                raise ForbiddenOperation(_UPDATE_REFUSED)
            for name, values in form.items():
                params.setdefault(name, []).extend(values)
            text = _single(params, "query")
        elif ctype == "application/sparql-query":
            if "query" in params:
                raise QueryError("the query is in the body: it must not be in the URL too")
            text = _utf8(request.get_data(), "the query")
        else:
            raise ValidationError(
                "POST a query as application/x-www-form-urlencoded (query=…) "
                f"or application/sparql-query, not {ctype or 'no content type'}"
            )
    if not text or not text.strip():
        raise QueryError("missing the query parameter")
    limit = settings.QUERY_MAX_BYTES.of(current_app.config)
    if len(text) > limit or len(text.encode()) > limit:  # before any parser reads it
        raise TooLarge(
            f"the query is {len(text.encode())} bytes, over the limit of {limit} "
            "(PROVML_QUERY_MAX_BYTES)"
        )
    if is_update(text):  # an update sent as a query: refused as what it is
        raise ForbiddenOperation(_UPDATE_REFUSED)
    options: dict[str, Any] = {"base_iri": _base_iri()}
    default = params.get("default-graph-uri", [])
    named = params.get("named-graph-uri", [])
    if default or named:  # the protocol's dataset, whole: a part not given is empty
        options["default_graph"] = [_iri(u) for u in default]
        options["named_graphs"] = [_iri(u) for u in named]
    accept = request.accept_mimetypes

    def work(st: GuardedStore) -> tuple[bytes, str]:
        federation.check_nesting(text)
        federation.check(text)  # in here: a long query takes the parser a while
        result = st.query(text, **options)
        try:
            return negotiate(result, accept)
        except (OSError, RuntimeError, ValueError) as exc:  # raised while evaluating lazily
            raise QueryError(f"the query failed: {type(exc).__name__}") from None

    body, media = run(work)
    return Response(body, content_type=media, headers={"Vary": "Accept"})


def _note_sparql() -> None:
    """The audit event of a request to /sparql: a graph read (the Graph Store Protocol's
    ``?graph=``/``?default`` without a query), the Service Description, or a query."""
    args = request.args
    if "query" not in args and ("graph" in args or "default" in args):
        _note_graph()
    elif request.method != "POST" and "query" not in args:
        audit.note("service_description")
    else:

        def text() -> tuple[str, bool]:
            return audit.truncate(_query_text() or "")

        audit.note("query", query=audit.Lazy(lambda: text()[0]),
                   truncated=audit.Lazy(lambda: text()[1]))  # fmt: skip


def _note_graph() -> None:
    args = request.args
    graph = audit.truncate(args["graph"], 500)[0] if "graph" in args else None
    audit.note("graph", graph=graph, default="default" in args)


def _query_text() -> str | None:
    """The SPARQL query of this request, as /sparql read it (its body, cached)."""
    if request.method == "GET":
        return request.args.get("query")
    if request.mimetype not in _POST_TYPES:
        return None
    try:
        body = request.get_data().decode("utf-8", "replace")
    except HTTPException:  # too large, or cut off: no text to keep
        return None
    if request.mimetype == "application/sparql-query":
        return body
    values = parse_qs(body).get("query")
    return values[0] if values else None


@bp.after_request
def _allow(response: Response) -> Response:
    """OPTIONS says what a read-only resource allows, as its 405s do (Flask's own answer
    would list every method a route is registered for, the refused writes too)."""
    if request.method == "OPTIONS":
        allows = {"/sparql": _SPARQL_ALLOWS, "/store": _STORE_ALLOWS}.get(request.path)
        if allows is not None:
            response.headers["Allow"] = ", ".join(allows)
    return response


@bp.route("/sparql", methods=_WRITES)
@requires(READ)  # a reader learns the endpoint is read-only, not that a scope is missing
def sparql_write() -> ResponseReturnValue:
    raise ReadOnly(request.method, _SPARQL_ALLOWS)


@bp.get("/store")
@requires(READ)
def graph_store_read() -> ResponseReturnValue:
    """The SPARQL 1.1 Graph Store HTTP Protocol, read side: ``GET``/``HEAD``
    ``/store?graph=IRI`` or ``/store?default`` (:mod:`query.graph_store`)."""
    _note_graph()
    return _graph(_params(request.query_string, "the URL's query string", keep_blank=True))


@bp.route("/store", methods=["POST", *_WRITES])
@requires(READ)
def graph_store_write() -> ResponseReturnValue:
    raise ReadOnly(request.method, _STORE_ALLOWS)


def _graph(params: dict[str, list[str]]) -> ResponseReturnValue:
    graph = graph_store.target(params)
    accept = request.accept_mimetypes
    body, media = run(lambda st: graph_store.read(st, graph, accept))
    return Response(body, content_type=media, headers={"Vary": "Accept"})


def _service_description() -> ResponseReturnValue:
    """The Service Description (:mod:`query.service_description`) of this endpoint, as
    reached: its ``sd:endpoint`` is the URL the client used."""
    endpoint = _base_iri()
    if endpoint is None:
        raise ValidationError("the request's Host makes no IRI to describe the endpoint by")
    store_url = url_for("query.graph_store_read", _external=True)
    triples = service_description.describe(endpoint, store_url)
    body, media = negotiate(triples, request.accept_mimetypes, service_description.PREFIXES)
    return Response(body, content_type=media, headers={"Vary": "Accept"})


def _params(raw: bytes, where: str, keep_blank: bool = False) -> dict[str, list[str]]:
    """Form-encoded parameters, decoded strictly as UTF-8 (``keep_blank``: with those
    that have no value, such as the Graph Store's ``?default``)."""
    try:
        return parse_qs(_utf8(raw, where), keep_blank_values=keep_blank, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError(f"{where} does not decode as UTF-8") from None


def _utf8(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{where} is not UTF-8") from None


def _base_iri() -> str | None:
    """The endpoint's own URL, against which relative IRIs in a query resolve."""
    try:
        return NamedNode(request.base_url).value
    except ValueError:  # a Host header that makes no IRI
        return None


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise QueryError(f"the {name} parameter must be given once, got {len(values)}")
    return values[0]


def _iri(value: str) -> NamedNode:
    try:
        return NamedNode(value)
    except ValueError as exc:
        raise ValidationError(f"invalid graph IRI {value!r}: {exc}") from None


@bp.get("/api/v1/questions")
@requires(READ)
def list_questions() -> ResponseReturnValue:
    return {"questions": [q.describe() for q in questions.questions().values()]}


@bp.get("/api/v1/questions/<name>")
@requires(READ)
def ask(name: str) -> ResponseReturnValue:
    """One page of a named question's rows (``limit``, ``offset``: see query.pages); a
    next page is announced in a ``Link: <…>; rel="next"`` header."""
    params = {k: audit.truncate(v, 500)[0] for k, v in request.args.items()}
    audit.note("question", question=name, params=params)
    question = questions.get(name, store().dialect)
    args = _args()
    accept = request.accept_mimetypes

    def answer(st: GuardedStore) -> tuple[bytes, str, pages.Page]:
        page = pages.ask(st, question, args)
        return (*negotiate(page, accept), page)

    body, media, page = run(answer)
    response = Response(body, content_type=media)
    if page.more:
        response.headers["Link"] = pages.next_link(request.base_url, args, page)
    return response


def _args() -> dict[str, str]:
    """The query string's parameters, each given once."""
    out: dict[str, str] = {}
    for key, values in request.args.lists():
        if len(values) > 1:
            raise ValidationError(f"parameter {key!r} given {len(values)} times")
        out[key] = values[0]
    return out


@bp.get("/api/v1/models/<path:model>")
@requires(READ)
def model(model: str) -> ResponseReturnValue:
    """A model's record: ``model`` is the SHA-256 of its file, or its IRI."""
    audit.note("record", kind="model", ref=audit.truncate(model, 500)[0])
    from query.records import model_record

    return run(lambda st: model_record(st, model))


@bp.get("/api/v1/datasets/<path:dataset>")
@requires(READ)
def dataset(dataset: str) -> ResponseReturnValue:
    """A dataset's record: ``dataset`` is the SHA-256 of its content, or its IRI."""
    audit.note("record", kind="dataset", ref=audit.truncate(dataset, 500)[0])
    from query.records import dataset_record

    return run(lambda st: dataset_record(st, dataset))


@bp.get("/api/v1/export")
@requires(READ)
def export() -> ResponseReturnValue:
    """A subgraph as a document: ``scope`` (all, lineage, run, workflow, document), ``id``
    (the entity, run, workflow name or imported document), ``format`` (provn, provjson,
    provxml, turtle, ntriples, jsonld, trig; default turtle), ``strict`` (true: refuse a
    PROV export that would leave statements out; default false: leave them out, and say
    how many in ``Provml-Unexpressed`` and a few in ``Provml-Unexpressed-Sample``)."""
    from provml.interop import export as interop_export
    from provml.interop.documents import EXPORT_FORMATS, format_named

    raw = request.args
    audit.note("export", scope=raw.get("scope", "all"),
               id=audit.truncate(raw.get("id") or "", 500)[0] or None,
               format=raw.get("format", "turtle"))  # fmt: skip
    args = _args()
    scope = args.get("scope", "all")
    fmt = args.get("format", "turtle")
    ident = args.get("id")
    unknown = set(args) - {"scope", "format", "id", "strict"}
    if unknown:
        raise ValidationError(f"unknown parameters {sorted(unknown)}: scope, format, id and strict")
    strict = _flag(args.get("strict", "false"), "strict")
    spec = format_named(fmt, EXPORT_FORMATS)

    def work(st: GuardedStore) -> interop_export.Exported:
        quads = interop_export.collect(st, scope, ident)
        prefixes = interop_export.declared_prefixes(st)
        return interop_export.export(quads, fmt, strict=strict, prefixes=prefixes)

    done = run(work)
    headers = {
        "Content-Disposition": f'attachment; filename="provml-{scope}{spec.extension}"',
        "Provml-Unexpressed": str(done.unexpressed),
    }
    if done.unexpressed:
        headers["Provml-Unexpressed-Sample"] = " ; ".join(done.sample)
    return Response(done.data, content_type=f"{spec.media_type}; charset=utf-8", headers=headers)


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ValidationError(f"{name} is true or false, not {value!r}")
