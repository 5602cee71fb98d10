"""The query service: the SPARQL 1.1 Protocol endpoint at ``/sparql`` (read-only) and
the named questions at ``/api/v1/questions``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from pyoxigraph import NamedNode

from manager.store import Store, open_store
from provml.errors import Busy, ForbiddenOperation, QueryError, ValidationError
from provml.service import make_app
from query import federation, questions
from query.limits import RETRY_AFTER, GuardedStore, Runner
from query.results import negotiate

T = TypeVar("T")

bp = Blueprint("query", __name__)

_UPDATE_REFUSED = "this endpoint is read-only: SPARQL updates are refused"
_POST_TYPES = ("application/x-www-form-urlencoded", "application/sparql-query")
_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")
_RUNNER_LOCK = threading.Lock()


def store() -> Store:
    s: Store = current_app.extensions["provml.store"]
    return s


def run(work: Callable[[GuardedStore], T]) -> T:
    """``work`` under the app's query limits (:mod:`query.limits`): every query route
    reads the store only through this."""
    runner = current_app.extensions.get("provml.query_runner")
    if runner is None:
        with _RUNNER_LOCK:
            runner = current_app.extensions.setdefault("provml.query_runner", Runner())
    value: T = runner.run(store(), work)
    return value


@bp.errorhandler(Busy)
def _busy(exc: Busy) -> ResponseReturnValue:
    return exc.to_json(), exc.status, {"Retry-After": str(RETRY_AFTER)}


@bp.route("/sparql", methods=["GET", "POST"])
def sparql() -> ResponseReturnValue:
    """SPARQL 1.1 Protocol query operation: GET, POST form-encoded, POST sparql-query.

    The dataset parameters (``default-graph-uri``, ``named-graph-uri``) go in the URL, or
    in the form body with the query; given, they replace the query's FROM and FROM NAMED.
    """
    params = _params(request.query_string, "the URL's query string")
    if "update" in params:
        raise ForbiddenOperation(_UPDATE_REFUSED)
    if request.method == "GET":
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


def _params(raw: bytes, where: str) -> dict[str, list[str]]:
    """Form-encoded parameters, decoded strictly as UTF-8."""
    try:
        return parse_qs(_utf8(raw, where), errors="strict")
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
def list_questions() -> ResponseReturnValue:
    return {"questions": [q.describe() for q in questions.questions().values()]}


@bp.get("/api/v1/questions/<name>")
def ask(name: str) -> ResponseReturnValue:
    question = questions.get(name, store().dialect)
    text = question.text(_args())
    accept = request.accept_mimetypes
    body, media = run(lambda st: negotiate(st.query(text), accept))
    return Response(body, content_type=media)


def _args() -> dict[str, str]:
    """The query string's parameters, each given once."""
    out: dict[str, str] = {}
    for key, values in request.args.lists():
        if len(values) > 1:
            raise ValidationError(f"parameter {key!r} given {len(values)} times")
        out[key] = values[0]
    return out


@bp.get("/api/v1/models/<path:model>")
def model(model: str) -> ResponseReturnValue:
    """A model's record: ``model`` is the SHA-256 of its file, or its IRI."""
    from query.records import model_record

    return run(lambda st: model_record(st, model))


@bp.get("/api/v1/datasets/<path:dataset>")
def dataset(dataset: str) -> ResponseReturnValue:
    """A dataset's record: ``dataset`` is the SHA-256 of its content, or its IRI."""
    from query.records import dataset_record

    return run(lambda st: dataset_record(st, dataset))


@bp.get("/api/v1/export")
def export() -> ResponseReturnValue:
    """A subgraph as a document: ``scope`` (all, lineage, run, workflow, document), ``id``
    (the entity, run, workflow name or imported document), ``format`` (provn, provjson,
    provxml, turtle, ntriples, jsonld, trig; default turtle), ``strict`` (true: refuse a
    PROV export that would leave statements out; default false: leave them out, and say
    how many in ``Provml-Unexpressed`` and a few in ``Provml-Unexpressed-Sample``)."""
    from provml import interop_export
    from provml.interop import EXPORT_FORMATS, format_named

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


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The query service on its own. ``config["store"]``: a :class:`Store` or a URL."""
    config = dict(config or {})
    st = config.pop("store", None) or "memory:"
    if not isinstance(st, Store):
        st = open_store(st)
    return make_app("provml.query", [(bp, "")], {"provml.store": st}, config)
