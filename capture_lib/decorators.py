"""``@cl.task``: capture a function call as a task of the current workflow.

>>> import capture_lib as cl
>>> _ = cl.init(mode="off")
>>> @cl.task(stage="training", used=("data",), generated="model")
... def train(data, lr=0.1, epochs=3):
...     return {"weights": [lr] * epochs}
>>> with cl.workflow("example"):
...     train([1, 2, 3], lr=0.5)
{'weights': [0.5, 0.5, 0.5]}

The arguments named in ``used`` are recorded as what the task used (a
:class:`pathlib.Path` to an existing file as that file, by content); the other
arguments with JSON-friendly values are its parameters, or only those named in
``params``. The return value is recorded as generated under the role ``generated``
(a tuple of roles for a function returning a tuple; None records nothing). Outside a
``with cl.workflow(…)`` block, tasks belong to a workflow named after the script.

Capture never stops the call: if the task cannot be made, the function runs uncaptured,
and if its result cannot be recorded, the task ends without it; either way the error is
logged and counted under ``internal_error`` in ``cl.stats()["lost"]``.
"""

from __future__ import annotations

import functools
import inspect
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from capture_lib import runtime
from capture_lib.api import Task
from capture_lib.refs import reference

F = TypeVar("F", bound=Callable[..., Any])
_PARAM_TYPES = (str, int, float, bool, type(None))


def task(
    function: F | None = None,
    *,
    name: str | None = None,
    stage: str | None = None,
    used: Sequence[str] = (),
    params: Sequence[str] | None = None,
    generated: str | Sequence[str] | None = "return",
) -> Any:
    """Decorate a function so that each call is captured as a task (see module doc)."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        task_name = name or fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:  # the call itself is wrong: it raises as it would uncaptured
                return fn(*args, **kwargs)
            try:
                bound.apply_defaults()
                values = bound.arguments
                used_values = {k: _as_data(values[k]) for k in used if k in values}
                if params is None:
                    param_values = {
                        k: v for k, v in values.items()
                        if k not in used and isinstance(v, _PARAM_TYPES)
                    }  # fmt: skip
                else:
                    param_values = {k: values[k] for k in params if k in values}
                t = runtime.current_workflow().task(
                    task_name, stage=stage, used=used_values, params=param_values
                )
            except Exception:  # capture must never stop the call
                runtime.failed(f"@task {task_name}")
                return fn(*args, **kwargs)
            with t:
                result = fn(*args, **kwargs)
                _record_result(t, result, generated)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate


def _as_data(value: Any) -> Any:
    if isinstance(value, pathlib.PurePath) and os.path.exists(value):
        return reference("file", value, {}, runtime.count_lost)
    return value


def _record_result(t: Task, result: Any, generated: str | Sequence[str] | None) -> None:
    try:
        if generated is None:
            return
        if isinstance(generated, str):
            t.generated(**{generated: _as_data(result)})
        elif isinstance(result, tuple) and len(result) == len(generated):
            t.generated(**{g: _as_data(r) for g, r in zip(generated, result, strict=True)})
    except Exception:  # the task is recorded, without what it generated
        t.client.failed(f"@task {t.plan[1]}: recording its result", records_lost=False)
