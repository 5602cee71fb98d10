"""Serialising query results by content negotiation (SPARQL 1.1 Protocol §2.1)."""

from __future__ import annotations

from typing import Any

import pyoxigraph
from pyoxigraph import QueryResultsFormat as QRF
from pyoxigraph import RdfFormat

from provml.errors import NotAcceptable
from provml.vocab import PREFIXES

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


def negotiate(result: Any, accept: Any) -> tuple[bytes, str]:
    """Serialise ``result`` in the best format ``accept`` (werkzeug MIMEAccept) allows."""
    if isinstance(result, pyoxigraph.QueryTriples):
        media = _best(accept, GRAPH_FORMATS)
        fmt = GRAPH_FORMATS[media]
        if fmt in (RdfFormat.TURTLE, RdfFormat.RDF_XML):
            body = pyoxigraph.serialize(result, format=fmt, prefixes=PREFIXES)
        else:
            body = result.serialize(format=fmt)
    else:
        media = _best(accept, SOLUTION_FORMATS)
        body = result.serialize(format=SOLUTION_FORMATS[media])
    charset = "" if media.endswith("json") else "; charset=utf-8"
    return body or b"", media + charset


def _best(accept: Any, formats: dict[str, Any]) -> str:
    if not accept or not accept.values() or accept.best == "*/*":
        return next(iter(formats))
    choice: str | None = accept.best_match(list(formats))
    if choice is None:
        raise NotAcceptable(
            f"cannot produce any of {accept.to_header()}; available: {sorted(set(formats))}"
        )
    return choice
