"""Disk-only mode: batches appended as JSON Lines to per-process segment files.

Each line is one whole batch in the wire format, so ``provml ingest`` sends the lines
as they are. A line is written with a single ``write`` of the batch and its newline and,
under the default ``fsync="flush"`` policy, fsynced before the worker takes the next
batch: a process killed at any moment loses at most what the worker had not yet
written (the last flush interval). A line torn by a crash mid-write is the only
possible damage, and the reader skips and reports it.

Segments are named ``<session>-<pid>-<k>.jsonl`` and rolled at :attr:`SEGMENT_BYTES`,
so processes never share a file and a finished segment never changes again.
"""

from __future__ import annotations

import os
from typing import Any

from capture_lib.transport.base import Transport, TransportError


class FileTransport(Transport):
    name = "disk"
    SEGMENT_BYTES = 64 * 1024 * 1024

    def __init__(self, path: str, *, fsync: str = "flush") -> None:
        self.path = path
        self.fsync = fsync
        self._fd: int | None = None
        self._written = 0
        self._segment = 0
        self._prefix = ""

    def send(self, batch: dict[str, Any], body: bytes) -> None:
        prefix = f"{batch['session']}-{os.getpid()}"
        try:
            if self._fd is None or prefix != self._prefix or self._written >= self.SEGMENT_BYTES:
                self._open(prefix)
            assert self._fd is not None
            data = body + b"\n"
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._written += len(data)
            if self.fsync == "flush":
                os.fsync(self._fd)
        except OSError as exc:
            self.close()
            raise TransportError(f"cannot write to {self.path}: {exc}") from exc

    def _open(self, prefix: str) -> None:
        self.close()
        if prefix != self._prefix:
            self._prefix, self._segment = prefix, 0
        os.makedirs(self.path, exist_ok=True)
        while True:
            self._segment += 1
            name = os.path.join(self.path, f"{prefix}-{self._segment:04d}.jsonl")
            try:
                self._fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:
                continue
        self._written = 0
        self.current_file = name

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None
