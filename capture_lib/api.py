"""Workflows, tasks and sections: the context managers a workflow author writes.

Each capture call builds one tuple (:mod:`capture_lib.records`) and hands it to the
client's ``submit``; nothing else runs on the caller's thread. Nothing here raises into
the workflow: an internal error is logged and counted (``stats()["lost"]``, see
:meth:`capture_lib.client.Client.failed`).

CPU time and peak RSS cost a system call each (0.7 and 1.3 µs here), more than a whole
short task costs to capture. Which tasks carry them is decided without any state per
task name (a job may run millions of distinct names): a task is measured when at least
:data:`RESOURCE_INTERVAL` seconds have passed since the last measured task of the process
started, or always/never with ``resources=``. Every task that follows a task of 1 ms or
more is therefore measured (a run of slow tasks: all of them), and of a stream of short
tasks about one per millisecond is, as a sample: about 3 µs a millisecond, 0.3 % of a core.
"""

from __future__ import annotations

import contextvars
import resource
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from capture_lib import records as R
from capture_lib.sampler import Sampler
from provml.core.ids import execution_iri, generated_value_iri

if TYPE_CHECKING:
    from capture_lib.client import Client

#: the integers JSON carries exactly here (orjson writes 64-bit integers, no more)
_I64, _U64 = -(2**63), 2**64
MAX_NAME = 256
#: a task is measured when this many seconds passed since the last measured task started
RESOURCE_INTERVAL = 0.001
_now = time.time
_TASK_START, _TASK_END, _METRIC = R.TASK_START, R.TASK_END, R.METRIC
_cpu = time.process_time
_rusage = resource.getrusage
_SELF = resource.RUSAGE_SELF

#: the innermost running workflow of this context (used by ``@cl.task``)
current: contextvars.ContextVar[Workflow | None] = contextvars.ContextVar(
    "provml_workflow", default=None
)


def _name(name: object) -> str:
    text = name if isinstance(name, str) else str(name)
    return text[:MAX_NAME] if text else "unnamed"


def _number(value: object) -> float:
    """A metric value as a float: a number of any numeric type (numpy, torch scalars,
    Decimal …) is converted; anything else — a string, None, a list — raises."""
    if isinstance(value, (str, bytes, bytearray)):
        # float("0.5") would work, but a string is not a measurement: refuse it
        raise TypeError(f"a metric value is a number, not {type(value).__name__}")
    return float(value)  # type: ignore[arg-type]


def _integer(step: object) -> int:
    """A metric step as an int: an integral number; a string or a fraction raises."""
    if isinstance(step, (str, bytes, bytearray)):
        raise TypeError(f"a metric step is an integer, not {type(step).__name__}")
    number = float(step)  # type: ignore[arg-type]
    if number != int(number) or not _I64 <= int(number) < _U64:
        raise ValueError(f"a metric step is a 64-bit integer, not {str(step)[:40]}")
    return int(number)


