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

from collections.abc import Callable, Iterable, Sequence
from typing import Any

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


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    rows = " ".join(f"({NamedNode(c)} {NamedNode(e)})" for c, e in sorted(set(pairs)))
    return f"VALUES (?c ?e) {{ {rows} }}"


def _insert(relation: str, where: str) -> str:
    return (
        f"INSERT {{ GRAPH provml:lineageIndex {{ ?d provml:{relation} ?r }} }} WHERE {{ {where} }}"
    )


class Unnamed(ValueError):
    """A derivation edge from a node with no IRI: an update cannot start a walk there."""


def upkeep(
    select: Callable[[str], Iterable[Sequence[Any]]],
    update: Callable[[str], None],
    executions: Iterable[str] = (),
    entities: Iterable[str] = (),
    models: Iterable[str] = (),
) -> int:
    """Keep the index after a write that committed; the number of updates run.

    ``executions`` whose outputs may have gained derivation edges
    (:func:`provml.core.mapping.derivation_update`'s), ``entities`` that may have gained
    edges themselves (a PROV document's), ``models`` newly typed ``provml:Model``: the
    *touched* nodes. ``select`` runs a SELECT on the store (rows of terms), ``update`` an
    update, each as its own transaction, after the write committed (module docstring).

    Each touched node walks up to its raw ancestors (a pair for itself); then each node
    not touched but derived from a touched one walks down from there (a pair for
    everything below it). That covers every new path: from a node ``d`` down such a path
    to a raw ``r``, the last touched node on it is either ``d`` itself or just above an
    untouched node that ``d`` descends from. Data written in order touch no node with
    descendants, so the second walk is empty; a bulk load's chains are all touched, so no
    node is walked down more than once. Raises :class:`Unnamed` for an edge from a blank
    node (provml writes none)."""
    touched = set(entities) | set(models)
    if executions:
        outputs = f"SELECT ?e WHERE {{ {_values('x', executions)} ?e prov:wasGeneratedBy ?x }}"
        touched.update(_named(row[0]) for row in select(outputs))
    if not touched:
        return 0
    runs = 0
    for update_up in _up(_values("d", touched)):
        update(update_up)
        runs += 1
    below: dict[bool, set[tuple[str, str]]] = {True: set(), False: set()}  # derived?
    text = (
        f"SELECT ?c ?e ?link WHERE {{ {_values('e', touched)} ?c ?link ?e . "
        f"VALUES ?link {{ {_DERIVED} prov:wasInfluencedBy }} }}"
    )
    for c, e, link in select(text):
        child = _named(c)
        if child not in touched:
            below[False].add((child, e.value))
            if link.value.endswith("#wasDerivedFrom"):
                below[True].add((child, e.value))
    for relation, links, raw, model in _RELATIONS:
        pairs = below[links == _DERIVED]
        if pairs:
            where = f"{_pairs(pairs)} ?e {links}+ ?r . {raw} ?d {links}* ?c ." + (
                " ?d a provml:Model ." if model else ""
            )
            update(_insert(relation, where))
            runs += 1
    return runs


def _named(term: Any) -> str:
    if not isinstance(term, NamedNode):
        raise Unnamed(f"a derivation edge from {term}, which has no IRI")
    return term.value


#: (index relation, links walked, raw condition, models only)
_RELATIONS = (
    ("descendsFrom", _DERIVED, _RAW_DERIVED, False),
    ("modelDescendsFrom", _DERIVED, _RAW_DERIVED, True),
    ("affectedBy", _ANY, _RAW_ANY, False),
)


#: the ASK that tells whether the index may be marked complete without a rebuild: the
#: default graph holds no derivation edge, so there is no pair to write
HAS_EDGES = "ASK { ?s prov:wasDerivedFrom|prov:wasInfluencedBy ?o }"
IS_MARKED = f"ASK {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"
MARK_UPDATE = f"INSERT DATA {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"
UNMARK_UPDATE = f"DELETE DATA {{ GRAPH provml:lineageIndex {{ {MARK} }} }}"


def _up(nodes: str) -> list[str]:
    """For each relation, the update pairing the nodes ``?d`` (bound by ``nodes``, a
    VALUES block, or every node when empty) with their raw ancestors."""
    return [
        _insert(
            relation, f"{nodes} ?d {links}+ ?r . {raw}" + (" ?d a provml:Model ." if model else "")
        )
        for relation, links, raw, model in _RELATIONS
    ]


def rebuild_updates() -> list[tuple[str, str]]:
    """(what, update) pairs that build the whole index anew, then mark it complete (the
    mark is written last: a rebuild cut short leaves no mark, and the questions walk)."""
    return [
        ("dropping the old index", "DROP SILENT GRAPH provml:lineageIndex"),
        *((f"writing provml:{r[0]}", text) for r, text in zip(_RELATIONS, _up(""), strict=True)),
        ("marking it complete", MARK_UPDATE),
    ]
