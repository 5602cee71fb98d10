"""Keeping a store's lineage index (:mod:`provml.core.lineage_index`): when a store is
first opened, after each write, and rebuilt on demand."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from pyoxigraph import DefaultGraph, NamedNode, Quad

from manager.store.base import Store
from provml.core import lineage_index
from provml.core.vocab import PROV, PROVML, RDF_NS

log = logging.getLogger("provml.manager")

_EDGES = (PROV.wasDerivedFrom, PROV.wasInfluencedBy)
_TYPE = NamedNode(RDF_NS + "type")


class Index:
    """The lineage index of one store, as one writer keeps it.

    Opened on a store that holds no derivation edge yet, the index is complete (there is
    no pair to write) and is marked so after the first write that adds edges; a store
    that holds edges but no mark was written without it (an older store): the questions
    walk, as before, until ``provml reindex`` builds it (:func:`rebuild`). The mark is
    not written on an empty store, which then shows no named graph of provml's own."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: complete | pending (complete, the mark not written yet) | missing | not kept,
        #: or unknown until :meth:`prepare` asks the store (not at start: a manager
        #: starts before its SPARQL server is reachable)
        self.state = "unknown" if store.keeps_lineage_index else "not kept"

    def prepare(self) -> None:
        """Learn the index's state from the store, once, before this writer's first
        write (after it, the writer's own edges would make a fresh store look old)."""
        if self.state != "unknown":
            return
        if bool(self.store.query(lineage_index.IS_MARKED)):
            self.state = "complete"
        elif bool(self.store.query(lineage_index.HAS_EDGES)):
            self.state = "missing"
            log.warning(
                "this store was written without a lineage index: was-used and "
                "downstream walk the graph (slower, the same answers) until "
                "`provml reindex` builds it"
            )
        else:
            self.state = "pending"

    def maintain(
        self,
        executions: Iterable[str] = (),
        quads: Iterable[Quad] = (),
        models: Iterable[str] = (),
    ) -> int:
        """Keep the index after a write that committed: ``executions`` that may have
        gained derivation edges, the written ``quads`` (their derivation edges and
        ``Model`` types in the default graph) and ``models`` (nodes the write typed
        ``Model``, when it was not given as quads). The number of updates run."""
        if self.state == "not kept":
            return 0
        self.prepare()  # (a caller that did not: at worst "missing", and the walks)
        entities: set[str] = set()
        models = set(models)
        for q in quads:
            if not isinstance(q.graph_name, DefaultGraph):
                continue
            if q.predicate in _EDGES or (q.predicate == _TYPE and q.object == PROVML.Model):
                if not isinstance(q.subject, NamedNode):
                    return self._unnamed(q.subject)
                (entities if q.predicate in _EDGES else models).add(q.subject.value)
        try:
            runs = lineage_index.upkeep(
                lambda text: self.store.query(text), self.store.update, executions, entities, models
            )
        except lineage_index.Unnamed as exc:
            return self._unnamed(exc)
        if runs and self.state == "pending":
            self.store.update(lineage_index.MARK_UPDATE)
            self.state = "complete"
        return runs

    def _unnamed(self, what: object) -> int:
        """A derivation edge from a blank node (provml writes none: imports name them):
        no update can start a walk there, so the index no longer speaks for the store."""
        self.store.update(lineage_index.UNMARK_UPDATE)
        self.state = "missing"
        log.warning("%s: the lineage index is dropped until `provml reindex`; was-used and "
                    "downstream walk", what)  # fmt: skip
        return 0


def rebuild(store: Store, progress: Callable[[str], None] | None = None) -> None:
    """Build the whole index of ``store`` anew and mark it complete (a rebuild cut short
    leaves no mark: the questions walk)."""
    for what, update in lineage_index.rebuild_updates():
        if progress is not None:
            progress(what)
        store.update(update)
