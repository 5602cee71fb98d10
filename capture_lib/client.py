"""The capture client: one per process, owning the session, the counter and the worker.

A client made directly (``capture_lib.Client(…)``) is as fork-safe as the one
:func:`capture_lib.init` makes: in a forked child every client not yet closed starts a
new session with its own numbers, queue, worker thread and files (:meth:`Client.after_fork`,
run by an at-fork hook; the worker also checks the process id when it starts and flushes).
"""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import re
import weakref
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from capture_lib.redact import Redactor
from capture_lib.transport import (
    FileTransport,
    HttpTransport,
    NoopTransport,
    SpoolingTransport,
    Transport,
)
from capture_lib.worker import Worker
from provml.core import config
from provml.core.ids import new_session_id

log = logging.getLogger(__name__)
#: ``stats()["lost"]`` reason for an exception caught so that it never reaches the workflow
INTERNAL_ERROR = "internal_error"


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
        queue_policy: str | None = None,
        block_timeout: float | None = None,
        fsync: str | None = None,
        allow_env: tuple[str, ...] | list[str] | None = None,
        redact_keys: tuple[str, ...] | list[str] | None = None,
        user: str | None = None,
        token: str | None = None,
    ) -> None:
        url = url or config.URL.get()
        token = token or config.TOKEN.get()
        if config.DISABLED.get():
            mode = "off"
        mode = mode or config.MODE.get() or ("http" if url else "disk")
        if mode not in {"http", "disk", "broker", "off"}:
            raise ValueError(f"mode must be 'http', 'disk', 'broker' or 'off', not {mode!r}")
        if mode == "http":
            url = check_url(url)
        elif mode == "broker" and not url:
            raise ValueError("mode='broker' needs a url: redis://HOST:PORT/DB (or PROVML_URL)")
        self.mode = mode
        self.url = url
        self.path = os.path.abspath(path or config.PATH.get())
        self.user = user or config.USER.get() or _login()
        self.allow_env = tuple(allow_env if allow_env is not None else config.ALLOW_ENV.get())
        self.redact = Redactor(redact_keys if redact_keys is not None else config.REDACT_KEYS.get())
        self.enabled = mode != "off"
        self.session = new_session_id()
        #: the numbers of this session's executions and records (``next(client.counter)``;
        #: :meth:`next_id` is the same as a method)
        self.counter = itertools.count(1)
        #: wall time at which the last task measured for CPU time and RSS started (see
        #: capture_lib.api: one float for the process, not a table keyed by task name)
        self.measured_at = 0.0
        self._env: dict[str, Any] | None = None
        interval = config.FLUSH_INTERVAL.get() if flush_interval is None else flush_interval
        self.disk: FileTransport | None = None
        transport = self._transport(mode, url, fsync, interval, token)
        self.worker = Worker(
            transport,
            self.session,
            queue_size=queue_size or config.QUEUE_SIZE.get(),
            batch_size=batch_size or config.BATCH_SIZE.get(),
            flush_interval=interval,
            policy=queue_policy or config.QUEUE_POLICY.get(),
            block_timeout=config.BLOCK_TIMEOUT.get() if block_timeout is None else block_timeout,
            spill=self.disk,
            next_id=self.next_id,
            redact=self.redact,
            on_fork=self.after_fork,
        )
        # submit checks the queue's bound; append does not, and serves only end records:
        # each follows a start that was checked, so the queue stays bounded by its size
        # plus the executions open at once
        self.submit = self.worker.submit if self.enabled else _discard
        # (the queue's own append, a C method: no Python frame on the caller's thread)
        self.append = self.worker._queue.append if self.enabled else _discard
        #: the worker's queue: a capture call appends to it itself while it holds fewer
        #: than ``worker.room`` records, else calls submit (never when capture is off:
        #: the worker's room stays 0, its thread never being started)
        self.queue: deque[Any] = self.worker._queue if self.enabled else deque()
        if self.enabled:
            self._export(url, interval)
        _live.add(self)

    def _transport(
        self, mode: str, url: str | None, fsync: str | None, interval: float, token: str | None
    ) -> Transport:
        if mode == "off":
            return NoopTransport()
        self.disk = FileTransport(
            self.path, fsync=fsync or config.FSYNC.get(), fsync_interval=interval
        )
        if mode == "disk":
            return self.disk
        assert url is not None
        if mode == "broker":  # redis imported only here (capture_lib.transport.broker)
            from capture_lib.transport.broker import BrokerTransport
            from provml.core.broker import BrokerURL

            broker = BrokerTransport(
                BrokerURL.parse(url), config.BROKER_STREAM.get(), timeout=config.TIMEOUT.get(),
                replicas=config.BROKER_REPLICAS.get(),
                replay_bytes=config.BROKER_REPLAY_BYTES.get(),
            )  # fmt: skip
            return SpoolingTransport(broker, self.disk)
        # one quick retry per batch: beyond that the spooling transport's cool-down (doubling up
        # to 30 s) spaces the attempts while batches go to disk
        http = HttpTransport(url, timeout=config.TIMEOUT.get(), token=token, retries=1)
        return SpoolingTransport(http, self.disk)

    def _export(self, url: str | None, interval: float) -> None:
        """Let child processes started with ``spawn`` capture to the same place."""
        os.environ.setdefault("PROVML_MODE", self.mode)
        os.environ.setdefault("PROVML_PATH", self.path)
        if url:
            os.environ.setdefault("PROVML_URL", url)

    def next_id(self) -> int:
        return next(self.counter)

    def count_lost(self, reason: str, n: int = 1) -> None:
        """Count what the workflow gave but could not be captured as given (an unreadable
        file): the records themselves are delivered, ``flush()`` stays True."""
        self.worker.count_lost(reason, n)

    def lose(self, reason: str, n: int = 1) -> None:
        """Count records that were not captured: the next ``flush()`` returns False."""
        self.worker.lose(reason, n)

    def failed(self, where: str, *, records_lost: bool = True) -> None:
        """An exception caught inside capture_lib so that it never reaches the workflow
        (call it in the ``except`` block): logged with its traceback and counted under
        ``internal_error`` in ``stats()["lost"]``. ``records_lost``: what was being
        captured is not recorded, and the next ``flush()`` returns False; else it was
        recorded, only not all of it (as :meth:`count_lost`)."""
        log.exception("provml: capture error in %s (ignored)", where)
        if records_lost:
            self.lose(INTERNAL_ERROR)
        else:
            self.count_lost(INTERNAL_ERROR)

    def invalid_value(self, cause: str, message: str) -> None:
        """A value the caller passed that cannot be recorded (a metric that is not a
        number): counted under ``invalid_value`` in ``stats()["lost"]``, and one warning
        per ``cause`` (further ones are only counted)."""
        self.worker.count_lost("invalid_value")
        self.worker.warn_once(
            f"invalid_value:{cause}",
            "provml: %s (counted in stats()['lost']['invalid_value']; further ones are not logged)",
            message,
        )

    def environment(self) -> dict[str, Any]:
        """What a workflow run records about where it ran (collected once per process)."""
        if self._env is None:
            from capture_lib import environment

            self._env = environment.collect(allow_env=self.allow_env)
        return self._env

    def stats(self) -> dict[str, Any]:
        transport = self.worker.transport
        counts = self.worker.counts
        out = {
            "mode": self.mode,
            "session": self.session,
            "queued": self.worker.pending(),
            # delivered: acknowledged by the tracker (re-sent from the spool included),
            # or written to a segment in disk mode
            "records_sent": counts["records_sent"] + getattr(transport, "resent_records", 0),
            "batches_sent": counts["batches_sent"] + getattr(transport, "resent_batches", 0),
            "records_spilled": counts["records_spilled"],
            "spilled_to_disk": getattr(transport, "spilled", 0) + counts["records_spilled"],
            "resent_batches": getattr(transport, "resent_batches", 0),
            # values over the wire format's limit, recorded by their SHA-256 only
            "values_digested": counts["values_digested"],
            "waiting_in_spool": transport.waiting(),
            "refused": dict(self.worker.refused),
            "refused_batches": dict(self.worker.refused_batches),
            "lost": dict(self.worker.lost),
        }
        primary = getattr(transport, "primary", None)
        if primary is not None and hasattr(primary, "counts"):  # the broker mode's
            out["broker"] = primary.counts()  # ReplayWindow
        return out

    def flush(self, timeout: float = 5.0) -> bool:
        return self.worker.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        _live.discard(self)
        return self.worker.close(timeout)

    def after_fork(self) -> None:
        """A forked child is a new session: its own numbers, queue, thread and files."""
        self.session = new_session_id()
        self.counter = itertools.count(1)
        self._env = None
        self.worker.transport.after_fork()
        self.worker.after_fork(self.session)
        if self.enabled:
            self.submit = self.worker.submit
            self.append = self.worker._queue.append
            self.queue = self.worker._queue


