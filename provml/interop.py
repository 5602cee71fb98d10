"""W3C PROV in and out: import documents into the graph, export subgraphs from it.

Import: PROV-JSON, PROV-XML and PROV-N are read with the ``prov`` package and turned into
PROV-O by it; PROV-O in Turtle, TriG, N-Triples or N-Quads is parsed by pyoxigraph. Then

* blank nodes become IRIs named by the document and what the node says
  (``https://provml.dev/id/import/<sha256 of the document>/<sha256 of the node>``): the store
  holds no blank nodes, and importing the same document twice adds nothing;
* every qualified relation also gets its plain triple (``prov:qualifiedUsage [prov:entity
  E]`` → ``prov:used E``, …, table ``QUALIFIED``): PROV-O written by ``prov`` carries a
  relation that has a time only in the qualified form, and lineage questions follow the
  plain properties.

Export: a subgraph — everything, one model's (or any entity's) lineage, one run, every
run of a workflow — is collected by following links from seed nodes with SPARQL (so it
works on any store) and written as Turtle, N-Triples, JSON-LD or TriG by pyoxigraph, or
as PROV-JSON, PROV-XML or PROV-N by ``prov`` (from the PROV-O, without the plain triples
that duplicate a qualified relation, so that ``prov`` reads each relation once).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox
from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad, RdfFormat

from provml.errors import CannotExpress, NotFound, ValidationError
from provml.hashprefix import expand
from provml.vocab import ID_BASE, PREFIXES, PROV, PROV_NS, PROVML


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

#: qualified property → (property of the qualified node naming the influencer, plain property)
QUALIFIED: dict[str, tuple[str, str]] = {
    "qualifiedUsage": ("entity", "used"),
    "qualifiedGeneration": ("activity", "wasGeneratedBy"),
    "qualifiedInvalidation": ("activity", "wasInvalidatedBy"),
    "qualifiedAssociation": ("agent", "wasAssociatedWith"),
    "qualifiedAttribution": ("agent", "wasAttributedTo"),
    "qualifiedDelegation": ("agent", "actedOnBehalfOf"),
    "qualifiedDerivation": ("entity", "wasDerivedFrom"),
    "qualifiedRevision": ("entity", "wasRevisionOf"),
    "qualifiedQuotation": ("entity", "wasQuotedFrom"),
    "qualifiedPrimarySource": ("entity", "hadPrimarySource"),
    "qualifiedCommunication": ("activity", "wasInformedBy"),
    "qualifiedStart": ("entity", "wasStartedBy"),
    "qualifiedEnd": ("entity", "wasEndedBy"),
    "qualifiedInfluence": ("influencer", "wasInfluencedBy"),
}
_QUALIFIED = {PROV[q]: (PROV[via], PROV[plain]) for q, (via, plain) in QUALIFIED.items()}


def read_document(data: bytes, fmt: str, base_iri: str | None = None) -> list[Quad]:
    """Parse a PROV document into quads ready for the store (see the module docstring).

    Raises :class:`ValidationError` with the parser's reason for anything unreadable.
    """
    spec = format_named(fmt, IMPORT_FORMATS)
    if not data.strip():
        raise ValidationError(f"empty {spec.label} document")
    if base_iri is not None:
        _check_iri(base_iri, "base IRI")
    rdf_format = spec.rdf
    doc_sha = hashlib.sha256(data).hexdigest()
    if spec.prov is not None:
        data = _prov_to_trig(data, spec)
        rdf_format = RdfFormat.TRIG
    assert rdf_format is not None
    try:
        quads = list(ox.parse(data, format=rdf_format, base_iri=base_iri))
    except SyntaxError as exc:
        hint = ""
        if "absolute IRI" in str(exc) and base_iri is None:
            hint = " (the document has relative IRIs: give a base IRI to resolve them)"
        raise ValidationError(f"not a valid {spec.label} document: {exc}{hint}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not a valid {spec.label} document: {exc}") from None
    if not quads:
        raise ValidationError(f"the {spec.label} document holds no statements")
    quads = _skolemize(quads, doc_sha)
    return quads + _plain_triples(quads)


def _check_iri(value: str, what: str) -> None:
    try:
        NamedNode(value)
    except ValueError as exc:
        raise ValidationError(f"invalid {what} {value!r}: {exc}") from None
    if ":" not in value:
        raise ValidationError(f"invalid {what} {value!r}: not absolute")


_DOCTYPE = re.compile(r"<!\s*DOCTYPE|<!\s*ENTITY", re.IGNORECASE)


def _prov_to_trig(data: bytes, spec: Format) -> bytes:
    from prov.model import ProvDocument

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not a valid {spec.label} document: not UTF-8 ({exc})") from None
    if spec.name == "provxml" and _DOCTYPE.search(text):
        # PROV-XML needs no DTD; one could declare entities that read local files (the
        # prov package's parser does not resolve them, but the refusal does not rely on it)
        # or expand without bound
        raise ValidationError(
            f"{spec.label} documents with a DTD (<!DOCTYPE …>) are refused: provml reads no "
            "entity declarations"
        )
    try:
        doc = ProvDocument.deserialize(content=text, format=spec.prov or "")
    except Exception as exc:  # prov raises anything from its parsers
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ValidationError(
            f"not a valid {spec.label} document: {type(exc).__name__}: {reason}"
        ) from None
    if not doc.records and not doc.bundles:
        raise ValidationError(f"the {spec.label} document holds no records")
    try:
        trig = str(doc.serialize(format="rdf", rdf_format="trig"))
    except Exception as exc:  # anything from prov
        raise ValidationError(
            f"{spec.label} document read, but it cannot be expressed in PROV-O: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return trig.encode("utf-8")


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
    base = f"{ID_BASE}import/{doc_sha}/"
    names: dict[str, NamedNode] = {}
    seen: dict[str, int] = {}
    for n in sorted(edges, key=order.__getitem__):
        k = seen.get(sig[n], 0)
        seen[sig[n]] = k + 1
        names[n] = NamedNode(base + sig[n] + (f"-{k}" if k else ""))

    def term(t: Any) -> Any:
        return names[t.value] if isinstance(t, BlankNode) else t

    return [Quad(term(q.subject), q.predicate, term(q.object), term(q.graph_name)) for q in quads]


def _plain_triples(quads: Iterable[Quad]) -> list[Quad]:
    """The plain triple of every qualified relation (``prov:used E`` for
    ``prov:qualifiedUsage [prov:entity E]`` …), in the qualified relation's graph."""
    quads = list(quads)
    influencer: dict[tuple[Any, ...], Any] = {
        (q.subject, q.predicate, q.graph_name): q.object for q in quads
    }
    out = []
    for q in quads:
        if q.predicate in _QUALIFIED:
            via, plain = _QUALIFIED[q.predicate]
            target = influencer.get((q.object, via, q.graph_name))
            if target is not None:
                out.append(Quad(q.subject, plain, target, q.graph_name))
    return out


