"""The SPARQL 1.1 Service Description of the endpoint (W3C Recommendation, 2013): what
``GET /sparql`` without a query answers, as RDF, so that clients and crawlers can learn
what the endpoint speaks without asking it anything.

It is written from what the endpoint does, not read from the store: SPARQL 1.1 Query
only (updates are refused), no federation (SERVICE is refused, so no
``sd:BasicFederatedQuery``), the result formats :mod:`query.results` produces, and the
Graph Store Protocol's read side at ``/store``. The store's named graphs are not listed:
listing them means reading every quad of a large store, on every request of a crawler.
"""

from __future__ import annotations

from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from provml import __version__

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
RDF_TYPE = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDFS_LABEL = NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
RDFS_COMMENT = NamedNode("http://www.w3.org/2000/01/rdf-schema#comment")

#: the prefixes its Turtle and RDF/XML are written with
PREFIXES = {"sd": SD, "formats": FORMATS, "rdfs": "http://www.w3.org/2000/01/rdf-schema#"}
#: the W3C format IRIs (http://www.w3.org/ns/formats/) of what query.results writes
RESULT_FORMATS = (
    "SPARQL_Results_JSON",
    "SPARQL_Results_XML",
    "SPARQL_Results_CSV",
    "SPARQL_Results_TSV",
    "Turtle",
    "N-Triples",
    "RDF_XML",
    "JSON-LD",
)


def sd(term: str) -> NamedNode:
    return NamedNode(SD + term)


def describe(endpoint: str, graph_store: str | None = None) -> list[Triple]:
    """The description of the endpoint at ``endpoint`` (the URL clients use, which the
    description must name as its ``sd:endpoint``); ``graph_store``: the URL of the
    Graph Store Protocol's read side, if served."""
    service = NamedNode(endpoint)
    dataset, default_graph = BlankNode(), BlankNode()
    triples = [
        Triple(service, RDF_TYPE, sd("Service")),
        Triple(service, sd("endpoint"), service),
        Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        Triple(service, RDFS_LABEL, Literal(f"provml {__version__} SPARQL endpoint")),
        Triple(
            service,
            RDFS_COMMENT,
            Literal(
                "Read-only: updates, and federated queries (SERVICE), are refused."
                + (f" Graphs can be read whole at {graph_store}?graph=IRI" if graph_store else "")
            ),
        ),
        Triple(service, sd("defaultDataset"), dataset),
        Triple(dataset, RDF_TYPE, sd("Dataset")),
        Triple(dataset, sd("defaultGraph"), default_graph),
        Triple(default_graph, RDF_TYPE, sd("Graph")),
    ]
    triples += [
        Triple(service, sd("resultFormat"), NamedNode(FORMATS + name)) for name in RESULT_FORMATS
    ]
    return triples
