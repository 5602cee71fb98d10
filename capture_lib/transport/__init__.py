"""Transports: where the worker's batches go. One module per transport."""

from capture_lib.transport.base import SENT, SPOOLED, Refused, Transport, TransportError
from capture_lib.transport.file import FileTransport
from capture_lib.transport.http import HttpTransport
from capture_lib.transport.noop import NoopTransport
from capture_lib.transport.spool import SpoolingTransport

__all__ = [
    "SENT",
    "SPOOLED",
    "FileTransport",
    "HttpTransport",
    "NoopTransport",
    "Refused",
    "SpoolingTransport",
    "Transport",
    "TransportError",
]