class _Execution:
    """Shared by workflows, tasks and sections: a number, a session, a start and an end."""

    __slots__ = ("_client", "_ended", "_session", "n")

    def __init__(self, client: Client) -> None:
        self._client = client
        self._session = client.session
        self.n = client.next_id()
        self._ended = False

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end()
        else:
            self.end("failed", f"{exc_type.__name__}: {exc}"[:2000])

    @property
    def client(self) -> Client:
        """The capture client this execution records through."""
        return self._client

    @property
    def ended(self) -> bool:
        """True once :meth:`end` was called."""
        return self._ended

    def start(self) -> Any:
        raise NotImplementedError

    def end(self, status: str = "finished", error: str | None = None) -> None:
        raise NotImplementedError

    def _own(self) -> str | None:
        """This execution's session if it is not the client's current one (after fork)."""
        session = self._session
        return None if session is self._client.session else session

    @property
    def iri(self) -> str:
        """The IRI this execution has in the graph (ids are derived: see provml.core.ids)."""
        return execution_iri(self._session, self.n)

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one value of a metric (loss, accuracy …) measured by this execution."""
        client = self._client
        try:
            if type(value) is not float and (type(value) is not int or not _I64 <= value < _U64):
                value = _number(value)  # an int past 64 bits: the float it is, if finite
            if value - value:  # not 0: NaN or an infinity (NaN - NaN and ∞ - ∞ are NaN)
                value = "NaN" if value != value else ("INF" if value > 0 else "-INF")  # type: ignore[assignment]
            if step is not None and (type(step) is not int or not _I64 <= step < _U64):
                step = _integer(step)
        except (TypeError, ValueError, ArithmeticError):
            # the caller's mistake, not ours: one warning per cause, no traceback
            client.invalid_value(
                "metric",
                f"metric {name!r}: value {repr(value)[:80]} or step {repr(step)[:80]} is not "
                "a number; the value is not recorded",
            )
            return
        try:
            if type(name) is not str or len(name) > MAX_NAME or not name:
                name = _name(name)
            psess = self._session
            record = (_METRIC, next(client.counter), self.n,
                      None if psess is client.session else psess, name, value, _now(),
                      step)  # fmt: skip
            queue = client.queue  # Worker.submit's usual case, inlined
            if len(queue) < client.worker.room:
                queue.append(record)
            else:
                client.submit(record)
        except Exception:
            client.failed("metric")


class Workflow(_Execution):
    """One run of a workflow; made by :func:`capture_lib.workflow`."""

    __slots__ = ("_sampler", "_token", "name", "params", "sample_interval")

    def __init__(
        self,
        client: Client,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        sample_interval: float | None = None,
    ) -> None:
        super().__init__(client)
        self.name = _name(name)
        self.params = dict(params) if params else None
        self.sample_interval = sample_interval
        self._token: contextvars.Token[Workflow | None] | None = None
        self._sampler: Sampler | None = None

    def start(self) -> Workflow:
        client = self._client
        try:
            client.submit(
                (R.WF_START, self.n, self._own(), self.name, _now(), self.params or None,
                 client.environment(), client.user)
            )  # fmt: skip
            self._token = current.set(self)
            if self.sample_interval and client.enabled:
                self._sampler = Sampler(self.metric, self.sample_interval)
                self._sampler.start()
        except Exception:
            client.failed("workflow start")
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            if self._sampler is not None:
                self._sampler.stop()
            if self._token is not None:
                try:
                    current.reset(self._token)
                except ValueError:  # ended in another context than it started in
                    current.set(None)
            self._client.append(
                (R.WF_END, self.n, self._own(), self.name, _now(),
                 None if status == "finished" else status, error)
            )  # fmt: skip
        except Exception:
            self._client.failed("workflow end")

    def task(
        self,
        name: str,
        *,
        stage: str | None = None,
        used: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        resources: bool | None = None,
    ) -> Task:
        """A task of this workflow.

        ``stage``: ``"training"``, ``"validation"``, ``"evaluation"`` or ``"inference"``.
        ``used``: what the task reads, by role (``cl.file(…)``, ``cl.model(…)``, plain
        JSON values). ``params``: its parameters (hyperparameters when training).
        ``resources``: record CPU time and peak RSS (default: when at least
        :data:`RESOURCE_INTERVAL` passed since the last measured task started).
        """
        return Task(self, name, stage, used, params, resources)


class JoinedWorkflow(Workflow):
    """A workflow run that another process started (its IRI: session and number), made by
    :func:`capture_lib.join`: the tasks of this process become tasks of that run.

    Entering and leaving it (``with``, :meth:`start`, :meth:`end`) records nothing: it
    only makes it the current workflow. :meth:`close` records that the run ended.
    """

    __slots__ = ()

    def __init__(self, client: Client, session: str, n: int, name: str) -> None:
        self._client = client
        self._session = session
        self.n = n
        self._ended = False
        self.name = _name(name)
        self.params = None
        self.sample_interval = None
        self._token = None
        self._sampler = None

    def start(self) -> JoinedWorkflow:
        try:
            self._token = current.set(self)
        except Exception:
            self._client.failed("workflow join")
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._token is not None:
            try:
                current.reset(self._token)
            except ValueError:
                current.set(None)
            self._token = None

    def close(self, status: str = "finished", error: str | None = None) -> None:
        """Record that the joined run ended (what ``with cl.workflow`` records at its end)."""
        self.end()
        Workflow.end(self, status, error)


class Task(_Execution):
    __slots__ = (
        "_cpu0", "_generated", "_t0", "params", "plan", "resources", "stage", "used", "workflow",
    )  # fmt: skip

    def __init__(
        self,
        workflow: Workflow,
        name: str,
        stage: str | None,
        used: dict[str, Any] | None,
        params: dict[str, Any] | None,
        resources: bool | None = None,
    ) -> None:
        # the base __init__, inlined: this runs once per task on the caller's thread
        self._client = client = workflow._client
        self._session = client.session
        self.n = next(client.counter)
        self._ended = False
        if type(name) is not str or len(name) > MAX_NAME or not name:
            name = _name(name)
        self.workflow = workflow
        self.plan = (workflow.name, name)
        self.stage = stage
        # shallow copies: the worker serialises later, and a caller that reuses one
        # hyperparameter dict across runs must not rewrite what earlier runs recorded
        self.used = used.copy() if used else None
        self.params = params.copy() if params else None
        self.resources = resources
        self._generated: dict[str, Any] | None = None
        self._cpu0 = -1.0
        self._t0 = 0.0

    def start(self) -> Task:
        client = self._client
        try:
            self._t0 = t = _now()
            measure = self.resources
            if measure is None:
                measure = t - client.measured_at >= RESOURCE_INTERVAL
            if measure:
                client.measured_at = t
                self._cpu0 = _cpu()
            session = client.session
            own, parent = self._session, self.workflow._session
            record = (_TASK_START, self.n, None if own is session else own, self.workflow.n,
                      None if parent is session else parent, self.plan, t, self.stage,
                      self.params, self.used)  # fmt: skip
            queue = client.queue  # Worker.submit's usual case, inlined
            if len(queue) < client.worker.room:
                queue.append(record)
            else:
                client.submit(record)
        except Exception:
            client.failed("task start")
        return self

    __enter__ = start

    def generated(self, **values: Any) -> None:
        """Name what this task produced: files (``cl.file``), models, plain values."""
        if self._generated is None:
            self._generated = values
        else:
            self._generated.update(values)

    def end(
        self,
        status: str = "finished",
        error: str | None = None,
        *,
        resources: dict[str, float] | None = None,
    ) -> None:
        """End the task. ``resources``: what it consumed, measured by the caller
        (``cpu_seconds``, ``max_rss_kib``: a child process's, say), instead of this
        process's CPU time and peak RSS."""
        if self._ended:
            return
        if not self._t0:  # ended without being started: record both
            self.start()
        self._ended = True
        client = self._client
        try:
            t = _now()
            usage = None
            if resources is not None:
                usage = {k: resources[k] for k in ("cpu_seconds", "max_rss_kib") if k in resources}
            elif self._cpu0 >= 0:
                usage = {
                    "cpu_seconds": round(_cpu() - self._cpu0, 6),
                    "max_rss_kib": _rusage(_SELF).ru_maxrss,
                }
            client.append(
                (_TASK_END, self.n, self._own(), self.plan, t, self.stage,
                 None if status == "finished" else status, error, self._generated, usage)
            )  # fmt: skip
        except Exception:
            client.failed("task end")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # the end of a task that finished, started and not measured, inlined: this runs
        # once per task on the caller's thread; anything else goes through end()
        if exc_type is not None or self._ended or not self._t0 or self._cpu0 >= 0:
            _Execution.__exit__(self, exc_type, exc, tb)
            return
        self._ended = True
        client = self._client
        try:
            own = self._session
            client.append(
                (_TASK_END, self.n, None if own is client.session else own, self.plan, _now(),
                 self.stage, None, None, self._generated, None)
            )  # fmt: skip
        except Exception:
            client.failed("task end")

    def generated_iri(self, role: str) -> str:
        """The IRI of an inline value generated under ``role``: a prediction's id."""
        return generated_value_iri(self.iri, role)

    def section(self, name: str, index: int | None = None) -> Section:
        """A repeated part of this task: an epoch, a batch, a fold."""
        return Section(self, name, index)


class Section(_Execution):
    __slots__ = ("index", "plan", "task")

    def __init__(self, task: Task, name: str, index: int | None) -> None:
        super().__init__(task._client)
        self.task = task
        self.plan = (*task.plan, _name(name))
        self.index = index

    def start(self) -> Section:
        try:
            index = None if self.index is None else int(self.index)
            self._client.submit(
                (R.SEC_START, self.n, self._own(), self.task.n, self.task._own(), self.plan,
                 _now(), index)
            )  # fmt: skip
        except Exception:
            self._client.failed("section start")
        return self

    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self._client.append(
                (R.SEC_END, self.n, self._own(), self.plan, _now(),
                 None if status == "finished" else status, error)
            )  # fmt: skip
        except Exception:
            self._client.failed("section end")
