"""The tracker's errors: one root, :class:`TrackerError`."""

from __future__ import annotations

from provml.core.errors import ProvmlError


class TrackerError(ProvmlError):
    """Root of the errors only the tracker raises."""


class ShuttingDown(TrackerError):
    """The tracker is closing: the sender should retry (at the next start)."""

    status = 503
    code = "shutting_down"
    retry_after = 1


class QueueFull(TrackerError):
    """The queue holds its maximum; the sender should retry later."""

    status = 503
    code = "queue_full"
    retry_after = 1
