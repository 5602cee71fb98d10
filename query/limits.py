"""Time and size limits for every query request: SPARQL, questions, records, exports.

A request's work runs in a thread of its own, through a :class:`GuardedStore` that hands
out results checked row by row; the request thread waits for it at most
``timeout`` seconds (``PROVML_QUERY_TIMEOUT``) from the moment it arrived. What that
means, exactly:

* The client always has its answer by the deadline: the result, or 503
  ``query_timeout``. Waiting for a free slot counts too.
* On an embedded on-disk store with query workers (``PROVML_QUERY_WORKERS``, the
  default), each query is evaluated in a worker process that is killed at the deadline
  or past its memory budget (:mod:`query.workers`): the evaluation stops at once and its
  CPU and memory are returned.
* Otherwise (no workers, an in-memory store) pyoxigraph evaluates in a thread here,
  lazily, releasing the GIL while it computes a row; it cannot be interrupted from
  Python. The evaluation is checked between rows: at the first row after the deadline it
  stops, and its thread and slot are freed. An operator that needs every row before
  giving the first (ORDER BY, GROUP BY and aggregates, DISTINCT over a large input,
  ASK, a remote store's CONSTRUCT) runs to the end of that phase in its abandoned
  thread, on one core, outside the GIL, and only then stops.
* At most ``max_running`` evaluations at once (``PROVML_QUERY_MAX_RUNNING``), abandoned
  ones still winding down included, and past it requests get 503 ``busy`` with
  Retry-After rather than piling up.
* One request reads at most ``max_rows`` rows — solutions or triples, over all the
  queries it makes (``PROVML_QUERY_MAX_ROWS``); one more is 422 ``result_too_large``.
  Rows are counted as they are read, so an oversized result is refused without being
  held whole.

A remote SPARQL store is also told the time left (see :mod:`manager.store.sparql`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import pyoxigraph

from manager.store.base import Store
from provml.core.errors import Busy, QueryTimeout
from query.guard import Guard, Guarded, Limits, timeout_message

T = TypeVar("T")

#: seconds a client is asked to wait when every slot is taken
RETRY_AFTER = Busy.retry_after
#: seconds a request waits for a free slot at most
SLOT_WAIT = 2.0


class GuardedStore:
    """A store seen through a guard: what query code gets to read with."""

    def __init__(self, store: Store, guard: Guard, pool: Any = None) -> None:
        self.store = store
        self.guard = guard
        self.dialect = store.dialect
        self.keeps_lineage_index = store.keeps_lineage_index
        self.pool = pool  # query worker processes (query/workers.py), or None
        self._handed_out: list[Guarded] = []

    def query(self, sparql: str, **options: Any) -> Any:
        self.guard.check()
        if self.pool is not None:
            result = self._in_worker(sparql, options)
        else:
            result = self.store.query(sparql, timeout=max(self.guard.remaining(), 0.001), **options)
        if isinstance(result, pyoxigraph.QueryBoolean):
            self.guard.check()
            return result
        guarded = Guarded(result, self.guard)
        del result
        self._handed_out.append(guarded)
        self.guard.check()
        return guarded

    def _in_worker(self, sparql: str, options: dict[str, Any]) -> Any:
        """``sparql`` evaluated by a worker process, killed at the deadline (the store's
        own error translation for a syntax error)."""
        from provml.core.errors import QueryError
        from provml.core.sparql_text import syntax_message
        from provml.core.vocab import PREFIXES

        guard = self.guard
        flush = getattr(self.store, "flush_for_readers", None)
        if flush is not None:  # a short log for the view the worker may reopen
            flush()
        try:
            return self.pool.query(
                sparql,
                options,
                getattr(self.store, "generation", 0),
                max(guard.limits.max_rows - guard.rows, 0),
                guard.deadline,
                guard.cancelled,
                timeout_message(guard.limits),
            )
        except SyntaxError as exc:
            raise QueryError(
                f"SPARQL syntax error: {syntax_message(sparql, str(exc), PREFIXES)}"
            ) from None

    def release(self) -> None:
        """Release every result handed out (in the thread that made them)."""
        for guarded in self._handed_out:
            guarded.release()
        self._handed_out.clear()


class Runner:
    """Runs a request's queries under :class:`Limits` (see the module docstring)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.of({})
        self._slots = threading.BoundedSemaphore(self.limits.max_running)
        self._pools: dict[str, Any] = {}
        self._pools_lock = threading.Lock()
        self._closed = False

    def pool(self, store: Store) -> Any:
        """The query worker processes of an embedded on-disk store (made at its first
        query); None for other stores, or without workers."""
        from manager.store.oxigraph import OxigraphStore

        if not self.limits.workers or not isinstance(store, OxigraphStore) or not store.path:
            return None
        path = store.path
        with self._pools_lock:
            if self._closed:  # shutting down: no new workers for a request still in flight
                return None
            pool = self._pools.get(path)
            if pool is None:
                from provml.core.vocab import PREFIXES
                from query.workers import Pool

                pool = Pool(path, self.limits.workers, self.limits.memory, dict(PREFIXES))
                self._pools[path] = pool
        return pool

    def close(self) -> None:
        """Stop the worker processes."""
        with self._pools_lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def run(self, store: Store, work: Callable[[GuardedStore], T]) -> T:
        """``work(guarded store)`` in a thread of its own; its value, or its error, or
        :class:`QueryTimeout` at the deadline. ``work`` must return plain data (bytes,
        dicts), not lazy pyoxigraph results: those belong to the thread that made them."""
        deadline = time.monotonic() + self.limits.timeout
        # a short wait: slots are taken for long only by runaway queries winding down
        if not self._slots.acquire(timeout=min(max(self.limits.timeout, 0.0), SLOT_WAIT)):
            raise Busy(
                f"{self.limits.max_running} queries are running (PROVML_QUERY_MAX_RUNNING): "
                f"retry in {RETRY_AFTER} s"
            )
        guard = Guard(self.limits, deadline)
        box: dict[str, Any] = {}
        done = threading.Event()

        pool = self.pool(store)

        def target() -> None:
            guarded = GuardedStore(store, guard, pool)
            try:
                box["value"] = work(guarded)
            except BaseException as exc:  # handed to the request thread, without the
                _clear_frames(exc)  # locals of its frames (pyoxigraph results among them)
                box["error"] = exc
            finally:
                guarded.release()
                self._slots.release()
                done.set()

        thread = threading.Thread(target=target, name="provml-query", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: give the slot back
            self._slots.release()
            raise Busy(f"cannot start a query thread: retry in {RETRY_AFTER} s") from None
        if not done.wait(max(deadline - time.monotonic(), 0.0)):
            guard.cancelled.set()  # the thread stops at its next row
            raise QueryTimeout(timeout_message(self.limits))
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value


def _clear_frames(exc: BaseException) -> None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if e.__traceback__ is not None:
            traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]
