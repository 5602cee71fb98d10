"""Namespaces and the terms of the provml (PROV-ML) vocabulary, as constants.

The ontology itself is ``provml/ontology/provml.ttl``; ``tests/provml/test_ontology.py``
checks that every term the mapping emits is declared there.
"""

from __future__ import annotations

from importlib import resources

from pyoxigraph import NamedNode

PROV_NS = "http://www.w3.org/ns/prov#"
PROVML_NS = "https://provml.dev/ns#"
MLS_NS = "http://www.w3.org/ns/mls#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS_NS = "http://www.w3.org/2000/01/rdf-schema#"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
DCT_NS = "http://purl.org/dc/terms/"

#: Where the instances live: executions, data values and plans.
ID_BASE = "https://provml.dev/id/"

PREFIXES: dict[str, str] = {
    "prov": PROV_NS,
    "provml": PROVML_NS,
    "mls": MLS_NS,
    "rdf": RDF_NS,
    "rdfs": RDFS_NS,
    "xsd": XSD_NS,
    "dcterms": DCT_NS,
}


class Namespace:
    """Attribute access to the terms of one namespace: ``PROV.used``."""

    def __init__(self, base: str) -> None:
        self._base = base

    def __getattr__(self, name: str) -> NamedNode:
        """Called once per term: the term is then kept as an attribute (the mapping looks
        terms up ~3 times per triple)."""
        if name.startswith("_"):
            raise AttributeError(name)
        term = NamedNode(self._base + name)
        object.__setattr__(self, name, term)
        return term

    def __getitem__(self, name: str) -> NamedNode:
        term: NamedNode = getattr(self, name)
        return term


PROV = Namespace(PROV_NS)
PROVML = Namespace(PROVML_NS)
RDF = Namespace(RDF_NS)
RDFS = Namespace(RDFS_NS)
XSD = Namespace(XSD_NS)

RDF_TYPE = RDF.type


def sparql_prefixes() -> str:
    """The PREFIX lines for every namespace above, for query text."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())


def ontology_turtle() -> str:
    """The text of the provml ontology (Turtle)."""
    return resources.files("provml").joinpath("ontology/provml.ttl").read_text("utf-8")
