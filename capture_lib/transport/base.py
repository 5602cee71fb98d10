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
    """Delivers batches. Called from the worker thread only, never from the workflow."""

    name = "transport"

    @abc.abstractmethod
    def send(self, batch: dict[str, Any], body: bytes) -> None:
        """Deliver one batch (``body`` is its JSON); raise :class:`TransportError` if not."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""
