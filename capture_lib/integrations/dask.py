"""Dask (``distributed``): every task of a graph as a task of the current workflow, and
the data that passed between tasks as used and generated values.

>>> from capture_lib.integrations.dask import ProvmlSchedulerPlugin  # doctest: +SKIP
>>> client.register_plugin(ProvmlSchedulerPlugin())                 # doctest: +SKIP

or ``cl.autolog()``, which registers it on every ``distributed.Client`` created from then
on (and on the default client, if there is one), until ``cl.autolog(disable=True)``.

**Where capture runs: the scheduler.** A scheduler plugin sees every transition of every
task in one process, with what a worker reported when the task finished (the worker, the
compute start and stop times, the result's type and size, the exception text) and the
graph's dependencies, which a worker does not know in full. So the workers record
nothing and need no set-up. The scheduler of a ``LocalCluster`` runs in the client's
process, and the plugin records through the capture client already running there. A
scheduler started elsewhere (``dask scheduler`` on another node) gets the plugin pickled;
it starts capture there (``cl.init``) with the mode, URL and path of the client process
that made the plugin (never its token: that process reads ``PROVML_TOKEN`` from its own
environment), unless capture already runs in that process.

**What a task becomes.** A Dask task that ran on a worker (processing → memory, or
processing → erred) is a task of the workflow current when the plugin was made (its IRI
and name are carried by the plugin; :func:`capture_lib.join` on the scheduler's side),
named after the key's prefix (``inc``, ``sum-aggregate``, ``read_csv``: the plan), with
the key and the worker as parameters, the compute start and stop times the worker
measured, and status ``failed`` with the exception's text (redacted as every error
message is) when it raised. Its result is generated under the role ``output`` as a data
node named by the workflow run and the key (:func:`output_reference`): the SHA-256 of
``dask\\0<workflow IRI>\\0<key>``, a *name*, not a digest of the content, which stays on
the worker. A task that depended on it used that same node, under the role of the
dependency's prefix (``inc``, ``inc.2`` … when several share one). So the graph's edges
are exactly Dask's dependencies: two tasks are connected only if one's result was an
input of the other. A result whose type is a model (``model_types``: scikit-learn
estimators, XGBoost, LightGBM, torch modules, Keras models) is a ``model`` node, so
``was-used`` and ``derived-from`` see it.

Not recorded: tasks that never ran (released, or erred because a dependency erred: their
dependency's failed task is), data scattered by the client (a used node without a
producer), the content of results (no digest: hashing a result would cost a worker its
size in SHA-256 time per task; keys name results deterministically instead).

**Bounded cost.** Nothing is kept per task: each finished task builds two records, put
on capture_lib's bounded queue, on the scheduler's event loop (about 1 % of what the
scheduler spends on a no-op task: ``bench/integrations_dask.py``). A graph of 100,000s
of tiny tasks would record as many tasks: at most ``max_tasks`` (default
:data:`MAX_TASKS`) are recorded per plugin; the tasks past it are counted, per prefix,
in ``cl.stats()["lost"]["dask_task_cap"]``, in a warning logged once, and as metrics
``dask_tasks_not_captured`` (and ``dask_tasks_not_captured:<prefix>``) of the workflow
when the scheduler closes (or :meth:`report` is called). At most
:data:`MAX_DEPENDENCIES` inputs are recorded per task; past that they are counted in
``["dask_dependency_cap"]``.

**Never raises into the computation.** Every hook is guarded: a failure is logged once
and counted in ``cl.stats()["lost"]["integration_error"]``, and Dask's results are the
same with and without the plugin.

**Lazy import.** Importing this module imports nothing of Dask: ``ProvmlSchedulerPlugin``
(a subclass of ``distributed.diagnostics.plugin.SchedulerPlugin``, which
``Client.register_plugin`` dispatches on) is made on first access of the name.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from capture_lib import records as R
from capture_lib import runtime
from capture_lib.api import JoinedWorkflow
from provml.core.ids import parse_execution_iri

FRAMEWORK = "distributed"
#: the plugin's name on the scheduler (registering another with it replaces it)
PLUGIN_NAME = "provml"
#: tasks recorded per plugin (per workflow run); None: no cap
MAX_TASKS: int | None = 10_000
#: inputs recorded per task (a wire record holds at most 1,000 entries)
MAX_DEPENDENCIES = 999
#: prefixes of a result's type name that make it a model node
MODEL_TYPES: tuple[str, ...] = (
    "sklearn.", "xgboost.", "lightgbm.", "torch.nn.", "keras.", "tensorflow.keras.",
)  # fmt: skip
#: prefixes of type names under MODEL_TYPES that are not models
NOT_MODELS: tuple[str, ...] = ("sklearn.utils.", "xgboost.core.DMatrix", "lightgbm.basic.Dataset")
CAP, DEPENDENCY_CAP, INTEGRATION_ERROR = "dask_task_cap", "dask_dependency_cap", "integration_error"
#: per-prefix metrics of what was not captured, at most this many prefixes (the rest summed)
_REPORTED_PREFIXES = 100

__all__ = ["FRAMEWORK", "MAX_DEPENDENCIES", "MAX_TASKS", "MODEL_TYPES", "PLUGIN_NAME",
           "ProvmlSchedulerPlugin", "disable", "enable", "enabled", "output_reference"]  # fmt: skip

log = logging.getLogger(__name__)
_now = time.time

if TYPE_CHECKING:  # made on first access (module __getattr__): a subclass of Dask's class
    ProvmlSchedulerPlugin: type


def key_text(key: Any) -> str:
    """A Dask key as text: a string as it is, a tuple key as ``('x-…', 0, 1)``."""
    return key if isinstance(key, str) else str(key)


def output_reference(workflow_iri: str, key: Any, typename: str | None = None) -> dict[str, Any]:
    """The data node of the result of ``key`` in this workflow run: named by the run and
    the key (a name, not a digest of the content); ``typename`` makes it a model when it
    is a model's type (:data:`MODEL_TYPES`)."""
    text = key_text(key)
    sha = hashlib.sha256(f"dask\0{workflow_iri}\0{text}".encode()).hexdigest()
    ref: dict[str, Any] = {"@data": "value", "sha256": sha, "name": text[:256]}
    if typename is not None:
        if typename.startswith(MODEL_TYPES) and not typename.startswith(NOT_MODELS):
            ref["@data"] = "model"
            ref["framework"] = typename.partition(".")[0]
            ref["algorithm"] = typename.rpartition(".")[2]
        ref["type"] = typename
    return ref


