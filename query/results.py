"""Serialising query results by content negotiation (SPARQL 1.1 Protocol §2.1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pyoxigraph
from pyoxigraph import QueryResultsFormat as QRF
from pyoxigraph import RdfFormat
from werkzeug.datastructures import MIMEAccept

from provml.core.errors import NotAcceptable
from provml.core.vocab import PREFIXES

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

#: media type → format, the first one the default
SOLUTION_FORMATS: dict[str, QRF] = {
    "application/sparql-results+json": QRF.JSON,
    "application/json": QRF.JSON,
    "application/sparql-results+xml": QRF.XML,
    "application/xml": QRF.XML,
    "text/csv": QRF.CSV,
    "text/tab-separated-values": QRF.TSV,
}
GRAPH_FORMATS: dict[str, RdfFormat] = {
    "text/turtle": RdfFormat.TURTLE,
    "application/n-triples": RdfFormat.N_TRIPLES,
    "text/plain": RdfFormat.N_TRIPLES,
    "application/ld+json": RdfFormat.JSON_LD,
    "application/rdf+xml": RdfFormat.RDF_XML,
    "application/json": RdfFormat.JSON_LD,
}


def negotiate(
    result: Any, accept: Any, prefixes: dict[str, str] | None = None
) -> tuple[bytes, str]:
    """Serialise ``result`` in the best format ``accept`` (werkzeug MIMEAccept) allows;
    a graph in Turtle or RDF/XML with ``prefixes`` (provml's by default).

    ``result``: a pyoxigraph result, a list of triples, or a
    :class:`query.limits.Guarded` result, whose rows are read one by one (checked
    against the request's limits) before anything is written: a request over its limits
    gets an error, never a truncated answer.
    """
    from query.guard import Guarded

    if isinstance(result, Guarded):
        graph = result.graph
    else:  # a CONSTRUCT's triples, or a list of triples made here (a service description)
        graph = isinstance(result, (pyoxigraph.QueryTriples, list))
    if graph:
        media = _best(accept, GRAPH_FORMATS)
        fmt = GRAPH_FORMATS[media]
        named = prefixes or PREFIXES
        short = named if fmt in (RdfFormat.TURTLE, RdfFormat.RDF_XML) else None
        body = pyoxigraph.serialize(list(result), format=fmt, prefixes=short)
    elif isinstance(result, pyoxigraph.QueryBoolean):
        media = _best(accept, SOLUTION_FORMATS)
        body = result.serialize(format=SOLUTION_FORMATS[media])
    else:
        media = _best(accept, SOLUTION_FORMATS)
        results_format = SOLUTION_FORMATS[media]
        body = solutions_json(result.variables, result)
        if results_format is not QRF.JSON:  # the other formats from the JSON, by pyoxigraph
            parsed = pyoxigraph.parse_query_results(body, format=QRF.JSON)
            body = parsed.serialize(format=results_format)
    charset = "" if media.endswith("json") else "; charset=utf-8"
    return body or b"", media + charset


def solutions_json(variables: list[pyoxigraph.Variable], rows: Iterable[Any]) -> bytes:
    """SPARQL 1.1 Query Results JSON of ``rows`` (QuerySolution), read one by one."""
    names = [v.value for v in variables]
    cache: dict[Any, bytes] = {}  # the same IRIs come back row after row
    parts: list[bytes] = []
    for row in rows:
        fields = []
        for name, term in zip(names, row, strict=True):
            if term is None:
                continue
            encoded = cache.get(term)
            if encoded is None:
                encoded = cache[term] = orjson.dumps(term_json(term))
                if len(cache) > 100_000:
                    cache.clear()
            fields.append(orjson.dumps(name) + b":" + encoded)
        parts.append(b"{" + b",".join(fields) + b"}")
    head = orjson.dumps({"vars": names})
    return b'{"head":' + head + b',"results":{"bindings":[' + b",".join(parts) + b"]}}"


def term_json(term: Any) -> dict[str, Any]:
    """One RDF term as SPARQL 1.1 (and 1.2, for triple terms) results JSON."""
    if isinstance(term, pyoxigraph.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, pyoxigraph.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, pyoxigraph.Literal):
        out: dict[str, Any] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
            direction = getattr(term, "direction", None)
            if direction is not None:
                out["its:dir"] = _direction(direction)
        elif term.datatype.value != _XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    if isinstance(term, pyoxigraph.Triple):
        return {
            "type": "triple",
            "value": {
                "subject": term_json(term.subject),
                "predicate": term_json(term.predicate),
                "object": term_json(term.object),
            },
        }
    raise ValueError(f"not an RDF term: {type(term).__name__}")


def _direction(direction: Any) -> str:
    text = str(getattr(direction, "name", direction)).lower()
    return "rtl" if "rtl" in text else "ltr"


def _best(accept: Any, formats: dict[str, Any]) -> str:
    if not accept or not accept.values() or accept.best == "*/*":
        return next(iter(formats))
    choice: str | None = accept.best_match(list(formats))
    if choice is None:  # werkzeug matches parameters too: "text/turtle; charset=utf-8"
        # finds no "text/turtle", though every format here is written in UTF-8
        bare = MIMEAccept([(value.partition(";")[0].strip(), q) for value, q in accept])
        choice = bare.best_match(list(formats))
    if choice is None:
        raise NotAcceptable(
            f"cannot produce any of {accept.to_header()}; available: {sorted(set(formats))}"
        )
    return choice
