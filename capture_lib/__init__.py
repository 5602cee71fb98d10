"""capture_lib: record the provenance of a workflow as it runs.

>>> import capture_lib as cl
>>> _ = cl.init(mode="off")
>>> with cl.workflow("example") as wf:
...     with wf.task("double", params={"factor": 2}) as t:
...         t.generated(result=4)
>>> cl.flush()
True

A capture call builds a small record and puts it on a bounded in-memory queue; a
background worker batches the records and delivers them over HTTP to the tracker
(``mode="http"``, spooling to disk while the tracker is unreachable) or as JSON Lines
segment files (``mode="disk"``, later loaded with ``provml ingest``). No exception from
capture_lib reaches the workflow; what could not be captured is counted in
:func:`stats`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from typing import Any

from capture_lib.api import Section, Task, Workflow, current
from capture_lib.client import Client
from capture_lib.decorators import default_workflow_name, task
from capture_lib.refs import reference
from provml.core.errors import ProvmlError
from provml.core.ids import value_sha256

__all__ = [
    "Client",
    "Section",
    "Task",
    "Workflow",
    "code",
    "current_workflow",
    "dataset",
    "digest",
    "file",
    "flush",
    "inference",
    "init",
    "model",
    "shutdown",
    "stats",
    "task",
    "workflow",
]

log = logging.getLogger(__name__)
_client: Client | None = None
_lock = threading.Lock()
ATEXIT_TIMEOUT = 2.0


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


def _get() -> Client:
    client = _client
    if client is None:
        try:
            client = init()
        except (ValueError, ProvmlError) as exc:  # a bad PROVML_* value: say which, briefly
            log.error("provml: cannot start capture from the environment: %s; capture is off", exc)
            client = init(mode="off")
        except Exception:
            log.exception("provml: cannot start capture from the environment; capture is off")
            client = init(mode="off")
    return client


def workflow(
    name: str, params: dict[str, Any] | None = None, *, sample_interval: float | None = None
) -> Workflow:
    """A workflow run, used as ``with cl.workflow("name", params={...}) as wf:``.

    ``sample_interval``: sample the process's CPU, memory and GPUs every so many seconds
    while the workflow runs (see :mod:`capture_lib.sampler`).
    """
    return Workflow(_get(), name, params, sample_interval=sample_interval)


_default: Workflow | None = None


def current_workflow() -> Workflow:
    """The innermost running ``with cl.workflow(…)`` of this context, else a workflow
    named after the script, started on first use and ended at exit."""
    global _default
    wf = current.get()
    if wf is not None and wf._client is _client:
        return wf
    if _default is None or _default._client is not _client or _default._ended:
        _default = Workflow(_get(), default_workflow_name()).start()
    return _default


def file(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """A file (or directory), named by the SHA-256 of its content."""
    return reference("file", path, meta)


def dataset(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """A dataset file or directory; ``meta`` may give ``version``, ``split``, ``source`` …"""
    return reference("dataset", path, meta)


def code(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """Source code (a feature extractor, a preprocessing module), named by its content.

    Used by a training task and by the inference tasks of the model it trained, it lets
    provml tell whether the code serving a model changed since the model was trained.
    """
    return reference("code", path, meta)


def digest(value: Any) -> dict[str, Any]:
    """A JSON value recorded by its SHA-256 only (the value itself stays here).

    It names the same graph node as the value itself would.
    """
    return {"@data": "value", "sha256": value_sha256(value)}


def inference(
    model: Any,
    inputs: Any,
    outputs: Any,
    *,
    name: str = "predict",
    store_inputs: bool = False,
    used: dict[str, Any] | None = None,
    workflow: Workflow | None = None,
) -> dict[str, str] | None:
    """Record one prediction: ``model`` (``cl.model(…)``, or another prediction) applied
    to ``inputs`` gave ``outputs``. Cheap enough for a serving path: by default only a
    digest of the inputs is kept (``store_inputs=True`` keeps the values).

    Returns a reference to the prediction; pass it as the ``inputs`` (or in ``used``) of
    another model's inference to record a composed model:

    >>> _ = init(mode="off")
    >>> p = inference(model={"@data": "model", "sha256": "a" * 64}, inputs=[1, 2], outputs=3)
    >>> sorted(p)
    ['@entity']
    """
    try:
        wf = workflow or current_workflow()
        is_ref = isinstance(inputs, dict) and ("@entity" in inputs or "@data" in inputs)
        data = {"model": model, "input": inputs if store_inputs or is_ref else digest(inputs)}
        if used:
            data.update(used)
        t = wf.task(name, stage="inference", used=data)
        t.start()
        t.generated(prediction=outputs)
        t.end()
        return {"@entity": t.generated_iri("prediction")}
    except Exception:
        log.exception("provml: inference capture failed (ignored)")
        return None


def model(
    path: str | os.PathLike[str],
    framework: str | None = None,
    framework_version: str | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """A model file with its metadata (framework, version, anything else)."""
    return reference(
        "model", path, {"framework": framework, "framework_version": framework_version, **meta}
    )


def flush(timeout: float = 5.0) -> bool:
    """Deliver everything captured so far; True if done within ``timeout`` seconds."""
    client = _client
    if client is None:
        return True
    try:
        return client.flush(timeout)
    except Exception:
        log.exception("provml: flush failed")
        return False


def stats() -> dict[str, Any]:
    """Counts: records sent, batches, spooled to disk, and records lost by reason."""
    return _get().stats()


def shutdown(timeout: float = 5.0) -> bool:
    """Flush and stop the worker. Capture starts again on the next call."""
    global _client
    with _lock:
        client, _client = _client, None
    return client.close(timeout) if client is not None else True


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    if _client is not None:
        _client.after_fork()


def _at_exit() -> None:
    if _default is not None:
        _default.end()
    client = _client
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(ATEXIT_TIMEOUT)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
