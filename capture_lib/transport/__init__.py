"""Transports: where the worker's batches go. One module per transport."""

from capture_lib.transport.base import SENT, SPOOLED, Refused, Transport, TransportError
from capture_lib.transport.composite import CompositeTransport
from capture_lib.transport.file import FileTransport
from capture_lib.transport.http import HttpTransport
from capture_lib.transport.noop import NoopTransport

__all__ = [
    "SENT",
    "SPOOLED",
    "CompositeTransport",
    "FileTransport",
    "HttpTransport",
    "NoopTransport",
    "Refused",
    "Transport",
    "TransportError",
]
