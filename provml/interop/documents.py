"""W3C PROV in: formats, and import of documents into the graph (export:
:mod:`provml.interop.export`).

Import: PROV-JSON, PROV-XML and PROV-N are read with the ``prov`` package and turned into
quads from its PROV-O (:mod:`provml.interop.prov`, which also takes producers' quirks);
PROV-O in Turtle, TriG, N-Triples or N-Quads is parsed by pyoxigraph. Relative IRIs
resolve against the base given, else against the document's own
(``https://provml.dev/id/import/<sha256 of the document>/``), so that two documents'
``<#x>`` are two nodes. Then

* blank nodes become IRIs named by the document and what the node says
  (``https://provml.dev/id/import/<sha256 of the document>/<sha256 of the node>``): the store
  holds no blank nodes, and importing the same document twice adds nothing;
* every qualified relation also gets its plain triple (``prov:qualifiedUsage [prov:entity
  E]`` → ``prov:used E``, …, table ``QUALIFIED``): PROV-O written by ``prov`` carries a
  relation that has a time only in the qualified form, and lineage questions follow the
  plain properties;
* :meth:`Imported.record` keeps a copy of the document in its own named graph, with the
  prefixes it declared, so that it can be exported by itself and with its own prefixes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad, RdfFormat

from provml.core.errors import ValidationError
from provml.core.vocab import XSD
from provml.interop.terms import DOCUMENT_BASE, QUALIFIED, QUALIFIED_TERMS, SH
from provml.interop.yprov4ml import typed


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    prov: str | None = None  # the prov package's name for it; None: an RDF syntax
    rdf: RdfFormat | None = None
    label: str = ""


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("provn", "text/provenance-notation", ".provn", prov="provn", label="PROV-N"),
        Format("provjson", "application/json", ".json", prov="json", label="PROV-JSON"),
        Format("provxml", "application/xml", ".provx", prov="xml", label="PROV-XML"),
        Format("turtle", "text/turtle", ".ttl", rdf=RdfFormat.TURTLE, label="Turtle"),
        Format("ntriples", "application/n-triples", ".nt", rdf=RdfFormat.N_TRIPLES,
               label="N-Triples"),
        Format("nquads", "application/n-quads", ".nq", rdf=RdfFormat.N_QUADS, label="N-Quads"),
        Format("jsonld", "application/ld+json", ".jsonld", rdf=RdfFormat.JSON_LD,
               label="JSON-LD"),
        Format("trig", "application/trig", ".trig", rdf=RdfFormat.TRIG, label="TriG"),
    )
}  # fmt: skip
EXPORT_FORMATS = ("provn", "provjson", "provxml", "turtle", "ntriples", "jsonld", "trig")
IMPORT_FORMATS = ("provjson", "provxml", "provn", "turtle", "trig", "ntriples", "nquads")

_EXTENSIONS = {
    ".json": "provjson",
    ".provjson": "provjson",
    ".xml": "provxml",
    ".provx": "provxml",
    ".provn": "provn",
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".trig": "trig",
    ".nt": "ntriples",
    ".nq": "nquads",
}
_MEDIA_TYPES = {f.media_type: f.name for f in FORMATS.values()} | {
    "application/provenance+xml": "provxml",
    "text/xml": "provxml",
    "application/x-turtle": "turtle",
}


def format_named(name: str, allowed: Sequence[str]) -> Format:
    if name not in allowed:
        raise ValidationError(f"unknown format {name!r}; expected one of {', '.join(allowed)}")
    return FORMATS[name]


def guess_format(filename: str | None = None, media_type: str | None = None) -> str | None:
    """The import format for a file name (by extension) or a media type, if known."""
    if filename:
        for ext, name in _EXTENSIONS.items():
            if filename.lower().endswith(ext):
                return name
    if media_type:
        return _MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())
    return None


# ---- import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """A parsed document: its statements ready for the store (``quads``), its id (the
    SHA-256 of its bytes; given a base IRI, of its bytes and that IRI, since another base
    makes other statements), the base IRI its relative IRIs were resolved against, and
    the prefixes it declared."""

    quads: list[Quad]
    document: str
    base_iri: str
    prefixes: dict[str, str]

    @property
    def graph(self) -> NamedNode:
        """The named graph that keeps a copy of the document (export scope
        ``document``); bundles stay in their own named graphs."""
        return NamedNode(DOCUMENT_BASE + self.document)

    def record(self) -> list[Quad]:
        """The document's copy in its own named graph, with its prefix declarations."""
        g = self.graph
        out = [Quad(q.subject, q.predicate, q.object, g) for q in self.quads
               if isinstance(q.graph_name, DefaultGraph)]  # fmt: skip
        for name, ns in sorted(self.prefixes.items()):
            node = NamedNode(f"{g.value}#prefix-{quote(name, safe='')}")
            out += [
                Quad(g, SH.declare, node, g),
                Quad(node, SH.prefix, Literal(name), g),
                Quad(node, SH.namespace, Literal(ns, datatype=XSD.anyURI), g),
            ]
        return out


def default_base(sha256: str) -> str:
    """The base IRI of a document given none: its own, so that the relative IRIs of two
    documents (Taverna's ``<#taverna-prov-export>``) never name the same node."""
    return f"{DOCUMENT_BASE}{sha256}/"


