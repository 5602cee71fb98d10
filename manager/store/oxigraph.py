"""The embedded pyoxigraph store (RocksDB on disk, or in memory for tests).

One ``extend`` per batch: pyoxigraph applies it in one transaction, so a batch lands
whole or not at all (FINDINGS: a failure midway adds nothing). Only one process may own
an on-disk store; every query goes through this object.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pyoxigraph
from pyoxigraph import Quad

from manager.store.base import Store
from provml.core.errors import QueryError, StoreError
from provml.core.sparql_text import syntax_message
from provml.core.vocab import PREFIXES


def _why(path: str | None, exc: OSError) -> str:
    """The likely reason a store could not be opened, as a hint for the message."""
    if path is None:
        return ""
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing.rstrip("/"))
    denied = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or "Permission denied" in str(
        exc
    )
    if denied or (existing and not os.access(existing, os.W_OK)):
        return (
            " (the data directory is not writable here: the embedded store writes to it even "
            "to read; give this user write access, or copy it somewhere writable)"
        )
    return " (is another provml process using this data directory?)"


class OxigraphStore(Store):
    def __init__(self, path: str | None) -> None:
        self.path = path
        #: writes so far: a query worker's read-only view older than this is reopened
        #: (query/workers.py)
        self.generation = 0
        self._flushed = (0, 0.0)  # (generation, monotonic time) of the last flush for readers
        self._flush_lock = threading.Lock()
        try:
            if path is None:
                self._store = pyoxigraph.Store()
            else:
                os.makedirs(path, exist_ok=True)
                self._store = pyoxigraph.Store(path)
        except OSError as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}{_why(path, exc)}") from exc

    @classmethod
    def from_url(cls, scheme: str, rest: str) -> OxigraphStore:
        if scheme == "memory":
            return cls(None)
        return cls(rest.removeprefix("//") or "provml-data/store")

    def add(self, quads: Sequence[Quad]) -> None:
        try:
            self._store.extend(quads)
            self.generation += 1
        except OSError as exc:
            raise StoreError(f"write failed: {exc}") from exc

    def query(self, sparql: str, **options: Any) -> Any:
        options.pop("timeout", None)  # pyoxigraph cannot stop a query: see query.limits
        try:
            return self._store.query(sparql, prefixes=PREFIXES, **options)
        except SyntaxError as exc:  # pyoxigraph's own message can mislead: see syntax_message
            raise QueryError(
                f"SPARQL syntax error: {syntax_message(sparql, str(exc), PREFIXES)}"
            ) from None
        except OSError as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def bulk_load(self, nquads: bytes) -> None:
        """Load N-Quads with pyoxigraph's bulk loader: fast, not one transaction (for
        ``provml ingest --data-dir``, where no one reads meanwhile)."""
        try:
            self._store.bulk_load(nquads, format=pyoxigraph.RdfFormat.N_QUADS)
            self.generation += 1
        except OSError as exc:
            raise StoreError(f"write failed: {exc}") from exc

    def update(self, sparql: str) -> None:
        try:
            self._store.update(sparql, prefixes=PREFIXES)
            self.generation += 1
        except SyntaxError as exc:
            raise QueryError(f"SPARQL update syntax error: {exc}") from None
        except OSError as exc:
            raise StoreError(f"update failed: {exc}") from exc

    def flush_for_readers(self, interval: float = 1.0) -> None:
        """Flush what was written since the last flush, at most every ``interval``
        seconds: a read-only view (query/workers.py) replays the unflushed write-ahead log
        when it opens, 3.3 s after 300,000 unflushed triples, 10 ms after a flush."""
        if self.path is None or self._flushed[0] == self.generation:
            return
        with self._flush_lock:
            generation, at = self._flushed
            now = time.monotonic()
            if generation == self.generation or now - at < interval:
                return
            current = self.generation
            try:
                self._store.flush()
            except OSError as exc:
                raise StoreError(f"flush failed: {exc}") from exc
            self._flushed = (current, now)

    def count(self) -> int:
        return len(self._store)

    def compact(self) -> bool:
        """Compact the RocksDB files (pyoxigraph's ``optimize``). The bulk loader leaves
        its data in many unmerged files, and lookups then visit each: on the 8-million-
        triple benchmark store, compaction halved the named questions' latency
        (bench/QUERY.md). What ``add`` writes, RocksDB merges as it goes. About a second
        per million triples on a 2-core machine."""
        if self.path is None:
            return False
        try:
            self._store.optimize()
        except OSError as exc:
            raise StoreError(f"compaction failed: {exc}") from exc
        return True

    def close(self) -> None:
        if self.path is not None:
            self._store.flush()

    def describe(self) -> str:
        return f"embedded pyoxigraph at {self.path}" if self.path else "in-memory pyoxigraph"
