"""The audit log: one JSON object per line, appended, flushed line by line.

Who (a token's name, never the token; ``anonymous`` when the server has no tokens)
wrote which batch, ran which query or question, imported or exported what, and which
requests were refused for want of a token or a scope; when (UTC) and from where.
:mod:`provml.web.app` writes the events; docs/security.md lists their members.

A view says which event a request to it makes: it calls :func:`note` (at its start, so
that a request that fails still leaves its event, with the error) and :func:`update` as it
learns more; an ``after_request`` hook (:func:`write_event`) adds who, from where, the
status and the error, and writes it. A request refused for want of a token or scope makes
a ``denied`` event instead (:func:`denied`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
from flask import Response, current_app, g, request

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


class Lazy:
    """A field computed when the event is written (after the view has run)."""

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute


def note(event: str, **fields: Any) -> None:
    """This request makes ``event`` with ``fields`` (replacing what was noted before)."""
    g.provml_audit = [(event, fields)]


def also(event: str, **fields: Any) -> None:
    """This request makes ``event`` too (a request that writes several batches)."""
    g.setdefault("provml_audit", []).append((event, fields))


def update(**fields: Any) -> None:
    """More fields for the event noted last."""
    events = g.get("provml_audit")
    if events:
        events[-1][1].update(fields)


def forget() -> None:
    """This request makes no event after all (its events are noted again by :func:`also`)."""
    g.provml_audit = []


def batch_fields(answer: dict[str, Any]) -> dict[str, Any]:
    """A ``batch`` event's fields from the answer to a batch taken."""
    return {k: answer.get(k) for k in ("batch", "session", "records")}


def denied(reason: str, scope: str | None = None) -> None:
    """This request was refused for want of a token (or of ``scope``)."""
    g.provml_denied = {"reason": reason} | ({"scope": scope} if scope else {})


def write_event(response: Response) -> Response:
    """After every request: the events it made, if the app keeps an audit log (never
    failing the request)."""
    audit_log = current_app.extensions.get("provml.audit")
    if audit_log is not None:
        try:
            _write(audit_log, response)
        except Exception:
            log.exception("cannot write an audit event")
    return response


def _write(audit_log: AuditLog, response: Response) -> None:
    path = truncate(request.path, 500)[0]
    who = {"who": g.get("provml_who", "anonymous"), "remote": request.remote_addr,
           "method": request.method, "path": path, "status": response.status_code}  # fmt: skip
    refused = g.get("provml_denied")
    if refused is not None:
        audit_log.write("denied", **who, **refused)
        return
    events = g.get("provml_audit")
    if not events:
        return
    if response.status_code >= 400:
        parsed = response.get_json(silent=True) if response.is_json else None
        who["error"] = parsed.get("error") if isinstance(parsed, dict) else None
    for event, fields in events:
        values = {k: v.compute() if isinstance(v, Lazy) else v for k, v in fields.items()}
        audit_log.write(event, **who, **values)