# ---- export -------------------------------------------------------------------------------

#: links followed from every node in an export: the parts of a record (qualified relations,
#: associations, plans with their declared parameters and roles, parameter values, agents)
PART_LINKS = (
    PROV.qualifiedUsage, PROV.qualifiedGeneration, PROV.qualifiedAssociation, PROV.used,
    PROV.wasAssociatedWith, PROV.hadPlan, PROV.agent, PROV.hadRole, PROV.entity,
    PROV.activity, PROVML.valueOf, PROVML.hasParameter, PROVML.hasInput, PROVML.hasOutput,
    PROVML.partOf, PROV.wasAttributedTo, PROV.actedOnBehalfOf,
)  # fmt: skip
#: links followed upstream in a lineage export
LINEAGE_LINKS = (PROV.wasGeneratedBy, PROV.wasDerivedFrom, PROV.wasInformedBy,
                 PROV.hadPrimarySource, PROV.wasRevisionOf, PROV.wasQuotedFrom)  # fmt: skip

SCOPES = ("all", "lineage", "run", "workflow")
_BATCH = 400


def collect(store: Any, scope: str, ident: str | None = None) -> list[Quad]:
    """The triples of a subgraph of ``store`` (a :class:`manager.store.Store`).

    ``all``: every triple. ``lineage``: what entity ``ident`` (a model, a dataset, a
    prediction, any entity) was made from, all the way up. ``run``: a workflow execution
    ``ident`` with its tasks, sections, what they used and generated, and metrics.
    ``workflow``: every run of the workflow named ``ident``.
    """
    if scope not in SCOPES:
        raise ValidationError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if scope == "all":
        result = store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        return [Quad(t.subject, t.predicate, t.object, DefaultGraph()) for t in result]
    if not ident:
        raise ValidationError(f"the {scope} scope needs an identifier")
    links = set(PART_LINKS)
    if scope == "lineage":
        seeds = [_node(expand(store, ident))]  # a unique hash prefix names its data
        links |= set(LINEAGE_LINKS)
        if not _exists(store, seeds[0]):
            raise_not_found(scope, ident)
        return _closure(store, seeds, links)
    if scope == "run":
        runs = [_node(ident)]
    else:
        runs = _values(
            store,
            "SELECT ?run WHERE { ?run provml:name ?name . "
            "FILTER EXISTS { ?run a provml:WorkflowExecution } }",
            {"name": Literal(ident)},
        )
    if not runs or not _exists(store, runs[0]):
        raise_not_found(scope, ident)
    executions = _run_executions(store, runs)
    seeds = executions + _linked(store, executions, "?x prov:wasGeneratedBy ?a")
    return _closure(store, seeds, links, _own_run(store, executions))


