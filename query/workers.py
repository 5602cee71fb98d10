"""Query worker processes: an embedded store's queries where they can be stopped.

pyoxigraph cannot interrupt a query from Python: a thread past its deadline keeps
evaluating, holding a core and as much memory as the query builds (a five-pattern COUNT
reached 11.7 GB). So the embedded on-disk store's queries run in worker processes, each
with its own read-only view of the store, and a worker whose query passes its deadline
or its memory budget is killed (SIGKILL: its CPU and memory are returned at once) and
replaced.

* A worker opens the store with ``pyoxigraph.Store.read_only``, which reads the files
  and the write-ahead log the server's own store has written: it sees every write made
  before it opened (≈ 12 ms on a 1.2 M-triple store). The server counts its writes
  (:attr:`manager.store.oxigraph.OxigraphStore.generation`); a worker reopens its view
  when the count has changed since it opened, so a query sees everything written before
  it was asked. pyoxigraph documents a read-only open beside a writer as unspecified:
  the writer's compaction may remove a file the view still lists, which shows as an "IO
  error" or "Corruption" while reading. The worker then opens a fresh view and asks
  again (up to :data:`RETRIES` times; measured in the test suite, one retry sufficed).
* A query is evaluated whole in the worker and its rows (at most the request's remaining
  row budget, plus one to tell that there were more) come back as SPARQL JSON results,
  read back into pyoxigraph results, or, for CONSTRUCT and DESCRIBE, as N-Triples read
  back into a list of triples in their order, duplicates and blank node labels kept.
* The parent waits in steps of :data:`TICK` seconds, checking the request's deadline
  (or its cancellation) and the worker's resident memory (``/proc/<pid>/statm``)
  against ``PROVML_QUERY_MEMORY``: past either, the worker is killed.

In-memory stores (tests) and remote SPARQL stores are queried in the server's process
as before: a remote server enforces its own limits (the time left is sent with each
query).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pyoxigraph

from provml.core.errors import QueryError, QueryTimeout, ResultTooLarge, StoreError

#: seconds between the parent's checks of a running query
TICK = 0.05
#: fresh views a worker tries after a read error before it reports it
RETRIES = 3
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class QueryMemory(ResultTooLarge):
    """A query that needed more memory than its budget: stopped."""

    code = "query_memory"


def _serve(conn: Any, path: str, prefixes: dict[str, str]) -> None:
    """A worker's loop: (sparql, options, generation, max_rows) in, an answer out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's
    store: pyoxigraph.Store | None = None
    opened = -1
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        sparql, options, generation, max_rows = task
        for attempt in range(RETRIES + 1):
            try:
                if store is None or opened != generation or attempt:
                    store = None
                    store = pyoxigraph.Store.read_only(path)
                    opened = generation
                conn.send(("ok", _evaluate(store, sparql, options, prefixes, max_rows)))
                break
            except SyntaxError as exc:
                conn.send(("syntax", str(exc)))
                break
            except Exception as exc:  # a file the server's compaction removed under the
                # view ("IO error", "Corruption"): reopen and try again; then say it
                if attempt == RETRIES:
                    kind = "store" if isinstance(exc, OSError) or _io(exc) else "error"
                    conn.send((kind, f"{type(exc).__name__}: {exc}"))


def _io(exc: Exception) -> bool:
    text = str(exc)
    return "IO error" in text or "Corruption" in text


def _evaluate(
    store: pyoxigraph.Store,
    sparql: str,
    options: dict[str, Any],
    prefixes: dict[str, str],
    max_rows: int,
) -> tuple[str, bytes]:
    result = store.query(sparql, prefixes=prefixes, **options)
    if isinstance(result, pyoxigraph.QueryBoolean):
        return "boolean", b"true" if bool(result) else b"false"
    if isinstance(result, pyoxigraph.QueryTriples):
        triples = []
        for i, triple in enumerate(result):  # in order, duplicates and labels kept
            if i > max_rows:
                break
            triples.append(triple)
        data = pyoxigraph.serialize(triples, format=pyoxigraph.RdfFormat.N_TRIPLES)
        return "triples", data or b""
    variables = result.variables
    rows = []
    for i, solution in enumerate(result):
        if i > max_rows:
            break
        rows.append(solution)
    from query.results import solutions_json

    return "solutions", solutions_json(variables, rows)


