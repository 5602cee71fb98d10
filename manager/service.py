"""The manager's work, apart from HTTP: check a batch, map it to RDF, write it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from manager.store.base import Store
from provml.core.mapping import batch_to_quads, derivation_update, deriving_executions
from provml.core.resolve import validate_resolved
from provml.core.wire import Batch


class Manager:
    """Applies batches to a store. Thread-safe; each batch is one atomic write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def apply_json(self, obj: Any) -> dict[str, Any]:
        """Validate a (resolved or plain) batch as decoded JSON, then apply it."""
        return self.apply(validate_resolved(obj))

    def metrics(self) -> list[tuple[str, str, float]]:
        with self._lock:
            counts = dict(self.counts)
        return [
            (f"provml_manager_{key}_total", "counter", float(counts.get(key, 0)))
            for key in ("batches", "records", "quads", "imports")
        ]

    def apply(self, batch: Batch) -> dict[str, Any]:
        """Write a resolved batch. Applying the same batch again changes nothing: every
        node is named by the record, so its quads are the same set."""
        started = time.perf_counter()
        quads = list(set(batch_to_quads(batch)))  # one batch often repeats a plan triple
        self.store.add(quads)
        derive = derivation_update(deriving_executions(batch))
        if derive is not None:
            self.store.update(derive)  # after the write: see derivation_update
        with self._lock:
            self.counts["batches"] += 1
            self.counts["records"] += len(batch.records)
            self.counts["quads"] += len(quads)
        return {
            "batch": batch.batch,
            "records": len(batch.records),
            "triples": len(quads),
            "seconds": round(time.perf_counter() - started, 6),
        }

    def import_document(self, data: bytes, fmt: str, base_iri: str | None) -> dict[str, Any]:
        """Parse a PROV document (:func:`provml.interop.parse_document`) and write it in
        one atomic write, with a copy in its own named graph (so that it can be exported
        by itself); a document that does not parse writes nothing."""
        from provml.interop.documents import parse_document

        started = time.perf_counter()
        doc = parse_document(data, fmt, base_iri)
        quads = list(set(doc.quads))
        self.store.add(quads + doc.record())
        with self._lock:
            self.counts["imports"] += 1
            self.counts["quads"] += len(quads)
        return {
            "format": fmt,
            "document": doc.document,
            "base": doc.base_iri,
            "triples": len(quads),
            "graphs": len({q.graph_name for q in quads}),
            "seconds": round(time.perf_counter() - started, 6),
        }
