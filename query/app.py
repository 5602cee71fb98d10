"""The query service: the SPARQL 1.1 Protocol endpoint at ``/sparql`` (read-only) and
the named questions at ``/api/v1/questions``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from pyoxigraph import NamedNode

from manager.store import Store, open_store
from provml.errors import ForbiddenOperation, QueryError, ValidationError
from provml.service import make_app
from query import questions
from query.results import negotiate

bp = Blueprint("query", __name__)

_UPDATE_REFUSED = "this endpoint is read-only: SPARQL updates are refused"
# SERVICE would make the server fetch other URLs (and echo their answers in errors)
_SERVICE = re.compile(r"\bSERVICE\b", re.IGNORECASE)
_STRINGS = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*\'\'\''
    r'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|<[^>\s]*>'
)


def store() -> Store:
    s: Store = current_app.extensions["provml.store"]
    return s


@bp.route("/sparql", methods=["GET", "POST"])
def sparql() -> ResponseReturnValue:
    """SPARQL 1.1 Protocol query operation: GET, POST form-encoded, POST sparql-query."""
    if request.method == "GET":
        params = parse_qs(request.query_string.decode("utf-8", "replace"))
        text = _single(params, "query")
    else:
        ctype = request.mimetype
        if ctype == "application/sparql-update":
            raise ForbiddenOperation(_UPDATE_REFUSED)
        if ctype == "application/x-www-form-urlencoded":
            params = parse_qs(request.get_data(as_text=True))
            if "update" in params:
                raise ForbiddenOperation(_UPDATE_REFUSED)
            text = _single(params, "query")
        elif ctype == "application/sparql-query":
            params = parse_qs(request.query_string.decode("utf-8", "replace"))
            text = request.get_data(as_text=True)
        else:
            raise ValidationError(
                "POST a query as application/x-www-form-urlencoded (query=…) "
                f"or application/sparql-query, not {ctype or 'no content type'}"
            )
    if "update" in params:
        raise ForbiddenOperation(_UPDATE_REFUSED)
    if text is None:
        raise QueryError("missing the query parameter")
    if _SERVICE.search(_STRINGS.sub("", text)):
        raise ForbiddenOperation("federated queries (SERVICE) are not allowed on this endpoint")
    options: dict[str, Any] = {}
    if params.get("default-graph-uri"):
        options["default_graph"] = [_iri(u) for u in params["default-graph-uri"]]
    if params.get("named-graph-uri"):
        options["named_graphs"] = [_iri(u) for u in params["named-graph-uri"]]
    result = store().query(text, **options)
    try:
        body, media = negotiate(result, request.accept_mimetypes)
    except (OSError, RuntimeError, ValueError) as exc:  # raised while evaluating lazily
        raise QueryError(f"the query failed: {type(exc).__name__}") from None
    return Response(body, content_type=media)


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
    question = questions.get(name)
    result = store().query(question.text(request.args.to_dict()))
    body, media = negotiate(result, request.accept_mimetypes)
    return Response(body, content_type=media)


@bp.get("/api/v1/models/<path:model>")
def model(model: str) -> ResponseReturnValue:
    """A model's record: ``model`` is the SHA-256 of its file, or its IRI."""
    from query.records import model_record

    return model_record(store(), model)


@bp.get("/api/v1/datasets/<path:dataset>")
def dataset(dataset: str) -> ResponseReturnValue:
    """A dataset's record: ``dataset`` is the SHA-256 of its content, or its IRI."""
    from query.records import dataset_record

    return dataset_record(store(), dataset)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The query service on its own. ``config["store"]``: a :class:`Store` or a URL."""
    config = dict(config or {})
    st = config.pop("store", None) or "memory:"
    if not isinstance(st, Store):
        st = open_store(st)
    return make_app("provml.query", [(bp, "")], {"provml.store": st}, config)
