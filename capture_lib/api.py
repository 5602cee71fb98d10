"""Workflows, tasks and sections: the context managers a workflow author writes.

Every method here builds one small dict and hands it to :meth:`Client.submit`; nothing
else runs on the caller's thread. Nothing here raises into the workflow: an internal
error is logged and counted (``stats()["lost"]["internal_error"]``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from provml.ids import execution_iri, generated_value_iri

if TYPE_CHECKING:
    from capture_lib.client import Client

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
_INF = float("inf")
MAX_NAME = 256


def safe(method: F) -> F:
    """Run ``method``; on any exception log it, count it, and return None."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception:
            log.exception("provml: capture error in %s (ignored)", method.__qualname__)
            self._client.count_lost("internal_error")
            return None

    return wrapper  # type: ignore[return-value]


def _name(name: object) -> str:
    text = name if isinstance(name, str) else str(name)
    return text[:MAX_NAME] if text else "unnamed"


def _status(exc_type: type[BaseException] | None, exc: BaseException | None) -> dict[str, Any]:
    if exc_type is None:
        return {}
    return {"status": "failed", "error": f"{exc_type.__name__}: {exc}"[:2000]}


class _Execution:
    """Shared by workflows, tasks and sections: a number, a start and an end."""

    kind = ""
    _ended = False

    def __init__(self, client: Client) -> None:
        self._client = client
        self.n = client.next_id()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(**_status(exc_type, exc))

    def start(self) -> Any:
        raise NotImplementedError

    def end(self, status: str = "finished", error: str | None = None) -> None:
        raise NotImplementedError

    @property
    def iri(self) -> str:
        """The IRI this execution has in the graph (ids are derived: see provml.ids)."""
        return execution_iri(self._client.session, self.n)

    @safe
    def metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one value of a metric (loss, accuracy …) measured by this execution."""
        if not (-_INF < value < _INF):
            value = float(value)
            value = "NaN" if value != value else ("INF" if value > 0 else "-INF")  # type: ignore[assignment]
        elif type(value) is not float and type(value) is not int:
            value = float(value)
        rec = {
            "kind": "metric",
            "n": self._client.next_id(),
            "parent": self.n,
            "name": _name(name),
            "value": value,
            "time": time.time(),
        }
        if step is not None:
            rec["step"] = int(step)
        self._client.submit(rec)


class Workflow(_Execution):
    """One run of a workflow; made by :func:`capture_lib.workflow`."""

    def __init__(self, client: Client, name: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(client)
        self.name = _name(name)
        self.params = params

    @safe
    def start(self) -> Workflow:
        rec = {
            "kind": "workflow_start",
            "n": self.n,
            "name": self.name,
            "time": time.time(),
            "env": self._client.environment(),
        }
        if self.params:
            rec["params"] = self.params
        user = self._client.user
        if user:
            rec["user"] = user
        self._client.submit(rec)
        return self

    @safe
    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        rec = {"kind": "workflow_end", "n": self.n, "name": self.name, "time": time.time()}
        if status != "finished":
            rec["status"] = status
        if error:
            rec["error"] = error
        self._client.submit(rec)

    def task(
        self,
        name: str,
        *,
        stage: str | None = None,
        used: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Task:
        """A task of this workflow. ``stage``: training, validation, evaluation, inference."""
        return Task(self._client, self, name, stage, used, params)


class Task(_Execution):
    def __init__(
        self,
        client: Client,
        workflow: Workflow,
        name: str,
        stage: str | None,
        used: dict[str, Any] | None,
        params: dict[str, Any] | None,
    ) -> None:
        super().__init__(client)
        self.workflow = workflow
        self.plan = [workflow.name, _name(name)]
        self.stage = stage
        self.used = used
        self.params = params
        self._generated: dict[str, Any] = {}

    @safe
    def start(self) -> Task:
        rec = {
            "kind": "task_start",
            "n": self.n,
            "parent": self.workflow.n,
            "plan": self.plan,
            "time": time.time(),
        }
        if self.stage:
            rec["stage"] = self.stage
        if self.params:
            rec["params"] = self.params
        if self.used:
            rec["used"] = self.used
        self._client.submit(rec)
        return self

    @safe
    def generated(self, **values: Any) -> None:
        """Name what this task produced: files (``cl.file``), models, plain values."""
        self._generated.update(values)

    @safe
    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        rec = {"kind": "task_end", "n": self.n, "plan": self.plan, "time": time.time()}
        if self.stage:
            rec["stage"] = self.stage
        if self._generated:
            rec["generated"] = self._generated
        if status != "finished":
            rec["status"] = status
        if error:
            rec["error"] = error
        self._client.submit(rec)

    def generated_iri(self, role: str) -> str:
        """The IRI of an inline value generated under ``role``: a prediction's id."""
        return generated_value_iri(self.iri, role)

    def section(self, name: str, index: int | None = None) -> Section:
        """A repeated part of this task: an epoch, a batch, a fold."""
        return Section(self._client, self, name, index)


class Section(_Execution):
    def __init__(self, client: Client, task: Task, name: str, index: int | None) -> None:
        super().__init__(client)
        self.task = task
        self.plan = [*task.plan, _name(name)]
        self.index = index

    @safe
    def start(self) -> Section:
        rec = {
            "kind": "section_start",
            "n": self.n,
            "parent": self.task.n,
            "plan": self.plan,
            "time": time.time(),
        }
        if self.index is not None:
            rec["index"] = int(self.index)
        self._client.submit(rec)
        return self

    @safe
    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        rec = {"kind": "section_end", "n": self.n, "plan": self.plan, "time": time.time()}
        if status != "finished":
            rec["status"] = status
        if error:
            rec["error"] = error
        self._client.submit(rec)
