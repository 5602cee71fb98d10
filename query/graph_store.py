"""The read side of the SPARQL 1.1 Graph Store HTTP Protocol, indirect identification:
``GET``/``HEAD`` of ``?graph=IRI`` (a named graph) or ``?default`` (the default graph).

A named graph exists when it holds a triple: a store keeps no empty named graphs, so one
that holds none is 404 like one never written. The default graph always exists (an empty
one is 200 with no triples). A graph is read through the request's limits
(:mod:`query.limits`): one larger than ``PROVML_QUERY_MAX_ROWS`` triples is refused
(422), never cut short. Writes are refused by the routes (405, :class:`query.errors.ReadOnly`).
"""

from __future__ import annotations

from typing import Any

from pyoxigraph import NamedNode

from provml.core.errors import NotFound, ValidationError
from query.limits import GuardedStore
from query.results import negotiate

#: the parameters of a Graph Store request
PARAMETERS = ("graph", "default")


def is_graph_request(params: dict[str, list[str]]) -> bool:
    """Whether a request without a query names a graph (a Graph Store request)."""
    return any(name in params for name in PARAMETERS)


def target(params: dict[str, list[str]]) -> NamedNode | None:
    """The graph a request names: its IRI, or None for the default graph. Exactly one of
    ``graph=IRI`` (given once) and ``default`` (with no value); nothing else."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ValidationError(
            f"unknown parameters {unknown}: a graph is read with ?graph=IRI or ?default"
        )
    if "graph" in params and "default" in params:
        raise ValidationError("name one graph: ?graph=IRI or ?default, not both")
    if "graph" not in params and "default" not in params:
        raise ValidationError(
            "name the graph to read: ?graph=IRI, or ?default for the default graph"
        )
    if "default" in params:
        if any(params["default"]):
            raise ValidationError("?default takes no value")
        return None
    values = params["graph"]
    if len(values) != 1:
        raise ValidationError(f"the graph parameter must be given once, got {len(values)}")
    try:
        return NamedNode(values[0])
    except ValueError as exc:
        raise ValidationError(f"invalid graph IRI {values[0]!r}: {exc}") from None


def read(st: GuardedStore, graph: NamedNode | None, accept: Any) -> tuple[bytes, str]:
    """The graph's triples in the format ``accept`` asks for (Turtle by default)."""
    if graph is None:
        # the store's own default graph: with no dataset given, pyoxigraph and SPARQL
        # servers alike evaluate the pattern there
        return negotiate(st.query("CONSTRUCT WHERE { ?s ?p ?o }"), accept)
    iri = f"<{graph.value}>"  # a NamedNode's value holds no '>' (pyoxigraph checks it)
    if not st.query(f"ASK {{ GRAPH {iri} {{ ?s ?p ?o }} }}"):
        raise NotFound(f"no graph named {graph.value} in the store")
    construct = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {iri} {{ ?s ?p ?o }} }}"
    return negotiate(st.query(construct), accept)