def raise_not_found(scope: str, ident: str) -> None:
    raise NotFound(f"nothing in the graph for {scope} {ident!r}")


def _node(ident: str) -> NamedNode:
    from provml.ids import ref_iri

    try:
        iri = ref_iri(ident)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    _check_iri(iri, "IRI")
    return NamedNode(iri)


def _values(store: Any, sparql: str, bound: dict[str, Any]) -> list[NamedNode]:
    block = " ".join(f"?{k}" for k in bound), " ".join(str(v) for v in bound.values())
    text = sparql.replace("WHERE {", f"WHERE {{ VALUES ({block[0]}) {{ ({block[1]}) }}", 1)
    return [row[0] for row in store.query(text) if isinstance(row[0], NamedNode)]


def _exists(store: Any, node: NamedNode) -> bool:
    return bool(store.query(f"ASK {{ {{ {node} ?p ?o }} UNION {{ ?s ?p {node} }} }}"))


def _run_executions(store: Any, runs: list[NamedNode]) -> list[NamedNode]:
    """The runs and every execution part of them."""
    nodes: list[NamedNode] = []
    for run in runs:
        nodes.append(run)
        nodes += _values(store, "SELECT ?x WHERE { ?x provml:partOf+ ?run }", {"run": run})
    return nodes


def _linked(store: Any, nodes: list[NamedNode], pattern: str) -> list[NamedNode]:
    """Every ``?x`` of ``pattern`` for ``?a`` among ``nodes``."""
    found = []
    for i in range(0, len(nodes), _BATCH):
        terms = " ".join(str(n) for n in nodes[i : i + _BATCH])
        text = f"SELECT DISTINCT ?x WHERE {{ VALUES ?a {{ {terms} }} {pattern} }}"
        found += [row[0] for row in store.query(text) if isinstance(row[0], NamedNode)]
    return found


Keep = Callable[[Any, Any, Any], bool]


def _own_run(store: Any, executions: list[NamedNode]) -> Keep:
    """A filter keeping a run's export to what that run touched.

    Data are named by content, so one data node may also have been generated, or derived
    from other data, by other runs: its triples linking it to those (``wasGeneratedBy``,
    ``qualifiedGeneration``, derivations) would pull other runs' executions into this
    run's export. Kept: generations by this run, derivations from what this run used.
    """
    mine = set(executions)
    generations = set(_linked(store, executions, "?x prov:activity ?a"))
    used = set(_linked(store, executions, "?a prov:used ?x"))
    allowed = {
        PROV.wasGeneratedBy: mine,
        PROV.qualifiedGeneration: generations,
        PROV.wasDerivedFrom: used,
        PROV.wasInfluencedBy: used,
    }

    def keep(s: Any, p: Any, o: Any) -> bool:
        own = allowed.get(p)
        return own is None or s in mine or o in own

    return keep


def _closure(
    store: Any, seeds: list[NamedNode], links: set[NamedNode], keep: Keep | None = None
) -> list[Quad]:
    seen: set[NamedNode] = set()
    frontier = list(dict.fromkeys(seeds))
    out: list[Quad] = []
    while frontier:
        seen.update(frontier)
        found: list[NamedNode] = []
        for i in range(0, len(frontier), _BATCH):
            terms = " ".join(str(n) for n in frontier[i : i + _BATCH])
            text = f"SELECT ?s ?p ?o WHERE {{ VALUES ?s {{ {terms} }} ?s ?p ?o }}"
            for s, p, o in store.query(text):
                if keep is not None and not keep(s, p, o):
                    continue
                out.append(Quad(s, p, o, DefaultGraph()))
                if p in links and isinstance(o, NamedNode) and o not in seen:
                    found.append(o)
        frontier = list(dict.fromkeys(n for n in found if n not in seen))
    return out


def write(quads: list[Quad], fmt: str) -> bytes:
    """Serialise exported quads in one of :data:`EXPORT_FORMATS`."""
    spec = format_named(fmt, EXPORT_FORMATS)
    if spec.rdf is not None:
        if not spec.rdf.supports_datasets:
            quads = [q for q in quads if isinstance(q.graph_name, DefaultGraph)]
        data = ox.serialize(
            quads if spec.rdf.supports_datasets else [q.triple for q in quads],
            format=spec.rdf,
            prefixes=PREFIXES if spec.rdf is not RdfFormat.N_TRIPLES else None,
        )
        return data or b""
    try:
        text: str = _to_prov(quads).serialize(format=spec.prov)
    except Exception as exc:  # prov raises anything while decoding PROV-O
        raise CannotExpress(
            f"the prov package cannot express this graph in {spec.label}: "
            f"{type(exc).__name__}: {str(exc)[:300]} (Turtle, TriG, N-Triples and JSON-LD "
            "exports hold every triple)"
        ) from None
    return text.encode("utf-8")


