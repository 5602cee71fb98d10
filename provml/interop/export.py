"""Export: a subgraph of the store as a W3C PROV or RDF document.

A subgraph — everything, one entity's lineage, one run, every run of a workflow, one
imported document — is collected by following links from seed nodes with SPARQL (so it
works on any store). It is written as Turtle, N-Triples, JSON-LD or TriG by pyoxigraph,
or as PROV-JSON, PROV-XML or PROV-N by ``prov`` (from the PROV-O).

Every export leaves out the plain triple that repeats a qualified relation
(``prov:used E`` next to ``prov:qualifiedUsage [prov:entity E]``, which import adds): a
PROV reader would otherwise see each such relation twice. Qualified relations go out
whole (their id, influencer, activity, generation, usage, role, time) or the export is
refused, naming why. In the PROV formats, a statement about a node that is no PROV
entity, activity, agent or relation has no place: by default it is left out and counted
in :class:`Exported`; with ``strict`` the export is refused instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox
from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Quad, RdfFormat

from provml.core.errors import CannotExpress, NotFound, ValidationError
from provml.core.hashprefix import expand
from provml.core.queryable import Queryable
from provml.core.vocab import PROV, PROVML
from provml.interop.documents import EXPORT_FORMATS, check_iri, format_named, plain_triples
from provml.interop.prefixes import prefixes_for
from provml.interop.terms import DOCUMENT_BASE, QUALIFIED, SH

#: links followed from every node in an export: the parts of a record (every qualified
#: relation with what it names, associations, plans with their declared parameters and
#: roles, parameter values, agents)
PART_LINKS = (
    PROV.used, PROV.wasAssociatedWith, PROV.hadPlan, PROV.agent, PROV.hadRole, PROV.entity,
    PROV.activity, PROV.influencer, PROV.hadActivity, PROV.hadGeneration, PROV.hadUsage,
    PROVML.valueOf, PROVML.hasParameter, PROVML.hasInput, PROVML.hasOutput, PROVML.partOf,
    PROV.wasAttributedTo, PROV.actedOnBehalfOf, *(PROV[q] for q in QUALIFIED),
)  # fmt: skip
#: links followed upstream in a lineage export
LINEAGE_LINKS = (PROV.wasGeneratedBy, PROV.wasDerivedFrom, PROV.wasInformedBy,
                 PROV.hadPrimarySource, PROV.wasRevisionOf, PROV.wasQuotedFrom)  # fmt: skip

SCOPES = ("all", "lineage", "run", "workflow", "document")
_BATCH = 400
#: how many of the statements left out an export names
SAMPLE = 3


@dataclass
class Exported:
    """An export: the document, and what it could not hold (``unexpressed`` statements,
    a few of them in ``sample`` as N-Triples lines)."""

    data: bytes
    unexpressed: int = 0
    sample: list[str] = field(default_factory=list)

    def summary(self, label: str) -> str:
        """One line saying what was left out, for a header or stderr."""
        return (
            f"{self.unexpressed} statements cannot be expressed in {label} and were left "
            "out (about nodes that are no PROV entity, activity, agent or relation, or a "
            f"literal where PROV wants a node; e.g. {' ; '.join(self.sample)}); the RDF "
            "formats hold them, --strict / ?strict=true refuses instead"
        )


def collect(store: Queryable, scope: str, ident: str | None = None) -> list[Quad]:
    """The triples of a subgraph of ``store`` (a :class:`manager.store.Store`).

    ``all``: every triple. ``lineage``: what entity ``ident`` (a model, a dataset, a
    prediction, any entity) was made from, all the way up. ``run``: a workflow execution
    ``ident`` with its tasks, sections, what they used and generated, and metrics.
    ``workflow``: every run of the workflow named ``ident``. ``document``: one imported
    document, named by the SHA-256 of its bytes (what import answered), as imported.
    """
    if scope not in SCOPES:
        raise ValidationError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if scope == "all":
        result = store.query("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        return [Quad(t.subject, t.predicate, t.object, DefaultGraph()) for t in result]
    if not ident:
        raise ValidationError(f"the {scope} scope needs an identifier")
    if scope == "document":
        return _document(store, ident)
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


def _document(store: Queryable, ident: str) -> list[Quad]:
    """An imported document's statements, from the copy import keeps in its named graph
    (the document's bundles are their own named graphs, as imported)."""
    digest = ident.strip().lower().removeprefix(DOCUMENT_BASE)
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValidationError(
            f"a document is named by the SHA-256 of its bytes (64 hex digits), as import "
            f"answers it, not {ident!r}"
        )
    graph = NamedNode(DOCUMENT_BASE + digest)
    quads = [
        Quad(s, p, o, DefaultGraph())
        for s, p, o in store.query(f"SELECT ?s ?p ?o WHERE {{ GRAPH {graph} {{ ?s ?p ?o }} }}")
        if not (isinstance(s, NamedNode) and s.value.startswith(graph.value + "#prefix-"))
        and p != SH.declare
    ]
    if not quads:
        raise_not_found("document", ident)
    bundles = {q.subject for q in quads if q.predicate == _RDF_TYPE and q.object == _BUNDLE
               and isinstance(q.subject, NamedNode)}  # fmt: skip
    for bundle in bundles:
        text = f"SELECT ?s ?p ?o WHERE {{ GRAPH {bundle} {{ ?s ?p ?o }} }}"
        quads += [Quad(s, p, o, bundle) for s, p, o in store.query(text)]
    return quads


def declared_prefixes(store: Queryable) -> dict[str, str]:
    """The prefixes imported documents declared (kept by import), name → namespace."""
    text = (
        f"SELECT ?name ?ns WHERE {{ GRAPH ?g {{ ?d {SH.declare} ?x . "
        f"?x {SH.prefix} ?name ; {SH.namespace} ?ns }} }}"
    )
    out: dict[str, str] = {}
    for name, ns in store.query(text):
        out.setdefault(name.value, ns.value)
    return out


def _node(ident: str) -> NamedNode:
    from provml.core.ids import ref_iri

    try:
        iri = ref_iri(ident)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    check_iri(iri, "IRI")
    return NamedNode(iri)


def _values(store: Queryable, sparql: str, bound: dict[str, Any]) -> list[NamedNode]:
    block = " ".join(f"?{k}" for k in bound), " ".join(str(v) for v in bound.values())
    text = sparql.replace("WHERE {", f"WHERE {{ VALUES ({block[0]}) {{ ({block[1]}) }}", 1)
    return [row[0] for row in store.query(text) if isinstance(row[0], NamedNode)]


def _exists(store: Queryable, node: NamedNode) -> bool:
    return bool(store.query(f"ASK {{ {{ {node} ?p ?o }} UNION {{ ?s ?p {node} }} }}"))


def _run_executions(store: Queryable, runs: list[NamedNode]) -> list[NamedNode]:
    """The runs and every execution part of them."""
    nodes: list[NamedNode] = []
    for run in runs:
        nodes.append(run)
        nodes += _values(store, "SELECT ?x WHERE { ?x provml:partOf+ ?run }", {"run": run})
    return nodes


def _linked(store: Queryable, nodes: list[NamedNode], pattern: str) -> list[NamedNode]:
    """Every ``?x`` of ``pattern`` for ``?a`` among ``nodes``."""
    found = []
    for i in range(0, len(nodes), _BATCH):
        terms = " ".join(str(n) for n in nodes[i : i + _BATCH])
        text = f"SELECT DISTINCT ?x WHERE {{ VALUES ?a {{ {terms} }} {pattern} }}"
        found += [row[0] for row in store.query(text) if isinstance(row[0], NamedNode)]
    return found


Keep = Callable[[Any, Any, Any], bool]


def _own_run(store: Queryable, executions: list[NamedNode]) -> Keep:
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
    store: Queryable, seeds: list[NamedNode], links: set[NamedNode], keep: Keep | None = None
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


# ---- writing ------------------------------------------------------------------------------


def write(quads: list[Quad], fmt: str, prefixes: dict[str, str] | None = None) -> bytes:
    """Serialise exported quads in one of :data:`EXPORT_FORMATS`, refusing
    (:class:`CannotExpress`) whatever a PROV format cannot hold whole."""
    return export(quads, fmt, strict=True, prefixes=prefixes).data


def export(
    quads: list[Quad],
    fmt: str,
    *,
    strict: bool = False,
    prefixes: dict[str, str] | None = None,
) -> Exported:
    """Serialise exported quads in one of :data:`EXPORT_FORMATS`.

    ``prefixes``: the documents' own prefix declarations (:func:`declared_prefixes`),
    used for the namespaces they cover. In PROV-N, PROV-JSON and PROV-XML, statements
    about nodes that are no PROV record are left out and counted (``strict``: refused);
    a qualified relation that cannot go out whole is always refused.
    """
    spec = format_named(fmt, EXPORT_FORMATS)
    repeated = set(plain_triples(quads))
    kept = [q for q in quads if q not in repeated]
    if spec.rdf is not None:
        if not spec.rdf.supports_datasets:
            kept = [q for q in kept if isinstance(q.graph_name, DefaultGraph)]
        data = ox.serialize(
            kept if spec.rdf.supports_datasets else [q.triple for q in kept],
            format=spec.rdf,
            prefixes=prefixes_for(kept, prefixes, made=False)
            if spec.rdf is not RdfFormat.N_TRIPLES
            else None,
        )
        return Exported(data or b"")
    kept, left_out = _expressible(kept, spec.label, strict)
    try:
        text: str = _to_prov(kept, prefixes_for(kept, prefixes)).serialize(format=spec.prov)
    except Exception as exc:  # prov raises anything while decoding PROV-O
        reason = str(exc).strip() or "(no message)"
        raise CannotExpress(
            f"the prov package cannot express this graph in {spec.label}: "
            f"{type(exc).__name__}: {reason[:300]} (Turtle, TriG, N-Triples and JSON-LD "
            "exports hold every triple)"
        ) from None
    return Exported(text.encode("utf-8"), len(left_out), [_line(q) for q in left_out[:SAMPLE]])


def _line(q: Quad) -> str:
    """A statement as one ASCII line (fit for an HTTP header)."""
    text = f"{q.subject} {q.predicate} {q.object}"
    return text.encode("ascii", "backslashreplace").decode("ascii")[:300]


_RDF_TYPE = NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_ENTITY, _ROLE, _BUNDLE = PROV["Entity"], PROV["Role"], PROV["Bundle"]
#: qualified property → the relation class its object belongs to (PROV-O ranges)
_RELATION_CLASS = {PROV[q]: PROV[q.removeprefix("qualified")] for q in QUALIFIED}
#: PROV-O's domains and ranges that name an element: property → (class of its subject,
#: class of its object); a node said to be used is an entity even where untyped
_DOMAIN_RANGE: dict[NamedNode, tuple[str | None, str | None]] = {
    PROV[p]: (d, r)
    for names, d, r in (
        ("used wasStartedBy wasEndedBy generated invalidated", "Activity", "Entity"),
        ("wasInformedBy", "Activity", "Activity"),
        ("wasAssociatedWith", "Activity", "Agent"),
        ("startedAtTime endedAtTime", "Activity", None),
        ("wasGeneratedBy wasInvalidatedBy", "Entity", "Activity"),
        ("wasDerivedFrom wasRevisionOf wasQuotedFrom hadPrimarySource alternateOf "
         "specializationOf", "Entity", "Entity"),
        ("wasAttributedTo", "Entity", "Agent"),
        ("generatedAtTime invalidatedAtTime", "Entity", None),
        ("actedOnBehalfOf", "Agent", "Agent"),
    )
    for p in names.split()
}  # fmt: skip
#: PROV properties whose value is a node: a literal there has no PROV-DM spelling
_NODE_PROPERTIES = {p for p, (_, r) in _DOMAIN_RANGE.items() if r} | {*_RELATION_CLASS} | {
    PROV.entity, PROV.activity, PROV.agent, PROV.influencer, PROV.hadActivity,
    PROV.hadGeneration, PROV.hadUsage, PROV.hadPlan,
}  # fmt: skip


def _implied_types(quads: list[Quad], typed: set[tuple[Any, Any, Any]]) -> list[Quad]:
    """The element classes PROV-O's domains and ranges give untyped nodes (Taverna
    leaves its export activity untyped, with only its start and end times): without
    them ``prov`` would drop what is said of the node. Only nodes with something said
    of them besides relations: a document that relates untyped nodes comes back as it
    was. Adds what it makes to ``typed``."""
    described = {(q.subject, q.graph_name) for q in quads if q.predicate not in _NODE_PROPERTIES}
    out = []
    for q in quads:
        domain, range_ = _DOMAIN_RANGE.get(q.predicate, (None, None))
        if isinstance(q.object, Literal):
            range_ = None
        for node, cls in ((q.subject, domain), (q.object, range_)):
            if cls is None or (node, q.graph_name) not in described:
                continue
            assert isinstance(node, NamedNode | BlankNode)  # a subject
            if (node, q.graph_name, PROV[cls]) not in typed:
                out.append(Quad(node, _RDF_TYPE, PROV[cls], q.graph_name))
                typed.add((node, q.graph_name, PROV[cls]))
    return out


def _expressible(quads: list[Quad], label: str, strict: bool) -> tuple[list[Quad], list[Quad]]:
    """The quads ``prov`` reads as PROV records, relations and their attributes, and
    those it would drop. Refuses what would lose part of a relation.

    PROV-DM has no element for a PROV-O ``prov:Role`` (provml's plan parameters, inputs
    and outputs are such nodes): they go out as entities that keep their ``prov:type``s.
    A relation node without its class gets the class its qualified property implies (it
    would otherwise become an attribute of its subject)."""
    typed = {(q.subject, q.graph_name, q.object) for q in quads if q.predicate == _RDF_TYPE}
    kept = list(quads)
    kept += _implied_types(quads, typed)
    kept += [
        Quad(q.subject, _RDF_TYPE, _ENTITY, q.graph_name)
        for q in quads
        if q.predicate == _RDF_TYPE and q.object == _ROLE
        and (q.subject, q.graph_name, _ENTITY) not in typed
    ]  # fmt: skip
    for q in quads:
        cls = _RELATION_CLASS.get(q.predicate)
        if (
            cls is not None and isinstance(q.object, NamedNode | BlankNode)
            and (q.object, q.graph_name, cls) not in typed
        ):  # fmt: skip
            kept.append(Quad(q.object, _RDF_TYPE, cls, q.graph_name))
            typed.add((q.object, q.graph_name, cls))
    _check_relations(kept, label)
    left_out = _unexpressed(kept)
    if left_out and strict:
        shown = ", ".join(sorted({str(q.subject) for q in left_out})[:SAMPLE])
        raise CannotExpress(
            f"the prov package would leave out {len(left_out)} triples about nodes that are "
            f"no PROV entity, activity, agent or relation (e.g. {shown}); without strict "
            f"the {label} export leaves them out and says how many"
        )
    dropped = set(left_out)
    return [q for q in kept if q not in dropped], left_out


def _check_relations(quads: list[Quad], label: str) -> None:
    """Refuse a relation that ``prov`` would not write whole: one relation id given to
    several relations (PROV-O makes them one node; ``prov`` would keep one of them), or
    a qualified property pointing at an entity, activity or agent."""
    owners: dict[tuple[Any, Any], set[tuple[Any, Any]]] = {}
    for q in quads:
        if q.predicate in _RELATION_CLASS:
            owners.setdefault((q.object, q.graph_name), set()).add((q.subject, q.predicate))
    for (node, _), uses in owners.items():
        if len(uses) > 1:
            said = ", ".join(sorted(f"{s} {p}" for s, p in uses)[:SAMPLE])
            raise CannotExpress(
                f"relation {node} is the id of {len(uses)} relations ({said}): {label} "
                "gives each relation its own id, and prov would keep only one of them "
                "(the RDF formats hold every triple)"
            )
    elements = {PROV["Entity"], PROV["Activity"], PROV["Agent"]}
    for q in quads:
        if (
            q.predicate == _RDF_TYPE and q.object in elements
            and (q.subject, q.graph_name) in owners
        ):  # fmt: skip
            raise CannotExpress(
                f"{q.subject} is both a relation and a {q.object}: "
                f"{label} cannot say both (the RDF formats hold every triple)"
            )


def _unexpressed(quads: list[Quad]) -> list[Quad]:
    """The quads ``prov``'s PROV-O reader would drop: about a node without a PROV class
    (PROV_BASE_CLS: entity, activity, agent, the relations …), other than a relation
    triple (RELATION_MAP) — it ignores them, or warns about their types — and a
    non-PROV property whose name holds "qualified" pointing at a record (``prov``
    takes it for a qualified relation and fails)."""
    from prov.constants import PROV_BASE_CLS
    from prov.serializers.provrdf import RELATION_MAP

    classes = {NamedNode(c.uri) for c in PROV_BASE_CLS}
    # (prov:asInBundle is read with the prov:mentionOf of the same subject)
    relations = {NamedNode(str(p)) for p in RELATION_MAP} | {PROV["asInBundle"]}
    records = {(q.subject, q.graph_name) for q in quads
               if q.predicate == _RDF_TYPE and q.object in classes}  # fmt: skip
    return [
        q for q in quads
        if (q.predicate in _NODE_PROPERTIES and isinstance(q.object, Literal)) or (
            (q.subject, q.graph_name) not in records
            and (q.predicate == _RDF_TYPE or q.predicate not in relations)
            # the influencer of a qualified relation, which names the relation node
            and not (q.predicate in _RELATION_CLASS and (q.object, q.graph_name) in records)
        ) or (
            "qualified" in q.predicate.value and q.predicate not in _RELATION_CLASS
            and (q.object, q.graph_name) in records
        )
    ]  # fmt: skip


def _to_prov(quads: list[Quad], prefixes: dict[str, str]) -> Any:
    """A ``prov`` document from PROV-O quads that it can read whole."""
    from prov.model import ProvDocument
    from prov.serializers.provrdf import ProvRDFSerializer
    from rdflib import Dataset, URIRef

    trig = ox.serialize(quads, format=RdfFormat.TRIG, prefixes=prefixes) or b""

    # prov compacts an IRI with the first namespace that starts it: the longest first
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[1]))

    class Container(Dataset):
        def namespaces(self) -> Any:  # the document's own (rdflib binds two dozen more)
            return iter((name, URIRef(iri)) for name, iri in ordered)

    container = Container(default_union=True)
    container.parse(data=trig.decode(), format="trig")
    document = ProvDocument()
    ProvRDFSerializer(document).decode_document(container, document)
    return document


__all__ = [
    "SCOPES",
    "Exported",
    "collect",
    "declared_prefixes",
    "export",
    "write",
]