#: the clients not closed yet: each starts afresh in a forked child
_live: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_live):
        try:
            client.after_fork()
        except Exception:
            client.failed("restarting after fork", records_lost=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def check_url(url: str | None) -> str:
    """The tracker's base URL, checked before anything is captured: a wrong one would
    have every batch refused (404) or fail to connect, and only stderr would say so.

    >>> check_url("http://127.0.0.1:5000/")
    'http://127.0.0.1:5000'
    >>> check_url("http://127.0.0.1:5000/api/v1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ... is the service's API path; PROVML_URL is its base URL: 'http://127.0.0.1:5000'
    >>> check_url("https://gateway.example/api")  # provml behind a proxy at /api
    'https://gateway.example/api'
    """
    if not url:
        raise ValueError("mode='http' needs a url (or PROVML_URL)")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{url!r} is not an http:// or https:// URL of the tracker (e.g. http://127.0.0.1:5000)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: the tracker's URL takes no query or fragment")
    path = parts.path.rstrip("/")
    api = _API_PATH.search(path)
    if api is not None:
        base = urlunsplit((parts.scheme, parts.netloc, path[: api.start()], "", ""))
        raise ValueError(f"{url!r} is the service's API path; PROVML_URL is its base URL: {base!r}")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


#: an API path the transport adds itself (``/api/v1/batches``), or a part of it
#: the API's own path (a base URL may itself end in /api, behind a proxy: that is kept)
_API_PATH = re.compile(r"/api/v\d+(/batches)?$")


def _discard(record: Any) -> bool:
    return False


def _login() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
