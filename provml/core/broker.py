"""The Redis Streams broker's address and wire: shared by capture_lib (``mode="broker"``),
the tracker (publishes) and the manager (consumes). See docs/deploy.md, "Many machines".

A broker URL is ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://…`` (TLS);
the password comes from the URL or else from ``PROVML_BROKER_PASSWORD``, and is never
part of what :class:`BrokerURL` shows (``str``, ``repr``, error messages). Each stream
entry holds one wire batch (plain from capture_lib, resolved from a tracker) as its JSON
in the field ``batch``; a dead-letter entry adds ``reason``, the original entry's ``id``
and the ``consumer`` that refused it.

The ``redis`` package (the ``broker`` extra) is imported only by :meth:`BrokerURL.connect`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from provml.core import config
from provml.core.errors import ConfigError

log = logging.getLogger(__name__)

#: the field of a stream entry holding the batch's JSON
FIELD = "batch"
SCHEMES = ("redis", "rediss")


def dead_letter_stream(stream: str) -> str:
    """Where the managers put batches the store refuses (with the reason)."""
    return stream + ":dead"


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL; ``password`` never shows in ``str`` or ``repr``."""

    scheme: str
    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, password: str | None = None) -> BrokerURL:
        """``url`` checked; the password from it, else ``password``, else
        ``PROVML_BROKER_PASSWORD``. Errors never repeat the password."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 6379
        except ValueError:
            raise ConfigError(f"{masked(url)!r} is not a broker URL") from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ConfigError(
                f"{masked(url)!r} is not a redis:// or rediss:// URL of the broker "
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ConfigError(f"{masked(url)!r}: the path is the database number, e.g. /0")
        if parts.query or parts.fragment:
            raise ConfigError(f"{masked(url)!r}: a broker URL takes no query or fragment")
        secret = unquote(parts.password) if parts.password else None
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            db=int(path or 0),
            username=unquote(parts.username) if parts.username else None,
            password=secret or password or config.BROKER_PASSWORD.get(),
        )

    def __str__(self) -> str:
        """The URL without its password (what logs and messages show)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}/{self.db}"

    def connect(self, *, timeout: float = 5.0, retries: int = 1, **options: Any) -> Any:
        """A ``redis.Redis`` client for this broker (imports ``redis`` here, only here);
        ``retries`` quick retries of a command that met a connection error (redis-py's
        default, 3 with backoff up to seconds, would hold the caller's loop, which has
        its own: capture_lib spools, the manager waits and reads again)."""
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigError(
                "the broker needs the redis package: pip install 'provml[broker]'"
            ) from None
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            ssl=self.scheme == "rediss",
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            protocol=2,  # the reply shapes the services read (RESP3 changes some)
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
            **options,
        )


def replicated(client: Any, replicas: int, timeout: float) -> None:
    """After a write: wait until ``replicas`` replicas have it (``WAIT``); fewer within
    ``timeout`` seconds raise ``redis.RedisError`` (the write counts as not done: it is
    sent again, which adds nothing). Nothing to wait for when ``replicas`` is 0."""
    if replicas > 0:
        import redis

        got = client.wait(replicas, int(timeout * 1000))
        if got < replicas:
            raise redis.RedisError(
                f"{got} of {replicas} replicas took the batch within {timeout} s "
                "(PROVML_BROKER_REPLICAS)"
            )


def stored_floor(client: Any, stream: str) -> tuple[int, int] | None:
    """The first entry id some consumer group has not acknowledged: every entry before it
    is in the store of every group's managers (a manager acknowledges after its write).
    None when the stream has no group yet, or is not there (nothing is stored)."""
    import redis

    floors = []
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    for group in groups:
        pending = client.xpending(stream, group["name"])
        if pending["pending"]:
            floors.append(entry_id(pending["min"]))
        else:
            ms, seq = entry_id(group["last-delivered-id"])
            floors.append((ms, seq + 1))
    return min(floors) if floors else None