class Capture:
    """What the plugin records, without Dask: the workflow joined, one call per task."""

    def __init__(
        self,
        workflow_iri: str,
        workflow_name: str,
        settings: dict[str, Any],
        max_tasks: int | None = MAX_TASKS,
    ) -> None:
        self.workflow_iri = workflow_iri
        self.workflow_name = workflow_name
        self.settings = settings
        self.max_tasks = max_tasks
        self.recorded = 0
        self.not_captured: Counter[str] = Counter()
        self._workflow: JoinedWorkflow | None = None
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"workflow_iri": self.workflow_iri, "workflow_name": self.workflow_name,
                "settings": self.settings, "max_tasks": self.max_tasks}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def attach(self) -> JoinedWorkflow | None:
        """Join the workflow run through this process's capture, started from the
        settings if it does not run here (a scheduler in a process of its own)."""
        try:
            client = runtime.current_client()
            if client is None:
                client = runtime.init(**self.settings)
            wf = self._workflow
            if wf is None or wf.client is not client:
                session, n = parse_execution_iri(self.workflow_iri)
                wf = self._workflow = JoinedWorkflow(client, session, n, self.workflow_name)
            return wf
        except Exception:
            self.failed("joining the workflow")
            return None

    def failed(self, where: str, reason: str = INTEGRATION_ERROR) -> None:
        """Count a failure (call in an ``except`` block); log it once per cause."""
        runtime.count_lost(reason)
        first = where not in self._warned
        self._warned.add(where)
        log.log(logging.WARNING if first else logging.DEBUG,
                "provml dask: %s failed (the computation proceeds; counted in "
                "cl.stats()['lost'][%r])", where, reason, exc_info=first)  # fmt: skip

    def task(
        self,
        key: Any,
        prefix: str,
        dependencies: Iterable[tuple[Any, str]],
        *,
        worker: str | None,
        start: float | None,
        stop: float | None,
        typename: str | None = None,
        nbytes: int | None = None,
        error: str | None = None,
        function: str | None = None,
    ) -> None:
        """Record one task that ran: ``dependencies`` are (key, prefix) of its inputs."""
        wf = self._workflow
        if wf is None or wf.client is not runtime.current_client():
            wf = self.attach()
            if wf is None:
                return
        client = wf.client
        if not client.enabled:
            return
        with self._lock:
            if self.max_tasks is not None and self.recorded >= self.max_tasks:
                self._over_cap(prefix)
                return
            self.recorded += 1
        run = self.workflow_iri
        text = key_text(key)
        params: dict[str, Any] = {"key": text}
        if function:
            params["function"] = function
        if worker:
            params["worker"] = worker
        used = _inputs(run, dependencies)
        out = None
        if error is None:
            out = output_reference(run, key, typename)
            if nbytes is not None:
                out["nbytes"] = nbytes
        now = _now()
        start = start or stop or now
        stop = max(stop or now, start)
        n = next(client.counter)
        session = client.session
        parent = None if wf._session == session else wf._session
        plan = (wf.name, prefix[:256] or "task")
        client.submit((R.TASK_START, n, None, wf.n, parent, plan, start, None, params,
                       used or None))  # fmt: skip
        status = None if error is None else "failed"
        generated = None if out is None else {"output": out}
        client.submit((R.TASK_END, n, None, plan, stop, None, status, error, generated, None))

    def _over_cap(self, prefix: str) -> None:
        self.not_captured[prefix] += 1
        runtime.count_lost(CAP)
        if CAP not in self._warned:
            self._warned.add(CAP)
            log.warning(
                "provml dask: %d tasks recorded, the cap (max_tasks): the next are counted, "
                "not recorded (cl.stats()['lost'][%r]; metrics dask_tasks_not_captured)",
                self.max_tasks, CAP,
            )  # fmt: skip

    def report(self) -> dict[str, int]:
        """Record, as metrics of the workflow, how many tasks were not captured (total and
        per prefix); returns the counts per prefix."""
        with self._lock:
            counts = dict(self.not_captured)
        if not counts:
            return counts
        wf = self.attach()
        if wf is not None:
            wf.metric("dask_tasks_not_captured", sum(counts.values()))
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            for prefix, count in ranked[:_REPORTED_PREFIXES]:
                wf.metric(f"dask_tasks_not_captured:{prefix}"[:256], count)
            if len(ranked) > _REPORTED_PREFIXES:
                rest = sum(c for _, c in ranked[_REPORTED_PREFIXES:])
                wf.metric("dask_tasks_not_captured:(other prefixes)", rest)
        log.warning("provml dask: %d tasks not captured (past max_tasks=%s): %s",
                    sum(counts.values()), self.max_tasks, counts)  # fmt: skip
        return counts


