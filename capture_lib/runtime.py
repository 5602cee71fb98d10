"""The process's capture: the running client, started on first use, and the current workflow.

:mod:`capture_lib` re-exports :func:`init`, :func:`flush`, :func:`stats`, :func:`shutdown`
and :func:`current_workflow`; the decorators and the data references reach the running
client through this module. Exceptions met here never reach the workflow: they are
logged and counted in ``stats()["lost"]``.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any

from capture_lib.api import Workflow, current
from capture_lib.client import Client
from provml.core.errors import ProvmlError

log = logging.getLogger(__name__)
_client: Client | None = None
_lock = threading.Lock()
_default: Workflow | None = None
ATEXIT_TIMEOUT = 2.0
#: ``stats()["lost"]`` reason when capture could not start from the environment (a bad
#: ``PROVML_*`` value) and was turned off
INIT_ERROR = "init_error"


def init(
    url: str | None = None,
    mode: str | None = None,
    path: str | None = None,
    **options: Any,
) -> Client:
    """Start (or restart) capture for this process.

    ``mode``: ``"http"`` (send to the tracker at ``url``), ``"disk"`` (JSON Lines files
    under ``path``, default ``prov-logs/``) or ``"off"``. Without arguments the
    ``PROVML_*`` environment variables decide (``provml config`` lists them); the default
    is ``http`` when ``PROVML_URL`` is set, else ``disk``. Further options:
    ``flush_interval``, ``queue_size``, ``batch_size``, ``fsync``, ``user``, ``token``
    (the access token sent as ``Authorization: Bearer``; default ``PROVML_TOKEN``).
    """
    global _client
    with _lock:
        old, _client = _client, Client(url=url, mode=mode, path=path, **options)
    if old is not None:
        old.close(ATEXIT_TIMEOUT)
    return _client


def get_client() -> Client:
    """The running client, started from the environment on first use."""
    client = _client
    if client is None:
        try:
            client = init()
        except (ValueError, ProvmlError) as exc:  # a bad PROVML_* value: say which, briefly
            log.error("provml: cannot start capture from the environment: %s; capture is off", exc)
            client = init(mode="off")
            client.count_lost(INIT_ERROR)
        except Exception:
            log.exception("provml: cannot start capture from the environment; capture is off")
            client = init(mode="off")
            client.count_lost(INIT_ERROR)
    return client


def current_client() -> Client | None:
    """The running client, or None if capture has not started (nothing is started)."""
    return _client


def count_lost(reason: str, n: int = 1) -> None:
    """Count, on the running client if any, what could not be captured as given."""
    client = _client
    if client is not None:
        client.count_lost(reason, n)


def failed(where: str, *, records_lost: bool = True) -> None:
    """An exception caught so that it never reaches the workflow (call it in the
    ``except`` block): logged, and counted on the running client if any (see
    :meth:`Client.failed`)."""
    client = _client
    if client is None:
        log.exception("provml: capture error in %s (ignored)", where)
    else:
        client.failed(where, records_lost=records_lost)


def default_workflow_name() -> str:
    """The name of the workflow that tasks outside any ``with cl.workflow`` belong to."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"


def current_workflow() -> Workflow:
    """The innermost running ``with cl.workflow(…)`` of this context, else a workflow
    named after the script, started on first use and ended at exit."""
    global _default
    wf = current.get()
    if wf is not None and wf.client is _client:
        return wf
    if _default is None or _default.client is not _client or _default.ended:
        _default = Workflow(get_client(), default_workflow_name()).start()
    return _default


def flush(timeout: float = 5.0) -> bool:
    """Deliver everything captured so far; True if done within ``timeout`` seconds."""
    client = _client
    if client is None:
        return True
    try:
        return client.flush(timeout)
    except Exception:
        client.failed("flush", records_lost=False)
        return False


def stats() -> dict[str, Any]:
    """Counts: records sent, batches, spooled to disk, and records lost by reason."""
    return get_client().stats()


def shutdown(timeout: float = 5.0) -> bool:
    """Flush and stop the worker. Capture starts again on the next call."""
    global _client
    with _lock:
        client, _client = _client, None
    return client.close(timeout) if client is not None else True


def _after_fork_in_child() -> None:
    # the client itself starts afresh in the child (see capture_lib.client)
    global _lock
    _lock = threading.Lock()


def _at_exit() -> None:
    if _default is not None:
        _default.end()
    client = _client
    if client is not None:
        try:
            client.close(ATEXIT_TIMEOUT)
        except Exception:
            client.failed("close at exit", records_lost=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
