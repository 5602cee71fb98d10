"""The transport interface."""

from __future__ import annotations

import abc
from typing import Any

from capture_lib.errors import Refused, TransportError

#: outcomes of :meth:`Transport.send`: delivered, or kept on disk to be sent later
#: (``None`` counts as delivered, so a transport may simply return nothing)
SENT = "sent"
SPOOLED = "spooled"
Outcome = str | None | Refused

__all__ = ["SENT", "SPOOLED", "Outcome", "Refused", "Transport", "TransportError"]


class Transport(abc.ABC):
    """Delivers batches. ``send`` may be called from the worker thread and, for a
    transport that spills, from a caller's thread: implementations lock what they share."""

    @abc.abstractmethod
    def send(self, batch: dict[str, Any], body: bytes) -> str | None:
        """Deliver one batch (``body`` is its JSON). Return :data:`SENT` (or None), or
        :data:`SPOOLED` if it was kept on disk to send later; raise :class:`Refused` if
        the receiver refused it, :class:`TransportError` if it could not be delivered."""

    def send_many(self, batches: list[tuple[dict[str, Any], bytes]]) -> list[Outcome]:
        """Deliver several batches; a transport that can do it in one write does.
        Returns each batch's outcome (a refusal is an outcome: the others still go)."""
        outcomes: list[Outcome] = []
        for batch, body in batches:
            try:
                outcomes.append(self.send(batch, body))
            except Refused as exc:
                outcomes.append(exc)
        return outcomes

    def take_refusals(self) -> list[Refused]:
        """Refusals met outside :meth:`send` (re-sending a spool), since the last call."""
        return []

    def waiting(self) -> bool:
        """True while batches sit only in a spool, waiting to be sent again."""
        return False

    def sync(self) -> None:  # noqa: B027 - optional hook
        """Make what was sent durable (called on flush)."""

    def tick(self, force: bool = False) -> None:  # noqa: B027 - optional hook
        """Periodic housekeeping, called by the worker after each wake-up; ``force`` on
        an explicit flush (do now what would otherwise wait, e.g. for a cool-down)."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """In a forked child: drop what the parent's process owns (files, sockets)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""
