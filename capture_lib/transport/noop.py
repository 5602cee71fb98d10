"""Mode ``off``: batches go nowhere."""

from __future__ import annotations

from typing import Any

from capture_lib.transport.base import SENT, Transport


class NoopTransport(Transport):
    def send(self, batch: dict[str, Any], body: bytes) -> str:
        return SENT
