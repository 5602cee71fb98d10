"""The background worker: a bounded queue, batching, and delivery through a transport.

Modelled on sentry-python's worker: :meth:`Worker.submit` never raises and returns
whether it queued; a lazily started, named daemon thread drains the queue; every
delivery is wrapped so an exception is logged and counted; :meth:`flush` waits with a
deadline. The queue is a :class:`collections.deque` (``append`` and ``popleft`` are
atomic in CPython), so queueing costs the caller well under a microsecond; the worker
is woken early only when a full batch is waiting.

When the queue is full, :attr:`Worker.policy` decides:

* ``"spill"`` (default): the caller's thread writes the record to a disk segment itself
  (batched, so the cost is paid once per :attr:`SPILL_BATCH` records): nothing is lost,
  the workflow slows down only while the worker cannot keep up.
* ``"block"``: the caller waits up to ``block_timeout`` seconds for room, then drops.
* ``"drop"``: the record is dropped at once.

Every dropped record is counted by reason in :attr:`lost` and reported to the tracker
in a ``capture_report`` record at the next flush.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import orjson

from capture_lib import deferred, oversize
from capture_lib.errors import Refused, TransportError
from capture_lib.records import (
    ERROR_FIELD,
    METRIC,
    REPORT,
    SECRET_FIELDS,
    TASK_END,
    TASK_START,
    VALUE_FIELDS,
)
from capture_lib.redact import MAX_ERROR_CHARS
from capture_lib.transport.base import SPOOLED, Transport
from provml.core.wire import COMPACT_FIELDS, MAX_BATCH_BYTES, MAX_VALUE_BYTES, WIRE_VERSION

log = logging.getLogger(__name__)
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
#: tried first: the same output when every key is a string, 15 % faster to write
_FAST = orjson.OPT_SERIALIZE_NUMPY
POLICIES = ("spill", "block", "drop")


#: kind → (fields holding values that may hide secrets, the error message's field or
#: None, then the slice of the record that holds them all and that slice when all are
#: None), for the kinds that have either; the others (metrics) are passed over at once
_SCRUB: dict[str, tuple[tuple[int, ...], int | None, slice, tuple[None, ...]]] = {}
for _kind in {*SECRET_FIELDS, *ERROR_FIELD}:
    _where, _error = SECRET_FIELDS.get(_kind, ()), ERROR_FIELD.get(_kind)
    _fields = (*_where, *(() if _error is None else (_error,)))
    if _fields:
        _lo, _hi = min(_fields), max(_fields) + 1
        _SCRUB[_kind] = (_where, _error, slice(_lo, _hi), (None,) * (_hi - _lo))


def scrub(items: list[tuple[Any, ...]], redact: Callable[[Any], Any]) -> list[tuple[Any, ...]]:
    """Records with their secrets hidden (see :mod:`capture_lib.redact`): parameters,
    used and generated values, and error messages (redacted and cut). This runs on the
    worker for every record, so a record, and the list, are copied only when something
    in them changed; most records are passed over after one look at their kind."""
    text = getattr(redact, "text", None)
    plain = getattr(redact, "plain", None)  # keys the redactor knows are not secrets
    spec_of = _SCRUB.get
    out: list[tuple[Any, ...]] | None = None
    for i, rec in enumerate(items):
        spec = spec_of(rec[0])
        if spec is None:
            continue
        where, error, fields, nothing = spec
        if rec[fields] == nothing:  # no parameters, no values, no error: nothing to hide
            continue
        new: list[Any] | None = None
        for j in where:
            value = rec[j]
            if value:
                if plain is not None and type(value) is dict and plain.issuperset(value):
                    # the usual parameters: plain values under known keys, redacted as
                    # they are (Redactor.__call__'s first case, inlined for speed)
                    for item in value.values():
                        kind = type(item)
                        if kind is float or kind is int or kind is bool or item is None:
                            continue
                        if kind is str and "://" not in item:
                            continue
                        break
                    else:
                        continue
                hidden = redact(value)
                if hidden is not value:
                    if new is None:
                        new = list(rec)
                    new[j] = hidden
        if error is not None:
            message = rec[error]
            if isinstance(message, str) and message:
                hidden = text(message) if text is not None else message[:MAX_ERROR_CHARS]
                if hidden != message:
                    if new is None:
                        new = list(rec)
                    new[error] = hidden
        if new is not None:
            if out is None:
                out = list(items)
            out[i] = tuple(new)
    return items if out is None else out


#: the types of a value the redactor passes over as it is (a string: unless it holds a URL)
_SCALARS = frozenset({str, int, float, bool, type(None)})


#: where the values and the error message sit in the usual records (see plain)
_TS, _TE, _M = TASK_START, TASK_END, METRIC
_TS_PARAMS, _TS_USED = COMPACT_FIELDS[_TS].index("params"), COMPACT_FIELDS[_TS].index("used")
_TE_ERROR, _TE_GEN = COMPACT_FIELDS[_TE].index("error"), COMPACT_FIELDS[_TE].index("generated")


def plain(items: list[tuple[Any, ...]], known: set[str]) -> bool:
    """Whether :func:`scrub` would pass ``items`` over as they are, but for the URLs their
    strings may hold (the caller looks for ``://`` in their JSON): no error message, and
    every parameter, used and generated value a dict of scalars under keys the redactor
    knows are not secrets (``known``). The usual batch, checked in one plain loop (on the
    worker, for every record: no temporary object is made); the three usual kinds of
    record, as the capture calls make them, are looked at first."""
    scalars = _SCALARS
    for rec in items:
        kind = rec[0]
        if kind is _M:
            continue
        if kind is _TS:
            value = rec[_TS_PARAMS]
            if value is not None:
                if type(value) is not dict:
                    return False
                for key, item in value.items():
                    if key not in known or type(item) not in scalars:
                        return False
            if rec[_TS_USED] is not None and not _plain_values(rec[_TS_USED], known):
                return False
            continue
        if kind is _TE:
            if rec[_TE_ERROR] is not None:
                return False
            if rec[_TE_GEN] is not None and not _plain_values(rec[_TE_GEN], known):
                return False
            continue
        spec = _SCRUB.get(kind)
        if spec is None:
            continue
        where, error, _, _ = spec
        for j in where:
            value = rec[j]
            if value is not None and not _plain_values(value, known):
                return False
        if error is not None and rec[error] is not None:
            return False
    return True


def _plain_values(value: Any, known: set[str]) -> bool:
    return type(value) is dict and all(
        key in known and type(item) in _SCALARS for key, item in value.items()
    )


class _Flush(threading.Event):
    """A flush marker in the queue; ``ok`` is what :meth:`Worker.flush` returns."""

    ok = True


class Worker:
    BATCH_SIZE = 2_000
    FLUSH_INTERVAL = 1.0
    SPILL_BATCH = 500
    BATCHES_PER_WRITE = 16
    #: values kept by digest, beyond those over the value limit, in a record that is over
    #: the batch limit by itself
    SMALL_VALUE = 1024

    def __init__(
        self,
        transport: Transport,
        session: str,
        *,
        queue_size: int = 100_000,
        batch_size: int | None = None,
        flush_interval: float | None = None,
        policy: str = "spill",
        block_timeout: float = 1.0,
        spill: Transport | None = None,
        next_id: Callable[[], int] | None = None,
        redact: Callable[[Any], Any] | None = None,
        on_fork: Callable[[], None] | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"queue policy must be one of {POLICIES}, not {policy!r}")
        self.transport = transport
        self.session = session
        self.queue_size = queue_size
        self.batch_size = batch_size or self.BATCH_SIZE
        self.flush_interval = self.FLUSH_INTERVAL if flush_interval is None else flush_interval
        self.policy = policy
        self.block_timeout = block_timeout
        self.spill_transport = spill
        self._next_id = next_id
        self._redact = redact
        self.on_fork = on_fork
        self._reset()

    def _reset(self) -> None:
        self.pid = os.getpid()  # the process whose thread and queue these are
        # batch ids (32 hex digits): 96 random bits drawn once, then a counter; a uuid4
        # per batch reads the kernel's random source, and that system call lets go of
        # the GIL, which the worker then waits up to a switch interval (5 ms) to get back
        self._batch_prefix = uuid.uuid4().hex[:24]
        self._batches = itertools.count()
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._woken = False
        self._lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._spilled: list[tuple[Any, ...]] = []
        self._thread: threading.Thread | None = None
        #: below this many queued records, submit only appends: the queue is not full,
        #: no full batch waits, the thread runs (0 until it is started). The capture
        #: calls check it themselves and call submit only past it (capture_lib.api)
        self.room = 0
        self._stopping = False
        self.counts: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self._reported: dict[str, int] = {}
        self._warned: set[str] = set()  # causes already warned about (warn_once)
        self.refused: Counter[str] = Counter()  # records refused by the receiver, by reason
        self.refused_batches: Counter[str] = Counter()
        self._undelivered = 0  # records refused or dropped since the last flush marker
        self._markers = 0  # flush markers in the queue
        self._inflight: list[list[tuple[Any, ...]]] = []  # batches being delivered now

    # ---- caller side -------------------------------------------------------
    def submit(self, record: tuple[Any, ...]) -> bool:
        """Queue a record; never raises. False if the record could not be queued."""
        queue = self._queue
        if len(queue) < self.room:  # the usual case: one comparison
            queue.append(record)
            return True
        if len(queue) >= self.queue_size:
            return self._full(record)
        queue.append(record)
        if self._thread is None:
            self._start()
        elif len(queue) >= self.batch_size and not self._woken:
            self._woken = True
            self._wake.set()
        return True

    def _full(self, record: tuple[Any, ...]) -> bool:
        if self.policy == "block":
            deadline = time.monotonic() + self.block_timeout
            self._wake.set()
            while time.monotonic() < deadline:
                time.sleep(0.001)
                if len(self._queue) < self.queue_size:
                    self._queue.append(record)
                    return True
            self.lose("queue_timeout")
            return False
        if self.policy == "spill" and self.spill_transport is not None:
            with self._spill_lock:
                self._spilled.append(record)
                if len(self._spilled) >= self.SPILL_BATCH:
                    self._write_spill()
            return True
        self.lose("queue_overflow")
        return False

    def _write_spill(self) -> None:
        """Write spilled records to disk (caller holds ``_spill_lock``)."""
        records, self._spilled = self._spilled, []
        if not records or self.spill_transport is None:
            return
        try:
            self.spill_transport.send_many(self._encode(records))
        except Exception as exc:
            log.error("provml: lost %d records: cannot spill them to disk: %s", len(records), exc)
            self.lose("spill_error", len(records))
            return
        with self._lock:
            self.counts["records_spilled"] += len(records)

    def count_lost(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.lost[reason] += n

    def lose(self, reason: str, n: int = 1) -> None:
        """Records dropped on their way: counted, and the next flush says False."""
        with self._lock:
            self.lost[reason] += n
            self._undelivered += n

    def warn_once(self, cause: str, message: str, *args: Any) -> None:
        """Log a warning the first time ``cause`` happens; later ones at debug level (a
        cause that repeats for every batch must not flood the workflow's stderr)."""
        with self._lock:
            first = cause not in self._warned
            self._warned.add(cause)
        log.log(logging.WARNING if first else logging.DEBUG, message, *args)

    def check_pid(self) -> None:
        """In a forked child that no at-fork hook reached (the parent's thread is gone),
        start afresh, as sentry-python's worker does: ``on_fork`` (the client's restart),
        else a fresh queue and thread of our own. Checked when the thread starts and on
        each flush, not on each record (``getpid`` costs a system call)."""
        if self.pid == os.getpid():
            return
        # records queued here since the fork are kept (with the parent's undelivered ones:
        # delivered twice, they add nothing, identifiers being derived from the records)
        pending = [item for item in self._queue if type(item) is tuple]
        if self.on_fork is not None:
            self.on_fork()  # the client's restart: it calls after_fork
        else:
            self.transport.after_fork()
            self.after_fork(self.session)
        self._queue.extend(pending)

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything queued so far. True if done within ``timeout`` seconds and
        every record captured since the previous flush reached its destination: False
        if one was refused, dropped, or sits only in the spool (see :meth:`_settle`)."""
        self.check_pid()
        with self._spill_lock:
            self._write_spill()
        done = _Flush()
        with self._lock:
            self._markers += 1
        self._queue.append(done)
        if self._thread is None:
            self._start()
        self._wake.set()
        return done.wait(timeout) and done.ok

    def close(self, timeout: float = 5.0) -> bool:
        ok = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        if not ok:
            # the worker is stuck (a slow network): write what is left to disk from here
            left = []
            while self._queue:
                item = self._queue.popleft()
                if type(item) is tuple:
                    left.append(item)
            if left:
                with self._spill_lock:
                    if self.spill_transport is None:
                        self.lose("shutdown_timeout", len(left))
                    else:
                        self._spilled.extend(left)
                        self._write_spill()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            stuck = [list(b) for b in self._inflight] if thread.is_alive() else []
            if stuck and self.spill_transport is not None:
                # the worker is stuck in a send: keep its batches too (a copy that also
                # arrives later is harmless: identifiers are derived from the records)
                with self._spill_lock:
                    for batch in stuck:
                        self._spilled.extend(batch)
                    self._write_spill()
        self.transport.close()
        if self.spill_transport is not None:
            self.spill_transport.close()
        return ok

    def pending(self) -> int:
        return len(self._queue)

    # ---- worker side -------------------------------------------------------
    def _start(self) -> None:
        self.check_pid()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="provml-capture-worker", daemon=True
                )
                self._thread.start()
                self.room = min(self.queue_size, self.batch_size)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._woken = False
            try:
                self._drain()
                self.transport.tick()
                self._count_refusals(self.transport.take_refusals())
            except Exception:  # the worker must survive anything
                log.exception("provml: capture worker error")
                self.lose("internal_error")
            if self._stopping:
                return

    def _drain(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        waiters: list[threading.Event] = []
        while not self._markers and queue:
            # No flush is waiting, so every item is a record: take whole batches at once,
            # several per write. Each write releases the GIL, and getting it back from a
            # busy capturing thread can take a switch interval (5 ms): fewer, larger
            # writes are what lets the worker keep up.
            batches: list[list[tuple[Any, ...]]] = []
            while queue and len(batches) < self.BATCHES_PER_WRITE:
                batch = [popleft() for _ in range(min(len(queue), self.batch_size))]
                if self._markers:  # a flush arrived meanwhile: its marker may be in batch
                    self._deliver_many(batches)
                    self._drain_items(batch, waiters)
                    return
                batches.append(batch)
            self._deliver_many(batches)
        self._drain_items([], waiters)

    def _settle(self) -> bool:
        """At a flush marker: True if nothing since the previous one was refused or
        dropped, and nothing waits in the spool; starts the next period."""
        self._count_refusals(self.transport.take_refusals())
        with self._lock:
            ok, self._undelivered = self._undelivered == 0, 0
        return ok and not self.transport.waiting()

    def _count_refusals(self, refusals: list[Refused]) -> None:
        for exc in refusals:
            with self._lock:
                self.refused[exc.reason] += exc.records
                self.refused_batches[exc.reason] += 1
                self._undelivered += max(1, exc.records)
            self.warn_once(
                f"refused:{exc.reason}",
                "provml: %s (counted in stats()['refused']['%s']; further refusals for "
                "this reason are only counted)",
                exc,
                exc.reason,
            )

    def _drain_items(self, first: list[Any], waiters: list[threading.Event]) -> None:
        """Drain item by item, delivering at each flush marker; waiters are always set."""
        try:
            self._drain_items_inner(first, waiters)
        finally:
            for waiter in waiters:
                waiter.set()
            waiters.clear()

    def _drain_items_inner(self, first: list[Any], waiters: list[threading.Event]) -> None:
        queue = self._queue
        records: list[tuple[Any, ...]] = []
        items = iter(first)
        while True:
            item = next(items, None)
            if item is None:
                if not queue:
                    break
                item = queue.popleft()
            if isinstance(item, _Flush):
                with self._lock:
                    self._markers -= 1
                report = self._report()
                if report is not None:
                    records.append(report)
                self._deliver(records)
                records = []
                self.transport.sync()
                self.transport.tick(force=True)  # a flush also re-sends the spool, if it can
                item.ok = self._settle()
                waiters.append(item)
                continue
            records.append(item)
            if len(records) >= self.batch_size:
                self._deliver(records)
                records = []
        self._deliver(records)

    def _report(self) -> tuple[Any, ...] | None:
        """A capture_report record when losses changed since the last one."""
        with self._lock:
            lost = dict(self.lost)
        if lost == self._reported or self._next_id is None:
            return None
        self._reported = lost
        return (REPORT, self._next_id(), time.time(), lost)

    def _encode(self, items: list[tuple[Any, ...]]) -> list[tuple[dict[str, Any], bytes]]:
        """Records as batches the tracker takes: redacted, values over the wire format's
        limit kept by digest, split when over the batch limit (see capture_lib.oversize).
        Values an integration left to the worker are computed first (capture_lib.deferred)."""
        items = deferred.resolve(items, VALUE_FIELDS)
        redact = self._redact
        if redact is not None:
            known = getattr(redact, "plain", None)
            if known is not None and plain(items, known):
                # nothing to hide unless a string holds a URL: write the batch, and scrub
                # (then write again) only if its JSON has one
                try:
                    dumped = self._dump(items)
                except TypeError:  # an integer past 64 bits: _fit's business
                    dumped = None
                if dumped is not None and b"://" not in dumped[1]:
                    return self._fit(items, dumped)
            items = scrub(items, redact)
        return self._fit(items)

    def _dump(self, items: list[tuple[Any, ...]]) -> tuple[dict[str, Any], bytes]:
        batch = {
            "provml": WIRE_VERSION,
            "batch": f"{self._batch_prefix}{next(self._batches) & 0xFFFFFFFF:08x}",
            "session": self.session,
            "records": items,  # compact records: serialised as JSON arrays
        }
        try:
            body = orjson.dumps(batch, option=_FAST)
        except TypeError:
            try:
                body = orjson.dumps(batch, option=_OPTIONS)
            except TypeError as exc:
                log.debug("provml: non-JSON value in a record (%s); using str()", exc)
                body = orjson.dumps(batch, default=str, option=_OPTIONS)
        return batch, body

    def _fit(
        self,
        items: list[tuple[Any, ...]],
        dumped: tuple[dict[str, Any], bytes] | None = None,
    ) -> list[tuple[dict[str, Any], bytes]]:
        try:
            batch, body = self._dump(items) if dumped is None else dumped
        except TypeError as exc:  # orjson cannot write it even as str(): see _dump
            if oversize.BIG_INTEGER not in str(exc):
                raise
            items = [oversize.exact(rec) for rec in items]
            self.warn_once(
                "big_integer",
                "provml: an integer past 64 bits in a parameter or value is recorded as its "
                "decimal digits (a string), exactly; JSON numbers here are 64-bit",
            )
            batch, body = self._dump(items)
        if len(body) <= MAX_VALUE_BYTES:  # the common case: no value can be over the limit
            return [(batch, body)]
        items = self._shrink(items, MAX_VALUE_BYTES)
        batch, body = self._dump(items)
        if len(body) <= MAX_BATCH_BYTES:
            return [(batch, body)]
        if len(items) > 1:
            half = len(items) // 2
            return self._fit(items[:half]) + self._fit(items[half:])
        # one record over the batch limit by itself (thousands of values near the value
        # limit): keep every sizeable value by digest
        batch, body = self._dump(self._shrink(items, self.SMALL_VALUE))
        if len(body) <= MAX_BATCH_BYTES:
            return [(batch, body)]
        self.lose("too_large")
        self.warn_once(
            "too_large",
            "provml: a %s record is %d bytes of JSON even with its values kept by digest, "
            "over the %d-byte batch limit: not recorded (counted in stats()['lost'])",
            items[0][0],
            len(body),
            MAX_BATCH_BYTES,
        )
        return []

    def _shrink(self, items: list[tuple[Any, ...]], limit: int) -> list[tuple[Any, ...]]:
        """Values over ``limit`` bytes replaced by their digest, counted and said once."""
        out = []
        replaced = 0
        for rec in items:
            rec, n = oversize.shrink(rec, limit)
            out.append(rec)
            replaced += n
        if replaced:
            with self._lock:
                self.counts["values_digested"] += replaced
            self.warn_once(
                "value_too_large",
                "provml: a value over %d bytes of JSON was kept by its SHA-256 only "
                "(digest_only in the graph; counted in stats()['values_digested'])",
                limit,
            )
        return out

    def _deliver_many(self, batches: list[list[tuple[Any, ...]]]) -> None:
        if not batches:
            return
        self._inflight = batches
        try:
            encoded = [one for items in batches for one in self._encode(items)]
            outcomes = self.transport.send_many(encoded)
        except Exception as exc:
            count = sum(len(b) for b in batches)
            log.error("provml: lost %d records: %s", count, exc)
            self.lose("send_error" if isinstance(exc, TransportError) else "internal_error",
                       count)  # fmt: skip
            return
        finally:
            self._inflight = []
        sent = batches_sent = 0
        refusals: list[Refused] = []
        for (batch, _), outcome in zip(encoded, outcomes, strict=True):
            if isinstance(outcome, Refused):
                refusals.append(outcome)
            elif outcome != SPOOLED:  # spooled records count once re-sent
                sent += len(batch["records"])
                batches_sent += 1
        with self._lock:
            self.counts["records_sent"] += sent
            self.counts["batches_sent"] += batches_sent
        self._count_refusals(refusals)

    def _deliver(self, items: list[tuple[Any, ...]]) -> None:
        if items:
            self._deliver_many([items])

    def after_fork(self, session: str) -> None:
        """In a forked child: a fresh queue and thread (the parent's thread is gone)."""
        self.session = session
        self._reset()
