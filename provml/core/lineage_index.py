"""The lineage index: which raw sources each entity descends from, kept as data is written.

``was-used`` and ``downstream`` of a raw file read by hundreds of runs would otherwise
walk every node below it (≈ 7 µs a node on pyoxigraph, ≈ 40 nodes a run: bench/QUERY.md).
With the index they start from the answer's own rows. It lives in one named graph,
:data:`GRAPH`, apart from the provenance itself (which questions, exports and the Graph
Store's ``?default`` read), and holds:

* ``?e provml:descendsFrom ?r`` — ``?e prov:wasDerivedFrom+ ?r`` and ``?r`` has no
  ``prov:wasDerivedFrom`` of its own (``?r`` was raw when the pair was written);
* ``?m provml:modelDescendsFrom ?r`` — the same, for ``?m`` typed ``provml:Model``;
* ``?e provml:affectedBy ?r`` — over ``prov:wasDerivedFrom|prov:wasInfluencedBy``, with
  ``?r`` having neither (what ``downstream`` walks);
* ``GRAPH provml:lineageIndex { provml:lineageIndex provml:complete true }`` — the mark
  that every pair above exists for every raw node of the default graph. A question uses
  the index only under the mark, and only for a source that is raw *now*
  (:func:`guard`); otherwise it walks, as it always did.

**Why it is exact.** Edges are only ever added (the query service refuses updates). A
pair is written only for a path that exists, so no pair is false; a pair for a node that
later gains a parent is never consulted (the node is no longer raw). No pair is missing:
for every write that adds edges, :func:`maintain` runs *after* that write commits, in
its own transaction, and walks the graph (never the index) from each node that gained
an edge: up to its raw ancestors, down to everything below it. For a path from ``d`` to
a raw ``r``, the maintenance of whichever of its edges (or of ``d``'s ``Model`` type)
was committed last sees the whole path, so it writes ``(d, r)`` — whatever the order of
batches, and with any number of managers writing one store at once.

Only a store that held no derivation edge when provml first opened it carries the mark
(:func:`mark_update`); an older store gets it from ``provml reindex``
(:func:`rebuild_updates`). The text here is SPARQL 1.1 for any store; provml keeps the
index on stores that run the standard questions (not Virtuoso's dialect).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyoxigraph import NamedNode

from provml.core.vocab import PROVML

#: the named graph of the index (and the subject of its completeness mark)
GRAPH = PROVML.lineageIndex
DESCENDS = PROVML.descendsFrom
MODEL_DESCENDS = PROVML.modelDescendsFrom
AFFECTED = PROVML.affectedBy

#: the mark (a triple pattern in GRAPH, for a query's group)
MARK = "provml:lineageIndex provml:complete true"

_DERIVED = "prov:wasDerivedFrom"
_ANY = "(prov:wasDerivedFrom|prov:wasInfluencedBy)"
_RAW_DERIVED = "FILTER NOT EXISTS { ?r prov:wasDerivedFrom ?up }"
_RAW_ANY = "FILTER NOT EXISTS { ?r prov:wasDerivedFrom|prov:wasInfluencedBy ?up }"


def guard(links: str) -> str:
    """The group a question's ``# when:`` uses: the mark, and ``?source`` raw over
    ``links`` (``derived`` or ``any``)."""
    raw = {"derived": _DERIVED, "any": f"{_DERIVED}|prov:wasInfluencedBy"}[links]
    return f"GRAPH provml:lineageIndex {{ {MARK} }} FILTER NOT EXISTS {{ ?source {raw} ?up }}"


def _values(var: str, nodes: Iterable[str]) -> str:
    terms = " ".join(sorted({str(NamedNode(n)) for n in nodes}))
    return f"VALUES ?{var} {{ {terms} }}" if terms else ""


def maintain(
    executions: Iterable[str] = (), entities: Iterable[str] = (), models: Iterable[str] = ()
) -> list[str]:
    """The updates that keep the index for a write (run each after the write committed,
    as its own update): ``executions`` whose outputs may have gained derivation edges
    (:func:`provml.core.mapping.derivation_update`'s), ``entities`` that may have gained
    such edges themselves (a PROV document's), ``models`` newly typed ``provml:Model``.
    Empty when there is nothing to do. IRIs are checked NamedNodes."""
    start = []
    by_execution = _values("execution", executions)
    if by_execution:
        start.append(f"{by_execution} ?e prov:wasGeneratedBy ?execution .")
    by_entity = _values("e", entities)
    if by_entity:
        start.append(by_entity)
    out = []
    for group in start:
        out.append(
            "INSERT { GRAPH provml:lineageIndex { ?d provml:descendsFrom ?r } } "
            f"WHERE {{ {group} ?e {_DERIVED}+ ?r . {_RAW_DERIVED} ?d {_DERIVED}* ?e . }}"
        )
        out.append(
            "INSERT { GRAPH provml:lineageIndex { ?d provml:modelDescendsFrom ?r } } "
            f"WHERE {{ {group} ?e {_DERIVED}+ ?r . {_RAW_DERIVED} ?d {_DERIVED}* ?e . "
            "?d a provml:Model . }"
        )
        out.append(
            "INSERT { GRAPH provml:lineageIndex { ?d provml:affectedBy ?r } } "
            f"WHERE {{ {group} ?e {_ANY}+ ?r . {_RAW_ANY} ?d {_ANY}* ?e . }}"
        )
    by_model = _values("d", models)
    if by_model:
        out.append(
            "INSERT { GRAPH provml:lineageIndex { ?d provml:modelDescendsFrom ?r } } "
            f"WHERE {{ {by_model} ?d a provml:Model . ?d {_DERIVED}+ ?r . {_RAW_DERIVED} }}"
        )
    return out


#: the ASK that tells whether the index may be marked complete without a rebuild: the
#: default graph holds no derivation edge, so there is no pair to write
HAS_EDGES = "ASK { ?s prov:wasDerivedFrom|prov:wasInfluencedBy ?o }"
IS_MARKED = f"ASK {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"
MARK_UPDATE = f"INSERT DATA {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"
UNMARK_UPDATE = f"DELETE DATA {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"


def rebuild_updates() -> list[str]:
    """The updates that build the whole index anew, then mark it complete (the mark is
    written last: a rebuild cut short leaves no mark, and the questions walk)."""
    return [
        "DROP SILENT GRAPH provml:lineageIndex",
        "INSERT { GRAPH provml:lineageIndex { ?d provml:descendsFrom ?r } } "
        f"WHERE {{ ?d {_DERIVED}+ ?r . {_RAW_DERIVED} }}",
        "INSERT { GRAPH provml:lineageIndex { ?d provml:modelDescendsFrom ?r } } "
        f"WHERE {{ ?d a provml:Model . ?d {_DERIVED}+ ?r . {_RAW_DERIVED} }}",
        "INSERT { GRAPH provml:lineageIndex { ?d provml:affectedBy ?r } } "
        f"WHERE {{ ?d {_ANY}+ ?r . {_RAW_ANY} }}",
        MARK_UPDATE,
    ]
