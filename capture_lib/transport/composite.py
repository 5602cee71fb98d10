"""HTTP, else spool to disk, and re-send when the tracker is back: ``mode="http"``.

Batches the primary transport cannot deliver (the tracker is down, or keeps answering
5xx/429) are written by the fallback file transport, so they are never lost. While the
primary is failing, batches go straight to disk for a cool-down period (doubling up to
:attr:`MAX_COOLDOWN`), so a dead tracker does not stall the worker on retries. On the
worker's next wake-up after a successful send, the segments spooled by this process
are sent again, oldest first, and deleted once every line is delivered. Re-sending is
harmless: identifiers are derived from the records, so a batch delivered twice adds
nothing. A batch the tracker *refused* (4xx) is spooled too and kept, for
``provml ingest`` to report why.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from capture_lib.transport.base import Transport, TransportError
from capture_lib.transport.file import FileTransport

log = logging.getLogger(__name__)


class CompositeTransport(Transport):
    name = "composite"
    COOLDOWN = 1.0
    MAX_COOLDOWN = 30.0

    def __init__(self, primary: Transport, fallback: FileTransport) -> None:
        self.primary = primary
        self.fallback = fallback
        self.spilled = 0
        self.resent_batches = 0
        self._down_until = 0.0
        self._cooldown = self.COOLDOWN
        self._refused: set[str] = set()

    def send(self, batch: dict[str, Any], body: bytes) -> None:
        if time.monotonic() >= self._down_until:
            try:
                self.primary.send(batch, body)
                self._cooldown = self.COOLDOWN
                return
            except TransportError as exc:
                if exc.retryable:
                    self._down_until = time.monotonic() + self._cooldown
                    self._cooldown = min(self._cooldown * 2, self.MAX_COOLDOWN)
                log.warning("provml: %s; spooling batch %s to disk", exc, batch["batch"])
        self.fallback.send(batch, body)
        self.spilled += len(batch["records"])

    def tick(self) -> None:
        if time.monotonic() < self._down_until:
            return
        files = self.fallback.take_closed()
        for i, path in enumerate(files):
            if not self._resend(path):
                self.fallback.closed_files[:0] = files[i:]
                return

    def _resend(self, path: str) -> bool:
        """Send every line of a spooled segment; delete it when all are delivered."""
        try:
            with open(path, "rb") as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
        except OSError as exc:
            log.warning("provml: cannot read spooled %s: %s", path, exc)
            return True
        refused = False
        for body in lines:
            try:
                self.primary.send({"batch": os.path.basename(path)}, body)
            except TransportError as exc:
                if exc.retryable:
                    self._down_until = time.monotonic() + self._cooldown
                    return False
                refused = True  # keep the file for provml ingest to report
        self.resent_batches += len(lines)
        if not refused:
            os.remove(path)
        return True

    def sync(self) -> None:
        self.fallback.sync()

    def after_fork(self) -> None:
        self.primary.after_fork()
        self.fallback.after_fork()
        self.spilled = self.resent_batches = 0

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
