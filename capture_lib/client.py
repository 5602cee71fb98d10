"""The capture client: one per process, owning the session, the counter and the worker."""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import platform
import socket
import sys
import threading
from collections import Counter
from typing import Any

from capture_lib.transport import (
    CompositeTransport,
    FileTransport,
    HttpTransport,
    NoopTransport,
    Transport,
)
from capture_lib.worker import Worker
from provml import config
from provml.ids import new_session_id

log = logging.getLogger(__name__)


class Client:
    """Holds one capture session. Made by :func:`capture_lib.init`."""

    def __init__(
        self,
        *,
        url: str | None = None,
        mode: str | None = None,
        path: str | None = None,
        flush_interval: float | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        fsync: str | None = None,
        user: str | None = None,
        token: str | None = None,
    ) -> None:
        url = url or config.URL.get()
        if config.DISABLED.get():
            mode = "off"
        mode = mode or config.MODE.get() or ("http" if url else "disk")
        if mode not in {"http", "disk", "off"}:
            raise ValueError(f"mode must be 'http', 'disk' or 'off', not {mode!r}")
        if mode == "http" and not url:
            raise ValueError("mode='http' needs a url (or PROVML_URL)")
        self.mode = mode
        self.url = url
        self.path = os.path.abspath(path or config.PATH.get())
        self.user = user or config.USER.get() or _login()
        self.enabled = mode != "off"
        self.session = new_session_id()
        self._counter = itertools.count(1)
        self._env: dict[str, Any] | None = None
        self._lost_lock = threading.Lock()
        self._own_lost: Counter[str] = Counter()
        self.worker = Worker(
            self._transport(mode, url, fsync, token),
            self.session,
            queue_size=queue_size or config.QUEUE_SIZE.get(),
            batch_size=batch_size or config.BATCH_SIZE.get(),
            flush_interval=(
                config.FLUSH_INTERVAL.get() if flush_interval is None else flush_interval
            ),
        )
        self.submit = self.worker.submit if self.enabled else _discard

    def _transport(
        self, mode: str, url: str | None, fsync: str | None, token: str | None
    ) -> Transport:
        if mode == "off":
            return NoopTransport()
        disk = FileTransport(self.path, fsync=fsync or config.FSYNC.get())
        if mode == "disk":
            return disk
        assert url is not None
        http = HttpTransport(url, timeout=config.TIMEOUT.get(), token=token)
        return CompositeTransport(http, disk)

    def next_id(self) -> int:
        return next(self._counter)

    def count_lost(self, reason: str, n: int = 1) -> None:
        with self._lost_lock:
            self._own_lost[reason] += n

    def environment(self) -> dict[str, Any]:
        """What a workflow run records about where it ran (computed once per process)."""
        if self._env is None:
            self._env = {
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "argv": " ".join(sys.argv),
            }
        return self._env

    def stats(self) -> dict[str, Any]:
        lost = Counter(self.worker.lost)
        lost.update(self._own_lost)
        transport = self.worker.transport
        return {
            "mode": self.mode,
            "session": self.session,
            "queued": self.worker.pending(),
            "records_sent": self.worker.counts["records_sent"],
            "batches_sent": self.worker.counts["batches_sent"],
            "spilled_to_disk": getattr(transport, "spilled", 0),
            "lost": dict(lost),
        }

    def flush(self, timeout: float = 5.0) -> bool:
        return self.worker.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        return self.worker.close(timeout)

    def after_fork(self) -> None:
        """A forked child is a new session: its own numbers, queue, thread and files."""
        self.session = new_session_id()
        self._counter = itertools.count(1)
        self._env = None
        self._own_lost = Counter()
        self._lost_lock = threading.Lock()
        self.worker.after_fork(self.session)
        if self.enabled:
            self.submit = self.worker.submit


def _discard(record: dict[str, Any]) -> bool:
    return False


def _login() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
