"""The background worker: a bounded queue, batching, and delivery through a transport.

Modelled on sentry-python's worker: :meth:`Worker.submit` never blocks and returns
whether it queued; a lazily started, named daemon thread drains the queue; every
delivery is wrapped so an exception is logged and counted, never raised; :meth:`flush`
waits with a deadline. The queue is a :class:`collections.deque` (``append`` and
``popleft`` are atomic in CPython), which keeps a capture call well under a microsecond
of queue work; the worker is woken early only when a full batch is waiting.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter, deque
from typing import Any

import orjson

from capture_lib.transport.base import Transport, TransportError
from provml.wire import WIRE_VERSION

log = logging.getLogger(__name__)


class Worker:
    BATCH_SIZE = 2_000
    FLUSH_INTERVAL = 1.0

    def __init__(
        self,
        transport: Transport,
        session: str,
        *,
        queue_size: int = 100_000,
        batch_size: int | None = None,
        flush_interval: float | None = None,
    ) -> None:
        self.transport = transport
        self.session = session
        self.queue_size = queue_size
        self.batch_size = batch_size or self.BATCH_SIZE
        self.flush_interval = self.FLUSH_INTERVAL if flush_interval is None else flush_interval
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.counts: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()

    # ---- caller side -------------------------------------------------------
    def submit(self, record: dict[str, Any]) -> bool:
        """Queue a record. Never blocks; returns False (and counts it) when full."""
        queue = self._queue
        if len(queue) >= self.queue_size:
            with self._lock:
                self.lost["queue_overflow"] += 1
            return False
        queue.append(record)
        if self._thread is None:
            self._start()
        elif len(queue) >= self.batch_size:
            self._wake.set()
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything queued so far; True if done within ``timeout`` seconds."""
        if self._thread is None and not self._queue:
            return True
        done = threading.Event()
        self._queue.append(done)
        if self._thread is None:
            self._start()
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        ok = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.transport.close()
        return ok

    def pending(self) -> int:
        return len(self._queue)

    # ---- worker side -------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="provml-capture-worker", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # the worker must survive anything
                log.exception("provml: capture worker error")
                with self._lock:
                    self.lost["internal_error"] += 1
            if self._stopping:
                return

    def _drain(self) -> None:
        queue = self._queue
        records: list[dict[str, Any]] = []
        waiters: list[threading.Event] = []
        while queue:
            item = queue.popleft()
            if isinstance(item, threading.Event):
                self._deliver(records)
                records = []
                waiters.append(item)
                continue
            records.append(item)
            if len(records) >= self.batch_size:
                self._deliver(records)
                records = []
        self._deliver(records)
        for waiter in waiters:
            waiter.set()

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        batch = {
            "provml": WIRE_VERSION,
            "batch": uuid.uuid4().hex,
            "session": self.session,
            "records": records,
        }
        try:
            body = orjson.dumps(batch, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as exc:
            body = _dumps_lenient(batch, exc)
        try:
            self.transport.send(batch, body)
        except TransportError as exc:
            log.error("provml: lost %d records: %s", len(records), exc)
            with self._lock:
                self.lost["send_error"] += len(records)
            return
        with self._lock:
            self.counts["records_sent"] += len(records)
            self.counts["batches_sent"] += 1

    def after_fork(self, session: str) -> None:
        """In a forked child: a fresh queue and thread (the parent's thread is gone)."""
        self.session = session
        self._queue = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self.counts = Counter()
        self.lost = Counter()


def _dumps_lenient(batch: dict[str, Any], exc: Exception) -> bytes:
    """Serialise values JSON cannot hold (sets, paths, objects) as their ``str``."""
    log.debug("provml: non-JSON value in a record (%s); using str()", exc)
    return orjson.dumps(batch, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