def read_document(data: bytes, fmt: str, base_iri: str | None = None) -> list[Quad]:
    """Parse a PROV document into quads ready for the store (:func:`parse_document`)."""
    return parse_document(data, fmt, base_iri).quads


def parse_document(data: bytes, fmt: str, base_iri: str | None = None) -> Imported:
    """Parse a PROV document (see the module docstring). Relative IRIs resolve against
    ``base_iri``, else against the document's own base (:func:`default_base`).

    Raises :class:`ValidationError` with the parser's reason for anything unreadable.
    """
    spec = format_named(fmt, IMPORT_FORMATS)
    if not data.strip():
        raise ValidationError(f"empty {spec.label} document")
    doc_sha = hashlib.sha256(data).hexdigest()
    if base_iri is not None:
        check_iri(base_iri, "base IRI")
    base = base_iri or default_base(doc_sha)
    if spec.prov is not None:
        quads, prefixes = _read_prov(data, spec, base)
    else:
        assert spec.rdf is not None
        try:
            parser = ox.parse(data, format=spec.rdf, base_iri=base)
            quads = list(parser)
        except SyntaxError as exc:
            raise ValidationError(f"not a valid {spec.label} document: {exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"not a valid {spec.label} document: {exc}") from None
        prefixes = {k: v for k, v in parser.prefixes.items() if k}
    if not quads:
        raise ValidationError(f"the {spec.label} document holds no statements")
    quads = _skolemize(quads, doc_sha)
    doc_id = doc_sha
    if base_iri is not None:
        doc_id = hashlib.sha256(f"{doc_sha}\n{base_iri}".encode()).hexdigest()
    quads += plain_triples(quads) + typed(quads, prefixes)  # yProv4ML's types as provml's
    return Imported(quads, doc_id, base, prefixes)


def _read_prov(data: bytes, spec: Format, base: str) -> tuple[list[Quad], dict[str, str]]:
    from provml.interop import prov as interop_prov

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not a valid {spec.label} document: not UTF-8 ({exc})") from None
    return interop_prov.read(text, spec.prov or "", spec.label, base)


def check_iri(value: str, what: str) -> None:
    try:
        NamedNode(value)
    except ValueError as exc:
        raise ValidationError(f"invalid {what} {value!r}: {exc}") from None
    if ":" not in value:
        raise ValidationError(f"invalid {what} {value!r}: not absolute")


def _skolemize(quads: list[Quad], doc_sha: str, rounds: int = 3) -> list[Quad]:
    """Blank nodes → IRIs named by the document and by what the node says, its blank
    neighbours' descriptions included (``rounds`` steps out). Nodes that still look alike
    (the cells of a list of equal items) are told apart by order of first appearance."""
    edges: dict[str, list[tuple[str, str, str | None]]] = {}  # node → (dir+pred, term, bnode)
    order: dict[str, int] = {}
    for q in quads:
        for node, other, arrow in ((q.subject, q.object, ""), (q.object, q.subject, "^")):
            if isinstance(node, BlankNode):
                order.setdefault(node.value, len(order))
                blank = other.value if isinstance(other, BlankNode) else None
                edges.setdefault(node.value, []).append(
                    (f"{arrow}{q.predicate}", "_" if blank else str(other), blank)
                )
    if not edges:
        return quads
    sig = {n: "" for n in edges}
    for _ in range(rounds + 1):
        sig = {
            n: hashlib.sha256(
                "\n".join(sorted(f"{p} {t}{sig[b] if b else ''}" for p, t, b in es)).encode()
            ).hexdigest()
            for n, es in edges.items()
        }
    base = f"{DOCUMENT_BASE}{doc_sha}/"
    names: dict[str, NamedNode] = {}
    seen: dict[str, int] = {}
    for n in sorted(edges, key=order.__getitem__):
        k = seen.get(sig[n], 0)
        seen[sig[n]] = k + 1
        names[n] = NamedNode(base + sig[n] + (f"-{k}" if k else ""))

    def term(t: Any) -> Any:
        return names[t.value] if isinstance(t, BlankNode) else t

    return [Quad(term(q.subject), q.predicate, term(q.object), term(q.graph_name)) for q in quads]


def plain_triples(quads: Iterable[Quad]) -> list[Quad]:
    """The plain triple of every qualified relation (``prov:used E`` for
    ``prov:qualifiedUsage [prov:entity E]`` …), in the qualified relation's graph."""
    quads = list(quads)
    influencer: dict[tuple[Any, ...], Any] = {
        (q.subject, q.predicate, q.graph_name): q.object for q in quads
    }
    out = []
    for q in quads:
        if q.predicate in QUALIFIED_TERMS:
            via, plain = QUALIFIED_TERMS[q.predicate]
            target = influencer.get((q.object, via, q.graph_name))
            if target is not None:
                out.append(Quad(q.subject, plain, target, q.graph_name))
    return out


__all__ = [
    "DOCUMENT_BASE",
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "QUALIFIED",
    "Imported",
    "guess_format",
    "parse_document",
    "plain_triples",
    "read_document",
]