def _result(kind: str, data: bytes) -> Any:
    """An answer read back as the pyoxigraph result the store would have given."""
    if kind == "boolean":
        return pyoxigraph.parse_query_results(
            b'{"head":{},"boolean":' + data + b"}", format=pyoxigraph.QueryResultsFormat.JSON
        )
    if kind == "solutions":
        return pyoxigraph.parse_query_results(data, format=pyoxigraph.QueryResultsFormat.JSON)
    # a graph: its triples in order, with their duplicates and blank node labels (a list,
    # which query.limits.Guarded and query.results take as a graph result)
    return [quad.triple for quad in pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.N_TRIPLES)]


class _Worker:
    def __init__(self, ctx: Any, path: str, prefixes: dict[str, str]) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve, args=(child, path, prefixes), name="provml-query-worker", daemon=True
        )
        try:
            self.proc.start()
        except BaseException:
            self.conn.close()
            raise
        finally:
            child.close()

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Pool:
    """Worker processes over one on-disk store (see the module docstring)."""

    def __init__(self, path: str, size: int, memory: int, prefixes: dict[str, str]) -> None:
        self.path, self.memory, self.prefixes = path, memory, prefixes
        self._ctx = multiprocessing.get_context("spawn")  # nothing of the server inherited
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._free = threading.BoundedSemaphore(size)
        self._closed = False
        self.killed = 0  # workers killed for time or memory (stats)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.proc.is_alive():
                    return worker
                worker.kill()
        return _Worker(self._ctx, self.path, self.prefixes)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
            else:
                self._idle.append(worker)

    def query(
        self,
        sparql: str,
        options: dict[str, Any],
        generation: int,
        max_rows: int,
        deadline: float,
        cancelled: threading.Event,
        timeout_message: str,
    ) -> Any:
        """The result of ``sparql`` from a worker, or the error that stopped it."""
        if not self._free.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise QueryTimeout(timeout_message)
        worker = None
        try:
            try:
                worker = self._take()
                worker.conn.send((sparql, options, generation, max_rows))
            except OSError as exc:  # no process to be had, or it died before the query
                if worker is not None:
                    self._kill(worker)
                    worker = None
                raise StoreError(f"cannot start a query worker: {exc}") from None
            while not worker.conn.poll(TICK):
                if cancelled.is_set() or time.monotonic() > deadline:
                    self._kill(worker)
                    worker = None
                    raise QueryTimeout(timeout_message)
                if self.memory and worker.rss() > self.memory:
                    self._kill(worker)
                    worker = None
                    raise QueryMemory(
                        f"the query needed more than {self.memory >> 20} MiB of memory "
                        "(PROVML_QUERY_MEMORY) and was stopped: narrow it"
                    )
                if not worker.proc.is_alive():
                    worker = None
                    raise StoreError("the query's worker process died")
            try:
                status, payload = worker.conn.recv()
            except (EOFError, OSError):
                worker = None
                raise StoreError("the query's worker process died") from None
        finally:
            if worker is not None:
                self._give_back(worker)
            self._free.release()
        if status == "ok":
            return _result(*payload)
        if status == "syntax":
            raise SyntaxError(payload)
        if status == "store":
            raise StoreError(f"query failed: {payload}")
        raise QueryError(f"the query failed: {payload}")

    def _kill(self, worker: _Worker) -> None:
        """SIGKILL now (its CPU and memory are the kernel's at once); reaped aside."""
        self.killed += 1
        with contextlib.suppress(OSError, ValueError):
            worker.proc.kill()
        threading.Thread(target=worker.kill, name="provml-query-reap", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
            worker.kill()
