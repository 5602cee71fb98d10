"""Broker mode: batches appended to a Redis stream (``XADD``), where provml's managers
consume them in a consumer group (docs/deploy.md, "Many machines").

Wrapped in a :class:`~capture_lib.transport.spool.SpoolingTransport` as the http mode
is: while Redis is unreachable (or refuses writes, e.g. out of memory or a replica that
became read-only in a failover) batches are spooled to disk and sent again once it
answers. The ``redis`` package is imported here, and this module only in broker mode.
The password (from the URL or ``PROVML_BROKER_PASSWORD``) never shows in a message or a
``repr``: :class:`~provml.core.broker.BrokerURL` keeps it out of both. With
``PROVML_BROKER_REPLICAS`` a batch counts as sent only once that many replicas hold it
(``WAIT``); otherwise it is spooled and sent again. A broker that lost acknowledged
batches (a failover, a restart without ``appendfsync always``) is noticed by its new
replication id; what was published since the managers last stored is published again
(:class:`~provml.core.broker.ReplayWindow`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from capture_lib.transport.base import SENT, Transport, TransportError
from provml.core.broker import BrokerURL, ReplayWindow, replicated


class BrokerTransport(Transport):
    #: what the spooling transport's messages call the receiver
    name = "the broker"

    def __init__(
        self,
        url: BrokerURL,
        stream: str,
        *,
        timeout: float = 10.0,
        replicas: int = 0,
        replay_bytes: int = 64 << 20,
    ) -> None:
        self.url = url
        self.stream = stream
        self.timeout = timeout
        self.replicas = replicas
        self._redis = url.connect(timeout=timeout)
        self.window = ReplayWindow(stream, replay_bytes)

    def __repr__(self) -> str:
        return f"BrokerTransport({str(self.url)!r}, stream={self.stream!r})"

    def send(self, batch: dict[str, Any], body: bytes) -> str:
        import redis

        try:
            self.window.publish(self._redis, [body])
            replicated(self._redis, self.replicas, self.timeout / 2)  # within the socket's
        except redis.RedisError as exc:
            raise TransportError(f"broker {self.url} unreachable: {exc}") from None
        return SENT

    def tick(self, force: bool = False) -> None:
        """Every CHECK_EVERY seconds (at each flush with ``force``): publish again what
        a broker that lost its history may have lost; let go of what is stored."""
        import redis

        window = self.window
        if window.kept and (force or time.monotonic() - window._checked >= window.CHECK_EVERY):
            with contextlib.suppress(redis.RedisError):  # unreachable: at the next tick
                window.check(self._redis)  # (which is CHECK_EVERY after this one ended)

    def counts(self) -> dict[str, int]:
        return dict(self.window.counts)

    def after_fork(self) -> None:
        # the parent's pooled connections must not be shared with the child, nor its
        # window (the child published none of it; its lock may have been held)
        self._redis = self.url.connect(timeout=self.timeout)
        self.window = ReplayWindow(self.stream, self.window.max_bytes)

    def close(self) -> None:
        self._redis.close()