def _to_prov(quads: list[Quad]) -> Any:
    """A ``prov`` document from PROV-O quads, each relation once (see the module docstring).

    PROV-DM has no element for a PROV-O ``prov:Role`` (provml's plan parameters, inputs and
    outputs are such nodes): they go out as entities that keep their ``prov:type``s. Any
    other triple ``prov`` would leave out (:func:`_unexpressed`) makes the export refused
    (422) rather than silently incomplete."""
    from prov.model import ProvDocument
    from prov.serializers.provrdf import ProvRDFSerializer
    from rdflib import Dataset, URIRef

    repeated = set(_plain_triples(quads))
    kept = [q for q in quads if q not in repeated]
    elements = {(q.subject, q.graph_name) for q in kept if q.predicate == _RDF_TYPE
                and q.object == _ENTITY}  # fmt: skip
    kept += [
        Quad(q.subject, _RDF_TYPE, _ENTITY, q.graph_name)
        for q in kept
        if q.predicate == _RDF_TYPE and q.object == _ROLE
        and (q.subject, q.graph_name) not in elements
    ]  # fmt: skip
    left_out = _unexpressed(kept)
    if left_out:
        shown = ", ".join(sorted({str(q.subject) for q in left_out})[:3])
        raise CannotExpress(
            f"the prov package would leave out {len(left_out)} triples about nodes that are "
            f"no PROV entity, activity, agent or relation (e.g. {shown})"
        )
    # prov names everything by qualified names: declare a prefix for every namespace
    prefixes = _prefixes(kept)
    trig = ox.serialize(kept, format=RdfFormat.TRIG, prefixes=prefixes) or b""

    class Container(Dataset):
        def namespaces(self) -> Any:  # the document's own (rdflib binds two dozen more)
            return iter((name, URIRef(iri)) for name, iri in prefixes.items())

    container = Container(default_union=True)
    container.parse(data=trig.decode(), format="trig")
    document = ProvDocument()
    ProvRDFSerializer(document).decode_document(container, document)
    return document


def _unexpressed(quads: list[Quad]) -> list[Quad]:
    """The quads ``prov``'s PROV-O reader would drop: about a node without a PROV class
    (PROV_BASE_CLS: entity, activity, agent, the relations …), other than a relation
    triple (RELATION_MAP) — it ignores them, or warns about their types."""
    from prov.constants import PROV_BASE_CLS
    from prov.serializers.provrdf import RELATION_MAP

    classes = {NamedNode(c.uri) for c in PROV_BASE_CLS}
    # (prov:asInBundle is read with the prov:mentionOf of the same subject)
    relations = {NamedNode(str(p)) for p in RELATION_MAP} | {PROV["asInBundle"]}
    records = {(q.subject, q.graph_name) for q in quads
               if q.predicate == _RDF_TYPE and q.object in classes}  # fmt: skip
    return [
        q for q in quads
        if (q.subject, q.graph_name) not in records
        and (q.predicate == _RDF_TYPE or q.predicate not in relations)
        # the influencer of a qualified relation, which names the relation node
        and not (q.predicate.value.startswith(PROV_NS + "qualified")
                 and (q.object, q.graph_name) in records)
    ]  # fmt: skip


_RDF_TYPE = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_ENTITY, _ROLE = PROV["Entity"], PROV["Role"]


def _prefixes(quads: list[Quad]) -> dict[str, str]:
    """A prefix for every namespace the quads use: provml's own names, else ns1, ns2 …"""
    ours = {iri: name for name, iri in PREFIXES.items()}
    known: dict[str, str] = {}
    n = 0
    for q in quads:
        for t in (q.subject, q.predicate, q.object, q.graph_name):
            if not isinstance(t, NamedNode):
                continue
            cut = max(t.value.rfind("#"), t.value.rfind("/"))
            ns = t.value[: cut + 1]
            if cut > 0 and ns not in known.values() and t.value[cut + 1 :]:
                if ns in ours:
                    known[ours[ns]] = ns
                else:
                    n += 1
                    known[f"ns{n}"] = ns
    return known


__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "QUALIFIED",
    "SCOPES",
    "collect",
    "guess_format",
    "read_document",
    "write",
]
