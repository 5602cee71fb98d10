"""Disk-only mode: batches appended as JSON Lines to per-process segment files.

Each line is one whole batch in the wire format, so ``provml ingest`` sends the lines
as they are. A line is written with one ``write`` call as soon as the worker has a batch
(at the latest every flush interval), so a process killed with SIGKILL loses only what
the worker had not yet written: at most one flush interval. A line torn by a kill in
the middle of a write is the only possible damage; readers skip and report it.

``fsync`` policy, against a crash of the whole machine (a killed *process* loses
nothing the kernel already has):

* ``"interval"`` (default): fsync at most once per ``fsync_interval`` seconds, and on
  every flush and close;
* ``"always"``: fsync after every batch;
* ``"never"``: leave it to the operating system.

Segments are named ``<session>-<pid>-<k>.jsonl`` and rolled at :attr:`SEGMENT_BYTES`,
so processes never share a file and a closed segment never changes again.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from capture_lib.transport.base import SENT, Outcome, Transport, TransportError

FSYNC_POLICIES = ("interval", "always", "never")


class FileTransport(Transport):
    SEGMENT_BYTES = 64 * 1024 * 1024

    def __init__(self, path: str, *, fsync: str = "interval", fsync_interval: float = 1.0) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.path = path
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.lock = threading.Lock()
        self.current_file: str | None = None
        self.closed_files: list[str] = []  # segments this transport wrote and closed
        self._fd: int | None = None
        self._written = 0
        self._segment = 0
        self._prefix = ""
        self._dirty = False
        self._last_sync = time.monotonic()

    def send(self, batch: dict[str, Any], body: bytes) -> str:
        self._write(batch["session"], body + b"\n")
        return SENT

    def send_many(self, batches: list[tuple[dict[str, Any], bytes]]) -> list[Outcome]:
        """Several batches, one line each, in a single write."""
        sessions = {batch["session"] for batch, _ in batches}
        if len(sessions) != 1:
            return super().send_many(batches)
        self._write(sessions.pop(), b"".join(body + b"\n" for _, body in batches))
        return [SENT] * len(batches)

    def _write(self, session: str, data: bytes) -> None:
        prefix = f"{session}-{os.getpid()}"
        with self.lock:
            try:
                if (
                    self._fd is None
                    or prefix != self._prefix
                    or self._written >= self.SEGMENT_BYTES
                ):
                    self._open(prefix)
                assert self._fd is not None
                view = memoryview(data)
                self._written += len(view)
                while view:
                    view = view[os.write(self._fd, view) :]
                self._dirty = True
                if self.fsync == "always" or (
                    self.fsync == "interval"
                    and time.monotonic() - self._last_sync >= self.fsync_interval
                ):
                    self._sync()
            except OSError as exc:
                self._close()
                raise TransportError(f"cannot write to {self.path}: {exc}") from exc

    def _open(self, prefix: str) -> None:
        self._close()
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

    def _sync(self) -> None:
        if self._fd is not None and self._dirty and self.fsync != "never":
            os.fsync(self._fd)
        self._dirty = False
        self._last_sync = time.monotonic()

    def sync(self) -> None:
        with self.lock:
            try:
                self._sync()
            except OSError as exc:
                raise TransportError(f"cannot fsync in {self.path}: {exc}") from exc

    def take_closed(self) -> list[str]:
        """Close the current segment; return (and forget) every segment closed so far."""
        with self.lock:
            self._close()
            files, self.closed_files = self.closed_files, []
        return files

    def _close(self) -> None:
        if self._fd is not None:
            try:
                self._sync()
                os.close(self._fd)
            finally:
                self._fd = None
                if self.current_file:
                    self.closed_files.append(self.current_file)
                self.current_file = None

    def close(self) -> None:
        with self.lock:
            self._close()

    def after_fork(self) -> None:
        """A forked child must not write to (or fsync) the parent's open segment."""
        self.lock = threading.Lock()
        self._fd = None
        self.current_file = None
        self.closed_files = []
