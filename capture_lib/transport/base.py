"""The transport interface."""

from __future__ import annotations

import abc
from typing import Any


class TransportError(Exception):
    """A batch could not be delivered. ``retryable`` says whether trying later may work."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Transport(abc.ABC):
    """Delivers batches. ``send`` may be called from the worker thread and, for a
    transport that spills, from a caller's thread: implementations lock what they share."""

    name = "transport"

    @abc.abstractmethod
    def send(self, batch: dict[str, Any], body: bytes) -> None:
        """Deliver one batch (``body`` is its JSON); raise :class:`TransportError` if not."""

    def send_many(self, batches: list[tuple[dict[str, Any], bytes]]) -> None:
        """Deliver several batches; a transport that can do it in one write does."""
        for batch, body in batches:
            self.send(batch, body)

    def sync(self) -> None:  # noqa: B027 - optional hook
        """Make what was sent durable (called on flush)."""

    def tick(self, force: bool = False) -> None:  # noqa: B027 - optional hook
        """Periodic housekeeping, called by the worker after each wake-up; ``force`` on
        an explicit flush (do now what would otherwise wait, e.g. for a cool-down)."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """In a forked child: drop what the parent's process owns (files, sockets)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""
