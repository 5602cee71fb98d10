"""The manager as a consumer of the Redis Streams broker (``provml serve --component
manager --broker redis://…``; docs/deploy.md, "Many machines").

Any number of managers, on any machines, read the stream in one consumer group, so each
entry goes to one of them. An entry holds a wire batch: plain (from capture_lib's
``mode="broker"``) or resolved (from a tracker's ``--broker``); either is checked and
resolved as the manager's ``POST /api/v1/batches`` does (:meth:`Manager.load_json`:
a batch, or an OpenLineage event a tracker published), then
written with the others read at once (one write, as a tracker's group). Then, and only
then, the entries are acknowledged (``XACK``): a manager killed between the write and the
acknowledgement leaves them pending; another manager claims them after
``claim_idle`` seconds (``XAUTOCLAIM``) and writes them again, which adds nothing (every
node is named by its record). A batch the manager refuses (not valid JSON, not a valid
batch, refused by the mapping) goes to the dead-letter stream ``<stream>:dead`` with the
reason, and is acknowledged in the same transaction; the others go on. A failing store
acknowledges nothing: the entries stay pending and are tried again, with what came since.
If the store fails on a group, each batch is written alone: a store that fails on all of
them is down (everything waits for it); one that fails on some batch while it takes the
others (written after it) leaves that batch pending, and after MAX_FAILURES such rounds
over FAILING_FOR seconds sends it to the dead-letter stream with the error, so that one
batch the store keeps failing on (a write that times out every time, say) does not hold
the stream forever.

Entries every group has acknowledged are trimmed from the stream (``XTRIM MINID``), so
the stream holds what some group has not yet taken; a group another tool reads in keeps
its entries until it acknowledges them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from typing import Any

import orjson

from manager.service import Manager, Mapped
from provml.core.broker import FIELD, BrokerURL, dead_letter_stream, stored_floor
from provml.core.errors import ProvmlError, StoreError, ValidationError
from provml.core.wire import Batch, check_batch_size

log = logging.getLogger(__name__)

Entry = tuple[Any, Any]  # (entry id, {field: value} or None for a deleted entry)


class BrokerConsumer:
    """Reads the stream in a consumer group in its own thread and writes to the store."""

    COUNT = 64  # entries read (and written in one store write) at once
    BLOCK = 1.0  # seconds a read waits for entries (also how soon close() is noticed)
    TRIM_EVERY = 5.0  # seconds between trims of what every group acknowledged
    #: times the store may fail on one batch while it takes the others read with it,
    #: before that batch goes to the dead-letter stream (a store that is down fails on
    #: all of them: that counts for none, and everything waits)
    MAX_FAILURES = 10
    FAILING_FOR = 60.0  # …and over at least this many seconds
    BACKOFF = (0.1, 5.0)

    def __init__(
        self,
        manager: Manager,
        url: BrokerURL,
        *,
        stream: str,
        group: str,
        consumer: str | None = None,
        claim_idle: float = 30.0,
    ) -> None:
        self.manager = manager
        self._bodies: dict[Any, bytes] = {}
        self.url = url
        self.stream = stream
        self.group = group
        self.dead = dead_letter_stream(stream)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle = claim_idle
        self.counts: Counter[str] = Counter()
        #: entry → (times the store failed on it while it took others, since when)
        self._failures: dict[Any, tuple[int, float]] = {}
        self._backlog_at = 0.0  # when the pending entries are read again
        self._stuck_rounds = 0
        self._redis: Any = None
        self._stop = threading.Event()
        self._backlog = True  # read this consumer's own pending entries first
        self._claim_from = "0-0"
        self._next_claim = 0.0
        self._next_trim = 0.0
        self._thread = threading.Thread(target=self._run, name="provml-broker", daemon=True)

    def start(self) -> BrokerConsumer:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def ready(self) -> bool:
        """The consumer runs (while the broker is down it waits for it: the manager's
        other routes still answer; ``provml_manager_broker_connected`` says which)."""
        return self.alive()

    def close(self, timeout: float = 10.0) -> None:
        """Stop reading; the batch being written is written and acknowledged first."""
        self._stop.set()
        self._thread.join(timeout)
        if self._redis is not None and not self._thread.is_alive():
            try:  # leave no empty consumer behind (one with pending entries stays)
                if not self._redis.xpending_range(
                    self.stream, self.group, min="-", max="+", count=1, consumername=self.consumer
                ):
                    self._redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
            except Exception as exc:
                log.debug("broker: cannot remove the consumer %s: %s", self.consumer, exc)
            self._redis.close()

    # the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        wait = self.BACKOFF[0]
        down = False
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:
                import redis

                if isinstance(exc, redis.RedisError):
                    self._redis = None  # connect again
                    self.counts["broker_errors"] += 1
                    if not down:
                        log.warning("broker %s unreachable: %s; retrying", self.url, exc)
                    down = True
                elif isinstance(exc, StoreError):
                    self.counts["store_errors"] += 1
                    log.warning("the store failed (%s): the batches stay pending", exc)
                else:  # a bug: say so, never let the consumer die
                    self.counts["errors"] += 1
                    log.exception("broker consumer error")
                self._backlog = True
                self._stop.wait(wait)
                wait = min(wait * 2, self.BACKOFF[1])
                continue
            if down:
                log.warning("broker %s reachable again", self.url)
                down = False
            wait = self.BACKOFF[0]

    def _step(self) -> None:
        if self._redis is None:
            self._redis = self.url.connect(timeout=self.BLOCK + 5)
            self._ensure_group()
        now = time.monotonic()
        entries: list[Entry] = []
        if self._backlog and now >= self._backlog_at:  # delivered here, not acknowledged
            entries = self._read("0")
            self._backlog = bool(entries)
            room = self.COUNT - len(entries)
            if entries and room > 0:  # with what came since: a batch the store fails on
                entries += self._read(">", block=False, count=room)  # stops no other
        if not entries and now >= self._next_claim:
            entries = self._claim()
        if not entries:
            entries = self._read(">")
        if entries:
            self._handle(entries)
        if now >= self._next_trim:
            self._next_trim = now + self.TRIM_EVERY
            self._trim()

    def _ensure_group(self) -> None:
        import redis

        try:
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, since: str, block: bool = True, count: int | None = None) -> list[Entry]:
        wait = None if since == "0" or not block else int(self.BLOCK * 1000)
        answer = self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: since}, count=count or self.COUNT,
            block=wait,
        )  # fmt: skip
        return list(answer[0][1]) if answer else []

    def _claim(self) -> list[Entry]:
        """Entries another consumer (a dead manager) left pending over ``claim_idle``."""
        start, entries, *_ = self._redis.xautoclaim(
            self.stream, self.group, self.consumer, int(self.claim_idle * 1000),
            start_id=self._claim_from, count=self.COUNT,
        )  # fmt: skip
        start = start.decode() if isinstance(start, bytes) else str(start)
        self._claim_from = start
        if start == "0-0":  # went round: look again after a while
            self._next_claim = time.monotonic() + min(self.claim_idle / 2, 5.0)
        if entries:
            self.counts["claimed"] += len(entries)
            log.warning("broker: claimed %d batches another manager left pending", len(entries))
        return list(entries)

    # one read's entries ------------------------------------------------------------------

    def _handle(self, entries: list[Entry]) -> None:
        good: list[tuple[Any, Batch | Mapped]] = []
        dead: list[tuple[Any, bytes, str]] = []
        self._bodies = {}  # entry → its body as read, for its dead letter
        done: list[Any] = []  # deleted entries (trimmed away): nothing to write
        for entry_id, fields in entries:
            if fields is None:
                done.append(entry_id)
                continue
            body = fields.get(FIELD.encode()) or b""
            try:
                check_batch_size(len(body))
                try:
                    obj = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise ValidationError(f"not valid JSON (UTF-8): {exc}") from None
                # a batch, or an OpenLineage event a tracker published (checked and
                # mapped as the manager's own routes do)
                good.append((entry_id, self.manager.load_json(obj)))
                self._bodies[entry_id] = body
            except ProvmlError as exc:
                dead.append((entry_id, body, _reason(exc)))
        if good:
            dead += self._write(good)
        if dead:
            self._dead_letter(dead)
        ids = [entry_id for entry_id, _ in good] + done
        if ids:
            self._redis.xack(self.stream, self.group, *ids)
            self.counts["acked"] += len(ids)
            for entry in ids:
                self._failures.pop(entry, None)
            if not self._failures:
                self._stuck_rounds = 0

    def _write(self, good: list[tuple[Any, Batch | Mapped]]) -> list[tuple[Any, bytes, str]]:
        """Write the batches in one write; a refused group is written one by one to find
        the refused batch(es), which are taken out of ``good`` and returned as dead.
        A failing store raises (nothing is acknowledged)."""
        try:
            self.manager.apply_many([batch for _, batch in good])
        except StoreError:
            if len(good) == 1:
                raise
            return self._write_one_by_one(good)
        except Exception as exc:
            if len(good) == 1:
                entry_id, batch = good.pop()
                body = self._bodies.get(entry_id) or _body(batch)
                return [(entry_id, body, _reason(exc))]
            dead = []
            for one in list(good):
                refused = self._write([one])
                if refused:
                    good.remove(one)
                    dead += refused
            return dead
        self.counts["batches"] += len(good)
        return []

    def _write_one_by_one(
        self, good: list[tuple[Any, Batch | Mapped]]
    ) -> list[tuple[Any, bytes, str]]:
        """The store failed on a group: each batch alone. If it fails on all, it is down
        (raises: all stay pending). If it takes some, the ones it fails on are taken out
        of ``good`` (pending, tried again after a pause, with what came since). A batch
        it fails on while it takes one written after it, :attr:`MAX_FAILURES` times over
        at least :attr:`FAILING_FOR` seconds, goes to the dead-letter stream with the
        error: a store that is down, or went down during the round, counts for none."""
        dead: list[tuple[Any, bytes, str]] = []
        stuck: list[tuple[int, tuple[Any, Batch | Mapped], StoreError]] = []
        last_stored = -1
        for i, one in enumerate(list(good)):
            try:
                refused = self._write([one])
            except StoreError as exc:
                stuck.append((i, one, exc))
                continue
            last_stored = i
            if refused:
                good.remove(one)
                dead += refused
        if last_stored < 0:
            raise stuck[-1][2]
        now = time.monotonic()
        for i, one, error in stuck:
            good.remove(one)
            entry, batch = one
            count, since = self._failures.get(entry, (0, now))
            if i < last_stored:  # the store took a batch after this one: it works
                count += 1
            self._failures[entry] = (count, since)
            self.counts["store_failed_batches"] += 1
            if count >= self.MAX_FAILURES and now - since >= self.FAILING_FOR:
                del self._failures[entry]
                body = self._bodies.get(entry) or _body(batch)
                reason = (f"the store failed on this batch {count} times in {now - since:.0f} s "
                          f"while it took batches written after it: {_reason(error)}")  # fmt: skip
                dead.append((entry, body, reason[:2000]))
            else:
                self._backlog = True
                log.warning("the store failed on batch %s alone (%s); it stays pending", entry,
                            error)  # fmt: skip
        if self._backlog:  # a pause before the next try, longer each time (up to BACKOFF)
            self._stuck_rounds += 1
            pause = min(self.BACKOFF[0] * 2**self._stuck_rounds, self.BACKOFF[1])
            self._backlog_at = now + pause
        return dead

    def _dead_letter(self, dead: list[tuple[Any, bytes, str]]) -> None:
        """Each refused batch to the dead-letter stream, acknowledged in the same
        transaction (both or neither)."""
        pipe = self._redis.pipeline(transaction=True)
        for entry_id, body, reason in dead:
            log.error("broker: batch %s refused, kept in %s: %s", entry_id, self.dead, reason)
            pipe.xadd(
                self.dead,
                {FIELD: body, "reason": reason, "id": entry_id, "consumer": self.consumer},
            )
            pipe.xack(self.stream, self.group, entry_id)
        pipe.execute()
        self.counts["dead_lettered"] += len(dead)

    def _trim(self) -> None:
        """Drop the entries every group has acknowledged (none while a group lags)."""
        floor = stored_floor(self._redis, self.stream)
        if floor is not None:
            self._redis.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)

    def metrics(self) -> list[tuple[str, str, float]]:
        counts = dict(self.counts)
        return [
            (f"provml_manager_broker_{key}_total", "counter", float(counts.get(key, 0)))
            for key in ("batches", "acked", "claimed", "dead_lettered", "broker_errors",
                        "store_errors", "store_failed_batches")
        ] + [("provml_manager_broker_connected", "gauge",
              float(self._redis is not None))]  # fmt: skip


def _reason(exc: Exception) -> str:
    """Why a batch is refused, as the HTTP answer would say it (at most 2,000 chars)."""
    if isinstance(exc, ProvmlError):
        text = "; ".join([f"{exc.code}: {exc.message}", *exc.details])
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:2000]


def _body(item: Batch | Mapped) -> bytes:
    """A refused entry's JSON when its body is not at hand."""
    batch = item.batch if isinstance(item, Mapped) else item
    return orjson.dumps(batch.to_json())
