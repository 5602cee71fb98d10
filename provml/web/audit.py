"""The audit log: one JSON object per line, appended, flushed line by line.

Who (a token's name, never the token; ``anonymous`` when the server has no tokens)
wrote which batch, ran which query or question, imported or exported what, and which
requests were refused for want of a token or a scope; when (UTC) and from where.
:mod:`provml.web.app` writes the events; docs/security.md lists their members.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from typing import Any

import orjson

log = logging.getLogger(__name__)

#: longest query text, parameter value or reference kept in an event (characters)
MAX_TEXT = 2000


def truncate(text: str, limit: int = MAX_TEXT) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    return (text, False) if len(text) <= limit else (text[:limit], True)


class AuditLog:
    """An append-only file of events. Thread-safe; a line is written whole and flushed
    before :meth:`write` returns. The file is created readable by its owner only."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        record = {"time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                  "event": event, **fields}  # fmt: skip
        line = orjson.dumps(record, default=str) + b"\n"
        with self._lock:
            if self._file.closed:
                return
            try:
                view = memoryview(line)
                while view:  # unbuffered, O_APPEND: a line in one write, as a rule
                    written = self._file.write(view)
                    if not written:
                        raise OSError("nothing written")
                    view = view[written:]
            except OSError:
                log.exception("cannot write the audit log %s", self.path)

    def close(self) -> None:
        with self._lock:
            self._file.close()
