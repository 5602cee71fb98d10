"""The manager's work, apart from HTTP: check a batch, map it to RDF, write it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pyoxigraph import Quad

from manager import lineage
from manager.openlineage import Join, mapped_parts, settle_update
from manager.store.base import Store
from provml.core.errors import ValidationError
from provml.core.mapping import batch_to_quads, derivation_update, deriving_executions
from provml.core.resolve import validate_resolved
from provml.core.wire import Batch


@dataclass(frozen=True)
class Mapped:
    """A resolved batch and its quads (see :meth:`Manager.map`)."""

    batch: Batch
    quads: set[Quad]
    executions: list[str]
    #: OpenLineage datasets with a location (joined by place with capture_lib's data)
    datasets: tuple[str, ...] = ()
    #: OpenLineage runs (settled after the write: see manager.openlineage.SETTLE)
    runs: tuple[str, ...] = ()


class Manager:
    """Applies batches to a store. Thread-safe; each batch, or group of batches, is one
    atomic write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.lineage = lineage.Index(store)
        self.join = Join(store)

    def apply_json(self, obj: Any) -> dict[str, Any]:
        """Validate a (resolved or plain) batch as decoded JSON, then apply it."""
        return self.apply_many([self.load_json(obj)])[0]

    def load_json(self, obj: Any) -> Batch | Mapped:
        """A queued body, decoded: a resolved batch (checked), or an OpenLineage event
        (checked and mapped: docs/openlineage.md)."""
        if isinstance(obj, dict) and "openlineage" in obj and "records" not in obj:
            key, quads, runs, datasets = mapped_parts(obj)
            return Mapped(Batch(key, "", []), quads, runs, tuple(datasets), tuple(runs))
        return validate_resolved(obj)

    def metrics(self) -> list[tuple[str, str, float]]:
        with self._lock:
            counts = dict(self.counts)
        # 1 when was-used and downstream may read the lineage index, 0 when they walk
        # (an older store until `provml reindex`, or a store where it is not kept)
        complete = float(self.lineage.state in ("complete", "pending"))
        return [
            *(
                (f"provml_manager_{key}_total", "counter", float(counts.get(key, 0)))
                for key in ("batches", "records", "quads", "imports", "writes")
            ),
            ("provml_manager_lineage_index_complete", "gauge", complete),
        ]

    def apply(self, batch: Batch) -> dict[str, Any]:
        """Write a resolved batch. Applying the same batch again changes nothing: every
        node is named by the record, so its quads are the same set."""
        return self.apply_many([batch])[0]

    def apply_many_json(self, objs: list[Any]) -> list[dict[str, Any]]:
        """Validate several resolved batches as decoded JSON (any invalid: nothing is
        written), then apply them in one write."""
        if not objs:
            raise ValidationError("an empty list of batches")
        return self.apply_many([self.load_json(obj) for obj in objs])

    @staticmethod
    def map(batch: Batch) -> Mapped:
        """A resolved batch mapped, ready for :meth:`apply_many`: a caller may map in its
        own thread while another batch is written (the store's write releases the GIL)."""
        return Mapped(batch, set(batch_to_quads(batch)), deriving_executions(batch))

    def apply_many(self, batches: list[Batch | Mapped]) -> list[dict[str, Any]]:
        """Write resolved batches (or batches :meth:`map` mapped) in one atomic write
        (group commit: one transaction and one derivation update instead of one each),
        then their derivation edges; the answer for each as :meth:`apply` gives it. A
        refused group writes nothing."""
        started = time.perf_counter()
        mapped = [one if isinstance(one, Mapped) else self.map(one) for one in batches]
        quads = mapped[0].quads if len(mapped) == 1 else set().union(*(m.quads for m in mapped))
        self.lineage.prepare()
        self.store.add(list(quads))
        settle = settle_update(r for one in mapped for r in one.runs)
        if settle is not None:
            self.store.update(settle)
        executions: set[str] = set()
        for one in mapped:
            executions.update(one.executions)
        joined, more = self.join.quads(  # OpenLineage's datasets by place: docs/openlineage.md
            (
                r["id"]
                for one in mapped
                for r in one.batch.records
                if r["kind"] in ("task_start", "task_end")
            ),
            (d for one in mapped for d in one.datasets),
        )
        if joined:
            self.store.add(joined)
            quads = quads | set(joined)
            executions |= more
        derive = derivation_update(sorted(executions))
        if derive is not None:
            self.store.update(derive)  # after the write: see derivation_update
        # after the edges committed, each update its own transaction: see
        # provml.core.lineage_index (why the index stays exact with several managers)
        self.lineage.maintain(executions, quads)
        seconds = round(time.perf_counter() - started, 6)
        with self._lock:
            self.counts["batches"] += len(mapped)
            self.counts["records"] += sum(len(one.batch.records) for one in mapped)
            self.counts["quads"] += sum(len(one.quads) for one in mapped)
            self.counts["writes"] += 1
        return [
            {"batch": one.batch.batch, "records": len(one.batch.records),
             "triples": len(one.quads), "seconds": seconds}
            for one in mapped
        ]  # fmt: skip

    def import_document(self, data: bytes, fmt: str, base_iri: str | None) -> dict[str, Any]:
        """Parse a PROV document (:func:`provml.interop.parse_document`) and write it in
        one atomic write, with a copy in its own named graph (so that it can be exported
        by itself); a document that does not parse writes nothing."""
        from provml.interop.documents import parse_document

        started = time.perf_counter()
        doc = parse_document(data, fmt, base_iri)
        quads = list(set(doc.quads))
        self.lineage.prepare()
        self.store.add(quads + doc.record())
        self.lineage.maintain((), quads)
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
