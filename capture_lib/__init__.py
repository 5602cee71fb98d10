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

import os
from typing import Any

from capture_lib import runtime
from capture_lib.api import JoinedWorkflow, Section, Task, Workflow
from capture_lib.client import Client
from capture_lib.decorators import task
from capture_lib.integrations import autolog
from capture_lib.refs import reference
from capture_lib.runtime import current_workflow, flush, init, shutdown, stats
from provml.core.ids import parse_execution_iri, value_sha256

__all__ = [
    "Client",
    "JoinedWorkflow",
    "Section",
    "Task",
    "Workflow",
    "autolog",
    "code",
    "current_workflow",
    "dataset",
    "digest",
    "file",
    "flush",
    "inference",
    "init",
    "join",
    "model",
    "shutdown",
    "stats",
    "task",
    "workflow",
]


def workflow(
    name: str, params: dict[str, Any] | None = None, *, sample_interval: float | None = None
) -> Workflow:
    """A workflow run, used as ``with cl.workflow("name", params={...}) as wf:``.

    ``sample_interval``: sample the process's CPU, memory and GPUs every so many seconds
    while the workflow runs (see :mod:`capture_lib.sampler`).
    """
    return Workflow(runtime.get_client(), name, params, sample_interval=sample_interval)


def join(parent: str, name: str) -> JoinedWorkflow:
    """The workflow run ``parent`` (its IRI, ``wf.iri``), started by another process: a
    batch script's earlier step, a launcher. ``name`` is that workflow's name (the plan
    the tasks belong to). Its tasks are tasks of that run:

    >>> _ = init(mode="off")
    >>> run = join("https://provml.dev/id/exec/0190a4e2-7b1c-7d2e-8f00-012300000001", "sim")
    >>> with run.task("mesh") as t:
    ...     t.generated(cells=1000)
    >>> run.close()  # only if this process is the one that ends the run

    A ``parent`` that is not an execution's IRI raises ValueError (a usage error, said
    before anything runs).
    """
    session, n = parse_execution_iri(parent)
    return JoinedWorkflow(runtime.get_client(), session, n, name)


def file(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """A file (or directory), named by the SHA-256 of its content."""
    return reference("file", path, meta, runtime.count_lost)


def dataset(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """A dataset file or directory; ``meta`` may give ``version``, ``split``, ``source`` …"""
    return reference("dataset", path, meta, runtime.count_lost)


def code(path: str | os.PathLike[str], **meta: Any) -> dict[str, Any]:
    """Source code (a feature extractor, a preprocessing module), named by its content.

    Used by a training task and by the inference tasks of the model it trained, it lets
    provml tell whether the code serving a model changed since the model was trained.
    """
    return reference("code", path, meta, runtime.count_lost)


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
        runtime.failed("inference")
        return None


def model(
    path: str | os.PathLike[str],
    framework: str | None = None,
    framework_version: str | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """A model file with its metadata (framework, version, anything else)."""
    meta = {"framework": framework, "framework_version": framework_version, **meta}
    return reference("model", path, meta, runtime.count_lost)
