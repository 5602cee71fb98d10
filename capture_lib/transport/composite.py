"""HTTP, else spool to disk: the default for ``mode="http"``.

Batches that the primary transport cannot deliver (the tracker is down, or keeps
answering 5xx/429) are written by the fallback, so they are never lost; ``provml ingest``
sends the spooled files later. A batch the tracker *refused* (4xx) is spooled too, so it
stays available for inspection; ``provml ingest`` reports why it is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from capture_lib.transport.base import Transport, TransportError

log = logging.getLogger(__name__)


class CompositeTransport(Transport):
    name = "composite"

    def __init__(self, primary: Transport, fallback: Transport) -> None:
        self.primary = primary
        self.fallback = fallback
        self.spilled = 0

    def send(self, batch: dict[str, Any], body: bytes) -> None:
        try:
            self.primary.send(batch, body)
        except TransportError as exc:
            log.warning("provml: %s; spooling batch %s to disk", exc, batch["batch"])
            self.fallback.send(batch, body)
            self.spilled += len(batch["records"])

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