def entry_id(value: Any) -> tuple[int, int]:
    """A stream entry id (``b"1700000000000-3"``) as a pair that orders as Redis does."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class ReplayWindow:
    """What a publisher (capture_lib's broker mode, a tracker with ``--broker``) keeps to
    repair a broker that lost acknowledged writes.

    Redis acknowledges an ``XADD`` before a replica has it (replication is asynchronous;
    ``PROVML_BROKER_REPLICAS`` narrows that with ``WAIT``, but ``WAIT`` is not a
    consensus), and a Redis without ``appendfsync always`` acknowledges before the disk
    has it. A Sentinel or Cluster failover, or such a restart, can then lose the last
    batches published. Each of those events starts a new replication history, with a new
    ``master_replid``: the publisher reads it every :attr:`CHECK_EVERY` seconds
    (:meth:`check`: at a publish, at capture_lib's flushes, in the tracker's own thread),
    before it lets go of anything.

    The publisher keeps each batch it published (the body, by entry id) until the
    managers stored it (the entry is before :func:`stored_floor`), up to ``max_bytes``.
    When the replication id changes, every batch kept that is not in the stream any more
    is published again (a restart that kept its data publishes nothing again). One that
    was stored and trimmed since the last check is stored twice, which adds nothing
    (every node is named by its record). Counted: ``replayed`` (batches published again),
    ``unguarded`` (batches let go before they were stored because the window was full:
    a failover then could lose them, and nothing would know), ``history_changes``,
    ``check_errors`` (checks that failed after a publish that succeeded).
    A publisher that dies with the broker loses its window: its last batches are then
    neither repaired nor known to be lost (docs/deploy.md, "What a failover can lose").
    """

    CHECK_EVERY = 5.0
    #: bytes counted for each batch kept beside its body (the index's own memory)
    OVERHEAD = 200
    #: batches looked up or published again per round trip
    CHUNK = 500

    def __init__(self, stream: str, max_bytes: int) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self._kept: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.replid: str | None = None
        self.counts = {"replayed": 0, "unguarded": 0, "history_changes": 0, "check_errors": 0}
        self._checked = 0.0
        self._epoch = 0  # histories seen: a publish that spans a change is looked up again
        self._recheck = False
        self._unknown_warned = False

    def publish(self, client: Any, bodies: list[bytes]) -> list[Any]:
        """``XADD`` every body in one transaction (all or none) and keep them; the entry
        ids. Raises what redis raises for the ``XADD``; a failed check after it is
        counted (``check_errors``), not raised: the batch is published."""
        epoch = self._epoch
        if len(bodies) == 1:
            ids = [client.xadd(self.stream, {FIELD: bodies[0]})]
        else:
            pipe = client.pipeline(transaction=True)
            for body in bodies:
                pipe.xadd(self.stream, {FIELD: body})
            ids = pipe.execute()
        with self._lock:
            for entry, body in zip(ids, bodies, strict=True):
                self._keep(entry_id(entry), body)
            if self._epoch != epoch:  # a new history was noticed while these went out:
                self._recheck = True  # which one took them? look them up at the next check
        if time.monotonic() - self._checked >= self.CHECK_EVERY or self._recheck:
            try:
                self.check(client)
            except Exception as exc:
                self.counts["check_errors"] += 1
                log.warning("provml: checking the broker's history failed (%s); the batch "
                            "is published, and kept until a check succeeds", exc)  # fmt: skip
        return ids

    def check(self, client: Any) -> None:
        """Publish again what the broker lost if its history changed; let go of what the
        managers stored. Raises what redis raises."""
        try:
            with self._lock:
                replid = _replid(client.info("replication"))
                if replid is None and not self._unknown_warned:
                    self._unknown_warned = True
                    log.warning("provml: the broker does not say its replication id "
                                "(master_replid): a failover that loses batches cannot be "
                                "noticed")  # fmt: skip
                self._history(client, replid)
                if self._recheck and self._kept:
                    self._replay(client)  # publishes that spanned a change of history
                self._recheck = False
                if not self._kept:
                    return
                floor = stored_floor(client, self.stream)
                if floor is None or _replid(client.info("replication")) != replid:
                    return  # nothing stored, or a new history meanwhile: the next check
                while self._kept:
                    first = next(iter(self._kept))
                    if first >= floor:
                        break
                    self._bytes -= len(self._kept.pop(first)) + self.OVERHEAD
        finally:
            self._checked = time.monotonic()  # a failed check waits its turn too

    def _history(self, client: Any, replid: str | None) -> None:
        """(Lock held.) A new replication history: publish again what is kept and
        not in the stream any more."""
        if replid is None or replid == self.replid:
            return
        if self.replid is not None:
            self.counts["history_changes"] += 1
            self._epoch += 1
            if self._kept:
                self._replay(client)
        elif self._kept:  # the first id read: batches went out before it (the check
            self._replay(client)  # after them failed), into a history not known
        self.replid = replid

    def _replay(self, client: Any) -> None:
        """(Lock held.) Each batch kept is still in the stream (a restart that kept its
        data: nothing to do) or is published again. The new history's consumer groups
        say nothing of the old one's entries (the entries published since have later
        ids), so a batch stored and trimmed since the last :meth:`check` is published
        again too, and stored again, which adds nothing. Raises what redis raises (the
        window stays as it is, and the next check tries again)."""
        kept = list(self._kept.items())
        present: list[Any] = []
        for i in range(0, len(kept), self.CHUNK):
            pipe = client.pipeline(transaction=False)
            for (ms, seq), _ in kept[i : i + self.CHUNK]:
                pipe.xrange(self.stream, min=f"{ms}-{seq}", max=f"{ms}-{seq}", count=1)
            present += pipe.execute()
        lost = [body for (_, body), there in zip(kept, present, strict=True) if not there]
        ids: list[Any] = []
        if lost:
            log.warning(
                "provml: the broker started a new history (a failover or a restart) and "
                "lost %d batches not yet stored: publishing them again",
                len(lost),
            )
            for i in range(0, len(lost), self.CHUNK):
                pipe = client.pipeline(transaction=True)
                for body in lost[i : i + self.CHUNK]:
                    pipe.xadd(self.stream, {FIELD: body})
                ids += pipe.execute()
        self._kept.clear()
        self._bytes = 0
        for (entry, body), there in zip(kept, present, strict=True):
            if there:
                self._keep(entry, body)
        for new, body in zip(ids, lost, strict=True):
            self._keep(entry_id(new), body)
        self.counts["replayed"] += len(lost)

    def _keep(self, entry: tuple[int, int], body: bytes) -> None:
        if self.max_bytes <= 0:
            return
        self._kept[entry] = body
        self._bytes += len(body) + self.OVERHEAD
        while self._bytes > self.max_bytes and self._kept:
            _, old = self._kept.popitem(last=False)
            self._bytes -= len(old) + self.OVERHEAD
            self.counts["unguarded"] += 1

    @property
    def kept(self) -> int:
        return len(self._kept)


def _replid(info: Any) -> str | None:
    value = info.get("master_replid") if isinstance(info, dict) else None
    return value.decode() if isinstance(value, bytes) else value


def masked(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part hidden (for messages and
    ``provml config``).

    >>> masked("redis://alice:pw@h:6379/0"), masked("redis://:pw@h"), masked("redis://h")
    ('redis://alice:***@h:6379/0', 'redis://:***@h', 'redis://h')
    """
    head, sep, rest = url.partition("//")
    netloc, slash, path = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{head}//{user}{':***' if colon else ''}@{host}{slash}{path}"
