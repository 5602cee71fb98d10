"""The tracker as a publisher to the Redis Streams broker (``provml serve --component
tracker --broker redis://…``; docs/deploy.md, "Many machines").

Instead of its local durable queue, the tracker appends each validated, resolved batch
to the stream (``XADD``), where the managers consume it. The client is answered only
once ``XADD`` succeeded (202, status ``published``: in the broker, not yet in the store);
while the broker is unreachable (or out of memory) it answers 503 with ``Retry-After``,
and clients keep the batch: capture_lib spools it to disk and sends it again. So the
broker is the only buffer, and a tracker holds nothing a crash could lose. With
``PROVML_BROKER_REPLICAS``, "succeeded" means that many replicas hold it too (``WAIT``).
"""

from __future__ import annotations

from typing import Any

import orjson

from provml.core.broker import FIELD, BrokerURL, replicated
from provml.core.errors import UpstreamError
from provml.core.wire import Batch
from tracker.forward import Forwarder


class BrokerDown(UpstreamError):
    """The broker did not take the batch: the client should send it again later."""

    status = 503
    code = "broker_unavailable"
    retry_after = 1


class BrokerForwarder(Forwarder):
    def __init__(
        self, url: BrokerURL, stream: str, *, timeout: float = 5.0, replicas: int = 0
    ) -> None:
        self.url = url
        self.stream = stream
        self.timeout = timeout
        self.replicas = replicas  # that must hold a batch before it is answered (WAIT)
        self._redis = url.connect(timeout=timeout)

    def forward(self, batch: Batch) -> dict[str, Any]:
        return self.forward_body(orjson.dumps(batch.to_json()))

    def forward_body(self, body: bytes) -> dict[str, Any]:
        return self.forward_group([body], [None])[0]

    def forward_group(self, bodies: list[bytes], batches: list[Any]) -> list[dict[str, Any]]:
        """One round trip, in one transaction: all are published or none."""
        import redis

        try:
            pipe = self._redis.pipeline(transaction=True)
            for body in bodies:
                pipe.xadd(self.stream, {FIELD: body})
            ids = pipe.execute()
            replicated(self._redis, self.replicas, self.timeout / 2)  # within the socket's
        except redis.RedisError as exc:
            raise BrokerDown(f"the broker {self.url} did not take the batch: {exc}") from None
        return [{"status": "published", "entry": _text(i)} for i in ids]

    def close(self) -> None:
        self._redis.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
