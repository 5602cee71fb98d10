"""The lineage index kept as the benchmarks build their stores (shared by bench/query.py
and bench/query_deep.py, which write with bare pyoxigraph rather than the manager)."""

from __future__ import annotations

import pyoxigraph

from provml.core import lineage_index, vocab


def keep_lineage_index(
    store: pyoxigraph.Store, executions: list[str], quads: list[pyoxigraph.Quad]
) -> None:
    """What the manager does for the lineage index after a write
    (:class:`manager.lineage.Index`), on a bare pyoxigraph store; marked complete (the
    store was empty when the build began)."""
    rdf_type, model = pyoxigraph.NamedNode(vocab.RDF_NS + "type"), vocab.PROVML.Model
    models = {q.subject.value for q in quads if q.predicate == rdf_type and q.object == model}
    lineage_index.upkeep(
        lambda text: store.query(text, prefixes=vocab.PREFIXES),
        lambda text: store.update(text, prefixes=vocab.PREFIXES),
        executions,
        (),
        models,
    )
    store.update(lineage_index.MARK_UPDATE, prefixes=vocab.PREFIXES)
