"""capture_lib's errors: one root, :class:`CaptureError`, under provml's own root.

No capture call raises these into a workflow (capture errors are logged and counted in
``cl.stats()``); they pass between capture_lib's parts, chiefly a transport and the
worker that delivers through it.
"""

from __future__ import annotations

from provml.core.errors import ProvmlError


class CaptureError(ProvmlError):
    """Root of the errors capture_lib raises on purpose."""

    code = "capture_error"


class TransportError(CaptureError):
    """A batch could not be delivered. ``retryable`` says whether trying later may work."""

    code = "transport_error"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Refused(TransportError):
    """The receiver refused a batch (a 4xx answer other than 429): sending it again
    unchanged would be refused again. ``reason`` names the cause for ``cl.stats()``
    (``http_404``, ``http_413`` …); ``records`` is the batch's record count."""

    code = "refused"

    def __init__(self, message: str, *, reason: str, records: int = 0) -> None:
        super().__init__(message, retryable=False)
        self.reason = reason
        self.records = records


__all__ = ["CaptureError", "Refused", "TransportError"]