def _inputs(run: str, dependencies: Iterable[tuple[Any, str]]) -> dict[str, Any]:
    """The used values of a task: its inputs' nodes, by role (the input's prefix)."""
    deps = [(key_text(k), p) for k, p in dependencies]
    if len(deps) > 1:
        deps.sort(key=_first)  # roles numbered in the same order whatever Dask's set order
    if len(deps) > MAX_DEPENDENCIES:
        runtime.count_lost(DEPENDENCY_CAP, len(deps) - MAX_DEPENDENCIES)
        deps = deps[:MAX_DEPENDENCIES]
    used: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for text, prefix in deps:
        role = (prefix or "input")[:240]
        k = seen[role] = seen.get(role, 0) + 1
        used[role if k == 1 else f"{role}.{k}"] = output_reference(run, text)
    return used


def _first(pair: tuple[str, str]) -> str:
    return pair[0]


def _compute_times(startstops: Any) -> tuple[float | None, float | None]:
    for ss in startstops or ():
        if ss.get("action") == "compute":
            return ss.get("start"), ss.get("stop")
    return None, None


def _settings() -> dict[str, Any]:
    """How this process captures, for a scheduler elsewhere (never the token)."""
    client = runtime.current_client()
    if client is None:
        return {}
    return {"mode": client.mode, "url": client.url, "path": client.path}


