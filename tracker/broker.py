"""The tracker as a publisher to the Redis Streams broker (``provml serve --component
tracker --broker redis://…``; docs/deploy.md, "Many machines").

Instead of its local durable queue, the tracker appends each validated, resolved batch
to the stream (``XADD``), where the managers consume it. The client is answered only
once ``XADD`` succeeded (202, status ``published``: in the broker, not yet in the store);
while the broker is unreachable (or out of memory) it answers 503 with ``Retry-After``,
and clients keep the batch: capture_lib spools it to disk and sends it again. So the
broker is the only buffer, and a tracker holds nothing a crash could lose. With
``PROVML_BROKER_REPLICAS``, "succeeded" means that many replicas hold it too (``WAIT``).
A broker that loses acknowledged batches (a failover, a restart without ``appendfsync
always``) is noticed by its new replication id, and what the tracker published since
the managers last stored is published again (:class:`~provml.core.broker.ReplayWindow`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson

from provml.core.broker import BrokerURL, ReplayWindow, replicated
from provml.core.errors import UpstreamError
from provml.core.wire import Batch
from tracker.forward import Forwarder

log = logging.getLogger(__name__)


class BrokerDown(UpstreamError):
    """The broker did not take the batch: the client should send it again later."""

    status = 503
    code = "broker_unavailable"
    retry_after = 1


class BrokerForwarder(Forwarder):
    def __init__(
        self,
        url: BrokerURL,
        stream: str,
        *,
        timeout: float = 5.0,
        replicas: int = 0,
        replay_bytes: int = 64 << 20,
    ) -> None:
        self.url = url
        self.stream = stream
        self.timeout = timeout
        self.replicas = replicas  # that must hold a batch before it is answered (WAIT)
        self._redis = url.connect(timeout=timeout)
        self.window = ReplayWindow(stream, replay_bytes)
        self._stop = threading.Event()
        self._checker = threading.Thread(target=self._check_loop, name="provml-broker-check",
                                         daemon=True)  # fmt: skip
        self._checker.start()

    def _check_loop(self) -> None:
        """Notice a broker that lost its history even while no batch comes in."""
        import redis

        while not self._stop.wait(self.window.CHECK_EVERY):
            try:
                self.window.check(self._redis)
            except redis.RedisError as exc:
                log.debug("broker check: %s", exc)
            except Exception:  # never let the checker die
                log.exception("broker check failed")

    def forward(self, batch: Batch) -> dict[str, Any]:
        return self.forward_body(orjson.dumps(batch.to_json()))

    def forward_body(self, body: bytes) -> dict[str, Any]:
        return self.forward_group([body], [None])[0]

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        """One round trip, in one transaction: all are published or none."""
        import redis

        try:
            ids = self.window.publish(self._redis, bodies)
            replicated(self._redis, self.replicas, self.timeout / 2)  # within the socket's
        except redis.RedisError as exc:
            raise BrokerDown(f"the broker {self.url} did not take the batch: {exc}") from None
        return [{"status": "published", "entry": _text(i)} for i in ids]

    def metrics(self) -> list[tuple[str, str, float]]:
        counts = dict(self.window.counts)
        return [
            ("provml_tracker_broker_replayed_total", "counter", float(counts["replayed"])),
            ("provml_tracker_broker_unguarded_total", "counter", float(counts["unguarded"])),
            ("provml_tracker_broker_history_changes_total", "counter",
             float(counts["history_changes"])),
            ("provml_tracker_broker_check_errors_total", "counter",
             float(counts["check_errors"])),
            ("provml_tracker_broker_kept_batches", "gauge", float(self.window.kept)),
        ]  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._checker.join(5)
        try:  # a last look: what a broker that lost its history lost is published again
            self.window.check(self._redis)
        except Exception as exc:
            log.warning("broker: the last check of %s failed: %s", self.url, exc)
        self._redis.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
