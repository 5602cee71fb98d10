"""HTTP, else spool to disk, and re-send when the tracker is back: ``mode="http"``.

Batches the primary transport cannot deliver (the tracker is down, or keeps answering
5xx/429) are written by the fallback file transport, so they are never lost. While the
primary is failing, batches go straight to disk for a cool-down period (doubling up to
:attr:`MAX_COOLDOWN`), so a dead tracker does not stall the worker on retries. On the
worker's next wake-up after a successful send, the segments spooled by this process
are sent again, oldest first, and deleted once every line is delivered. Re-sending is
harmless: identifiers are derived from the records, so a batch delivered twice adds
nothing. A batch the tracker *refused* (4xx) is written under ``rejected/`` in the spool
directory and never re-sent automatically (``provml ingest`` shows why it is refused);
the refusal is raised to the worker, which counts it in ``cl.stats()["refused"]``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson

from capture_lib.transport.base import SENT, SPOOLED, Refused, Transport, TransportError
from capture_lib.transport.file import FileTransport

log = logging.getLogger(__name__)


class SpoolingTransport(Transport):
    """Send through ``primary``; what it cannot deliver is spooled by ``fallback`` and
    re-sent later (see the module docstring)."""

    COOLDOWN = 1.0
    MAX_COOLDOWN = 30.0

    def __init__(self, primary: Transport, fallback: FileTransport) -> None:
        self.primary = primary
        self.fallback = fallback
        self.spilled = 0
        self.resent_batches = 0
        self.resent_records = 0
        self.rejected = 0
        self._is_down = False
        self._refusals: list[Refused] = []
        self._down_until = 0.0
        self._cooldown = self.COOLDOWN
        self._rejected: FileTransport | None = None

    def send(self, batch: dict[str, Any], body: bytes) -> str:
        if time.monotonic() >= self._down_until:
            try:
                self.primary.send(batch, body)
            except Refused as exc:
                self._reject(batch, body)
                raise Refused(
                    f"{exc}; kept under {self._rejected_dir()}",
                    reason=exc.reason,
                    records=len(batch["records"]),
                ) from None
            except TransportError as exc:
                self._down(exc)
            else:
                self._up()
                return SENT
        self.fallback.send(batch, body)
        self.spilled += len(batch["records"])
        return SPOOLED

    def _down(self, exc: TransportError) -> None:
        self._down_until = time.monotonic() + self._cooldown
        self._cooldown = min(self._cooldown * 2, self.MAX_COOLDOWN)
        if not self._is_down:  # once per outage, not once per batch
            self._is_down = True
            log.warning(
                "provml: %s; spooling batches to %s until it answers again",
                exc,
                self.fallback.path,
            )

    def _up(self) -> None:
        self._down_until = 0.0  # it answered: not down any more, whatever the cooldown
        self._cooldown = self.COOLDOWN
        if self._is_down:
            self._is_down = False
            log.warning(
                "provml: %s answers again; re-sending the spooled batches",
                getattr(self.primary, "name", "the tracker"),
            )

    def _rejected_dir(self) -> str:
        return os.path.join(self.fallback.path, "rejected")

    def _reject(self, batch: dict[str, Any], body: bytes) -> None:
        if self._rejected is None:
            self._rejected = FileTransport(self._rejected_dir(), fsync=self.fallback.fsync)
        self._rejected.send(batch, body)
        self.rejected += len(batch["records"])

    def take_refusals(self) -> list[Refused]:
        refusals, self._refusals = self._refusals, []
        return refusals

    def waiting(self) -> bool:
        # what tick() could not re-send is back in closed_files; a segment still open
        # holds batches spooled since
        return bool(self.fallback.closed_files) or self.fallback.current_file is not None

    def tick(self, force: bool = False) -> None:
        if not force and time.monotonic() < self._down_until:
            return
        files = self.fallback.take_closed()
        for i, path in enumerate(files):
            if not self._resend(path):
                self.fallback.closed_files[:0] = files[i:]
                return
        # after the re-sends, which may have shown a receiver counted as down to answer
        # (a broker's check of its history at a flush must then still run); asking one
        # known to be down would only hold the worker
        if time.monotonic() >= self._down_until:
            self.primary.tick(force)

    def _resend(self, path: str) -> bool:
        """Send every line of a spooled segment; delete it when all are delivered."""
        try:
            with open(path, "rb") as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
        except OSError as exc:
            log.warning("provml: cannot read spooled %s: %s", path, exc)
            return True
        for body in lines:
            stub = {"batch": os.path.basename(path), "session": "", "records": []}
            try:
                self.primary.send(stub, body)
            except Refused as exc:
                self._reject({**stub, "session": _session_of(path)}, body)
                self._refusals.append(
                    Refused(f"{exc}; kept under {self._rejected_dir()}", reason=exc.reason,
                            records=_records_in(body))
                )  # fmt: skip
            except TransportError as exc:
                self._down(exc)
                return False
            else:
                self._up()
                self.resent_records += _records_in(body)
        self.resent_batches += len(lines)
        os.remove(path)
        return True

    def sync(self) -> None:
        self.fallback.sync()

    def after_fork(self) -> None:
        self.primary.after_fork()
        self.fallback.after_fork()
        self._rejected = None
        self.spilled = self.resent_batches = self.resent_records = 0
        self._refusals = []

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
        if self._rejected is not None:
            self._rejected.close()


def _session_of(path: str) -> str:
    """The session a segment file belongs to, from its name ``<session>-<pid>-<k>``."""
    return os.path.basename(path).rsplit("-", 2)[0]


def _records_in(body: bytes) -> int:
    """The number of records in a spooled batch (0 if it cannot be read)."""
    try:
        records = orjson.loads(body).get("records")
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return len(records) if isinstance(records, list) else 0