def _make_plugin_class() -> type:
    from distributed.diagnostics.plugin import SchedulerPlugin

    class ProvmlSchedulerPlugin(SchedulerPlugin):
        """Records every task a Dask scheduler runs (see :mod:`capture_lib.integrations.dask`).

        ``workflow``: the run the tasks belong to (default: the current workflow,
        ``cl.current_workflow()``, when the plugin is made). ``max_tasks``: tasks
        recorded at most (None: all). ``mode``, ``url``, ``path``: how a scheduler in
        another process captures (default: as this process does).
        """

        name = PLUGIN_NAME
        idempotent = False

        def __init__(
            self,
            workflow: Any = None,
            *,
            max_tasks: int | None = MAX_TASKS,
            mode: str | None = None,
            url: str | None = None,
            path: str | None = None,
        ) -> None:
            wf = workflow if workflow is not None else runtime.current_workflow()
            settings = _settings()
            settings.update({k: v for k, v in (("mode", mode), ("url", url), ("path", path))
                             if v is not None})  # fmt: skip
            self.capture = Capture(wf.iri, wf.name, settings, max_tasks)
            self.scheduler: Any = None

        def __getstate__(self) -> dict[str, Any]:
            return {"capture": self.capture, "scheduler": None}

        async def start(self, scheduler: Any) -> None:
            self.scheduler = scheduler
            self.capture.attach()
            # the plugin this one replaces: it says what it did not capture, and goes now
            # (so that Dask does not warn about overwriting it)
            old = scheduler.plugins.get(PLUGIN_NAME)
            if old is not None and old is not self and hasattr(old, "report"):
                old.report()
                scheduler.plugins.pop(PLUGIN_NAME, None)

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if start != "processing" or (finish != "memory" and finish != "erred"):
                return
            try:
                self._ran(key, finish, kwargs)
            except Exception:
                self.capture.failed("recording a task")

        def _ran(self, key: Any, finish: str, kwargs: dict[str, Any]) -> None:
            scheduler = self.scheduler
            ts = scheduler.tasks.get(key) if scheduler is not None else None
            if ts is None:
                return
            t0, t1 = _compute_times(kwargs.get("startstops"))
            error = None
            if finish == "erred":
                error = kwargs.get("exception_text") or ts.exception_text or "erred"
            function = getattr(getattr(ts.run_spec, "func", None), "__name__", None)
            self.capture.task(
                key, ts.prefix.name, ((d.key, d.prefix.name) for d in ts.dependencies),
                worker=kwargs.get("worker"), start=t0, stop=t1, typename=kwargs.get("typename"),
                nbytes=kwargs.get("nbytes"), error=error,
                function=function if isinstance(function, str) else None,
            )  # fmt: skip

        def report(self) -> dict[str, int]:
            """Record the counts of the tasks not captured (past ``max_tasks``)."""
            try:
                return self.capture.report()
            except Exception:
                self.capture.failed("reporting")
                return {}

        async def close(self) -> None:
            self.report()

    ProvmlSchedulerPlugin.__module__ = __name__
    ProvmlSchedulerPlugin.__qualname__ = "ProvmlSchedulerPlugin"  # pickled by reference
    return ProvmlSchedulerPlugin


@functools.cache
def _plugin_class() -> type:
    return _make_plugin_class()


def __getattr__(name: str) -> Any:
    if name == "ProvmlSchedulerPlugin":
        return _plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- autolog: the plugin on every Client made while enabled ---------------------------

_lock = threading.RLock()
_original_init: Any = None
_clients: weakref.WeakSet[Any] = weakref.WeakSet()


def enabled() -> bool:
    """True while ``distributed.Client`` is patched."""
    return _original_init is not None


def enable() -> None:
    """Register the plugin on every ``distributed.Client`` made from now on (a
    synchronous one: an asynchronous client is left alone), and on the default client if
    there is one. Calling it again does nothing more."""
    global _original_init
    with _lock:
        if _original_init is not None:
            return
        from distributed import Client

        original = Client.__init__

        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            _register(self)

        _original_init = original
        Client.__init__ = __init__
        try:
            from distributed import default_client

            _register(default_client())
        except ValueError:  # no client yet
            pass


def _register(client: Any) -> None:
    try:
        if getattr(client, "asynchronous", False) or client.status != "running":
            return
        client.register_plugin(_plugin_class()(), name=PLUGIN_NAME)
        _clients.add(client)
    except Exception:
        runtime.count_lost(INTEGRATION_ERROR)
        log.warning("provml autolog: registering the Dask plugin failed (ignored)", exc_info=True)


def disable() -> None:
    """Put ``Client.__init__`` back, and remove the plugin from the clients it was
    registered on that still run (recording, first, what was not captured)."""
    global _original_init
    with _lock:
        if _original_init is None:
            return
        from distributed import Client

        Client.__init__ = _original_init
        _original_init = None
        clients = list(_clients)
        _clients.clear()
    for client in clients:
        try:
            if client.status == "running":
                client.run_on_scheduler(_report_on_scheduler)
                client.unregister_scheduler_plugin(PLUGIN_NAME)
        except Exception:
            runtime.count_lost(INTEGRATION_ERROR)
            log.warning("provml autolog: removing the Dask plugin failed (ignored)", exc_info=True)


def _report_on_scheduler(dask_scheduler: Any) -> dict[str, int]:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    return plugin.report() if hasattr(plugin, "report") else {}
