"""Snakemake, captured by a logger plugin: ``snakemake --cores 4 --logger provml``.

The plugin itself is the top-level package ``snakemake_logger_plugin_provml`` (Snakemake
finds logger plugins by that prefix); it is a thin shell around :class:`Capture`, which
holds the logic and imports nothing of Snakemake, so this module can be imported (and
tested) without it.

What a Snakemake run becomes:

* the run is a **workflow run** named by ``--logger-provml-workflow`` (else
  ``PROVML_WORKFLOW``, else the main Snakefile's name: its directory's for a file called
  ``Snakefile``, skipping a ``workflow/`` directory), with the main Snakefile by content
  (``snakefile``), the config (``config``) and the Snakemake version as its parameters.
  With ``PROVML_PARENT`` set (a batch script's run, ``provml run --start-workflow``), the
  jobs are tasks of that run instead;
* each **job** is a task named after its rule (the rule is the task's plan), with its
  parameters: the rule's ``params`` by name, and ``jobid``, ``wildcards``, ``threads`` and
  ``resources``; it **used** its input files by content, under their names in the rule
  (``reads``, ``reads[1]``, or ``input``/``input[0]`` when unnamed), and the Snakefile
  defining the rule (``snakefile``) and its ``script:``/``notebook:`` (``script``) as code;
  it **generated** its output and log files by content (``output``, ``log`` or their
  names). Outputs matching ``--logger-provml-models`` patterns are models; rules named in
  ``--logger-provml-stages`` get that stage (``train=training``);
* a job that fails is a failed task with Snakemake's error (the command and its exit
  status); the run is failed when a job failed or Snakemake reported an error.

**Where it runs.** Snakemake hands log records to plugins through a queue, read by one
thread of the main Snakemake process: every record here is built on that thread, off
the scheduler's path. Jobs run elsewhere (a shell command in a subprocess, a ``run:``
block in a thread, a cluster job on another node): the files are hashed by the main
process, on the shared file system, when Snakemake reports the job started (inputs)
and finished (outputs). The run itself is started where Snakemake logs that it
started (before any job; the one-off cost of capture_lib's environment capture, about
0.5 s). A job's times are those at which the plugins' thread handles its records:
normally within milliseconds of the event, later when that thread is busy hashing large
files.
A job's CPU time and peak memory come from its ``benchmark:`` file when it has one
(Snakemake measures them there); otherwise none is recorded (the main process's would
be wrong).

**What Snakemake does not put in its records** (the rule's parameters, the files as
paths rather than display strings, the rule's Snakefile, the config) is read from the
``Job`` and ``Workflow`` objects logging them: a filter on Snakemake's logger, run where
the record is made, finds them on the calling frames (``Job.log_info``,
``Workflow.execute``). Should a later Snakemake move those calls, the jobs are still
captured from the records alone, without parameters, and that is logged once.

Nothing here raises into Snakemake: a failure is logged once and counted in
``cl.stats()["lost"]["integration_error"]``; an unreadable file is recorded as missing
data and counted in ``["unreadable_input"]``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import capture_lib as cl
from capture_lib import api, runtime
from capture_lib.integrations._sklearn_calls import integration_failed, jsonable
from provml.core import config
from provml.core.wire import STAGES

FRAMEWORK = "snakemake"
#: the logger Snakemake logs to (its plugins' records come from it)
LOGGER = "snakemake.logging"
#: files whose digest is remembered after their job finished (a ``temp()`` output may be
#: gone by the time the job that reads it is handled)
MADE_LIMIT = 100_000
#: the attribute a record carries what the filter read from the Job or Workflow under
FACTS = "provml_facts"
#: Snakemake's own entries among a task's parameters (a rule's param named like one of
#: them is recorded as ``params.<name>``)
OWN_PARAMS = ("jobid", "wildcards", "threads", "resources")
_FRAMES = 10

log = logging.getLogger(__name__)

__all__ = ["FRAMEWORK", "Capture", "Options", "workflow_name"]


class Options:
    """The plugin's settings (``--logger-provml-…``), read from any object with these
    attributes (Snakemake's settings dataclass, or None for the defaults)."""

    def __init__(self, settings: Any = None) -> None:
        self.mode: str | None = getattr(settings, "mode", None) or None
        self.url: str | None = getattr(settings, "url", None) or None
        self.path: str | None = getattr(settings, "path", None) or None
        self.workflow: str | None = getattr(settings, "workflow", None) or None
        self.models = tuple(_split(getattr(settings, "models", None)))
        self.stages: dict[str, str] = {}
        for item in _split(getattr(settings, "stages", None)):
            rule, _, stage = item.partition("=")
            if stage.strip() in STAGES and rule.strip():
                self.stages[rule.strip()] = stage.strip()
            else:
                log.warning(
                    "provml: --logger-provml-stages %r is not RULE=STAGE with STAGE one of %s "
                    "(ignored)", item, ", ".join(sorted(STAGES)),
                )  # fmt: skip

    def is_model(self, path: str) -> bool:
        """Whether an (absolute) path matches a pattern, as it is, relative to the
        working directory (as the Snakefile names it) or by its file name."""
        if not self.models:
            return False
        forms = (path, os.path.relpath(path), os.path.basename(path))
        return any(fnmatch.fnmatch(f, p) for p in self.models for f in forms)


def _split(text: Any) -> Iterator[str]:
    if isinstance(text, str):
        yield from (part.strip() for part in text.split(",") if part.strip())


def workflow_name(snakefile: str | None) -> str:
    """The run's default name: ``pipeline`` for ``pipeline.smk``; for a file called
    ``Snakefile``, its directory's name (the one above for ``workflow/Snakefile``)."""
    if not snakefile:
        return "snakemake"
    path = os.path.abspath(snakefile)
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem.lower() != "snakefile":
        return stem
    directory = os.path.dirname(path)
    if os.path.basename(directory) == "workflow":
        directory = os.path.dirname(directory)
    return os.path.basename(directory) or "snakemake"


class _Job:
    __slots__ = ("benchmark", "logs", "outputs", "task")

    def __init__(self, task: api.Task, outputs: list[tuple[str, str]],
                 logs: list[tuple[str, str]], benchmark: str | None) -> None:  # fmt: skip
        self.task = task
        self.outputs = outputs
        self.logs = logs
        self.benchmark = benchmark


class Capture:
    """One Snakemake run's capture: :meth:`filter` runs where Snakemake logs (it reads
    the Job or Workflow logging), :meth:`handle` on the plugins' thread, :meth:`close`
    when Snakemake stops logging."""

    def __init__(self, settings: Any = None, *, dryrun: bool = False) -> None:
        self.options = Options(settings)
        self.dryrun = dryrun
        self.workflow: api.Workflow | None = None
        self.joined = False
        self.jobs: dict[Any, _Job] = {}
        self.failed_jobs = 0
        self.error: str | None = None
        #: the last error Snakemake reported, by the thread that reported it
        self._last_error: dict[str, str] = {}
        #: absolute path → reference of the files made by this run's jobs
        self._made: dict[str, dict[str, Any]] = {}
        self._exported: list[str] = []
        self._lock = threading.Lock()
        self._no_facts_said = False
        self._logger = logging.getLogger(LOGGER)
        self._logger.addFilter(self.filter)

    # --- on the thread that logs (Snakemake's scheduler or a job's thread) -------------

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach what the logging Job or Workflow knows to the record; never drops one."""
        event = getattr(record, "event", None)
        if event is None or self.dryrun:
            return True
        try:
            if event == "job_info":
                job = _caller("log_info", ("params", "rule", "input", "output"))
                if job is not None:
                    setattr(record, FACTS, _job_facts(job))
            elif event == "workflow_started":
                workflow = _caller("execute", ("config", "main_snakefile"))
                if workflow is not None:
                    setattr(record, FACTS, _workflow_facts(workflow))
                # here rather than on the plugins' thread: the run (and PROVML_PARENT for
                # the jobs) exists before any job starts, its start time is the run's
                self._start(record)
        except Exception:
            integration_failed(f"snakemake: {event}")
        return True

    # --- on the plugins' thread ---------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> None:
        """One record of Snakemake's log."""
        if self.dryrun:
            return
        try:
            event = getattr(record, "event", None)
            if event == "job_info":
                self._job_started(record)
            elif event == "job_finished":
                self._job_finished(getattr(record, "job_id", None))
            elif event == "job_error":
                self._job_failed(record)
            elif record.levelno >= logging.ERROR:
                message = record.getMessage()
                self._last_error[record.threadName or ""] = message
                if self.workflow is not None:
                    self.error = message
        except Exception:
            integration_failed(f"snakemake: handling {getattr(record, 'event', 'a record')}")

    def _start(self, record: logging.LogRecord) -> None:
        if self.workflow is not None:
            return
        options = self.options
        if options.mode or options.url or options.path:
            cl.init(url=options.url, mode=options.mode, path=options.path)
        client = runtime.get_client()
        if not client.enabled:  # mode off or PROVML_DISABLED: not even a file is hashed
            return
        facts = getattr(record, FACTS, None) or {}
        snakefile = facts.get("snakefile") or getattr(record, "snakefile_main", None)
        name = options.workflow or config.WORKFLOW.get() or workflow_name(snakefile)
        parent = config.PARENT.get()
        if parent:
            try:
                self.workflow = cl.join(parent, name).start()
                self.joined = True
                return
            except ValueError as exc:
                log.warning("provml: PROVML_PARENT: %s; the Snakemake run is a run of its own", exc)
        params: dict[str, Any] = {"snakemake_version": getattr(record, "snakemake_version", None)}
        if snakefile:
            params["snakefile"] = cl.code(snakefile)
        if "config" in facts:
            params["config"] = facts["config"]
        if facts.get("configfiles"):
            params["configfiles"] = [cl.file(f) for f in facts["configfiles"]]
        self.workflow = api.Workflow(client, name, params).start()
        if client.enabled:  # jobs running `provml run` join this run
            for key, value in (("PROVML_WORKFLOW", name), ("PROVML_PARENT", self.workflow.iri)):
                if key not in os.environ:
                    os.environ[key] = value
                    self._exported.append(key)

    def _job_started(self, record: logging.LogRecord) -> None:
        wf = self.workflow
        if wf is None:
            return
        facts = getattr(record, FACTS, None)
        if facts is None:
            facts = _record_facts(record)
            if not self._no_facts_said:
                self._no_facts_said = True
                log.warning(
                    "provml: the Snakemake Job logging %s was not found; jobs are captured "
                    "from the log records alone, without their rule's params", record.msg,
                )  # fmt: skip
        jobid = getattr(record, "jobid", None)
        rule = str(getattr(record, "rule_name", None) or "job")
        params: dict[str, Any] = {}
        for key, value in facts.get("params", ()):
            params[f"params.{key}" if key in OWN_PARAMS else key] = jsonable(value)
        params["jobid"] = jobid
        params["wildcards"] = jsonable(dict(getattr(record, "wildcards", None) or {}))
        params["threads"] = getattr(record, "threads", None)
        params["resources"] = _resources(getattr(record, "resources", None))
        used = {role: self._file(path, made=True) for role, path in facts.get("input", ())}
        for role in ("snakefile", "script"):
            if facts.get(role):
                used.setdefault(role, cl.code(facts[role]))
        task = wf.task(rule, stage=self.options.stages.get(rule), used=used, params=params,
                       resources=False)  # fmt: skip
        task.start()
        with self._lock:
            before = self.jobs.get(jobid)
            self.jobs[jobid] = _Job(task, list(facts.get("output", ())),
                                    list(facts.get("log", ())), facts.get("benchmark"))  # fmt: skip
        if before is not None:  # started again (a retry) before its end was seen
            before.task.end("failed", "the job was started again")

    def _job_finished(self, jobid: Any) -> None:
        with self._lock:
            job = self.jobs.pop(jobid, None)
        if job is None:
            return
        generated = {}
        for role, path in job.outputs + job.logs:
            ref = self._file(path, made=False)
            generated[role] = ref
            if "sha256" in ref:
                with self._lock:
                    if len(self._made) >= MADE_LIMIT:
                        self._made.clear()
                    self._made[os.path.abspath(path)] = ref
        job.task.generated(**generated)
        job.task.end(resources=_benchmark(job.benchmark) if job.benchmark else None)

    def _job_failed(self, record: logging.LogRecord) -> None:
        jobid = getattr(record, "jobid", None)
        with self._lock:
            job = self.jobs.pop(jobid, None)
            self.failed_jobs += 1
        if job is None:
            return
        error = self._last_error.pop(record.threadName or "", None) or record.getMessage()
        job.task.end("failed", error)

    def _file(self, path: str, *, made: bool) -> dict[str, Any]:
        """A file by content (a model if it matches --logger-provml-models); for an input
        gone since its job made it (a ``temp()`` file), the digest taken then."""
        if made and not os.path.exists(path):
            with self._lock:
                known = self._made.get(os.path.abspath(path))
            if known is not None:
                return known
        if self.options.is_model(path):
            return cl.model(path)
        return cl.file(path)

    # --- when Snakemake stops logging ---------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """End the jobs still open and the run; deliver what was captured."""
        try:
            self._logger.removeFilter(self.filter)
            unfinished = 0
            for jobid in list(self.jobs):  # no end seen: ``--quiet progress`` logs none
                job = self.jobs[jobid]
                if all(os.path.exists(path) for _, path in job.outputs):
                    self._job_finished(jobid)
                else:
                    unfinished += 1
                    self.jobs.pop(jobid)
                    job.task.end("failed", "Snakemake stopped before the job finished")
            wf, self.workflow = self.workflow, None
            if wf is None:
                return
            if self.joined:
                wf.end()
            elif self.failed_jobs or self.error or unfinished:
                wf.end("failed", self.error or f"{self.failed_jobs} job(s) failed")
            else:
                wf.end()
            for key in self._exported:
                os.environ.pop(key, None)
            self._exported = []
            runtime.flush(timeout)
        except Exception:
            integration_failed("snakemake: ending the run")


def _caller(method: str, attributes: tuple[str, ...]) -> Any:
    """The ``self`` of the nearest calling frame running ``method`` that has these
    attributes (the Job or Workflow that is logging)."""
    frame: Any = sys._getframe(2)
    for _ in range(_FRAMES):
        if frame is None:
            return None
        if frame.f_code.co_name == method:
            owner = frame.f_locals.get("self")
            if owner is not None and all(hasattr(owner, a) for a in attributes):
                return owner
        frame = frame.f_back
    return None


def _named(items: Any, default: str) -> list[tuple[str, Any]]:
    """The items of a Snakemake ``Namedlist`` under their names: ``name`` for one item,
    ``name[i]`` for a list; unnamed ones ``default`` (alone) or ``default[i]``."""
    values = list(items)
    names: dict[str, Any] = getattr(items, "_names", None) or {}
    out: list[tuple[str, Any]] = []
    covered: set[int] = set()
    for name, span in names.items():
        start, end = span if isinstance(span, tuple) else (span, None)
        if end is None:
            if 0 <= start < len(values):
                out.append((name, values[start]))
                covered.add(start)
        else:
            for k, i in enumerate(range(start, min(end, len(values)))):
                out.append((f"{name}[{k}]", values[i]))
                covered.add(i)
    unnamed = [i for i in range(len(values)) if i not in covered]
    for i in unnamed:
        out.append((default if len(values) == 1 else f"{default}[{i}]", values[i]))
    return out


def _paths(items: Any, default: str) -> list[tuple[str, str]]:
    return [(role, os.path.abspath(os.fspath(f))) for role, f in _named(items, default)]


def _job_facts(job: Any) -> dict[str, Any]:
    """What the Job knows that its log record does not say (read where it logs)."""
    rule = job.rule
    snakefile = getattr(rule, "snakefile", None)
    facts: dict[str, Any] = {
        "params": _named(job.params, "param"),
        "input": _paths(job.input, "input"),
        "output": _paths(job.output, "output"),
        "log": _paths(getattr(job, "log", ()) or (), "log"),
        "snakefile": os.fspath(snakefile) if snakefile else None,
    }
    script = getattr(rule, "script", None) or getattr(rule, "notebook", None)
    if isinstance(script, str) and "://" not in script and "{" not in script:
        base = os.path.dirname(facts["snakefile"] or "")
        facts["script"] = script if os.path.isabs(script) else os.path.join(base, script)
    benchmark = getattr(job, "benchmark", None)
    if benchmark:
        facts["benchmark"] = os.path.abspath(os.fspath(benchmark))
    return facts


def _workflow_facts(workflow: Any) -> dict[str, Any]:
    snakefile = getattr(workflow, "main_snakefile", None)
    return {
        "snakefile": os.fspath(snakefile) if snakefile else None,
        "config": jsonable(dict(getattr(workflow, "config", None) or {})),
        "configfiles": [os.fspath(f) for f in getattr(workflow, "configfiles", None) or ()],
    }


def _record_facts(record: logging.LogRecord) -> dict[str, Any]:
    """A job's files from its log record alone (display strings: ``path (pipe)``)."""

    def paths(name: str) -> list[tuple[str, str]]:
        shown = [_displayed_path(str(f)) for f in getattr(record, name, None) or ()]
        return _paths(shown, name)

    return {"input": paths("input"), "output": paths("output"), "log": paths("log")}


def _displayed_path(shown: str) -> str:
    if shown.endswith(")") and " (" in shown and not os.path.exists(shown):
        return shown.rpartition(" (")[0]
    return shown


def _resources(resources: Any) -> dict[str, Any] | None:
    items = getattr(resources, "items", None)
    if items is None:
        return None
    return {str(k): jsonable(v) for k, v in items() if not str(k).startswith("_")}


def _benchmark(path: str) -> dict[str, float] | None:
    """CPU seconds and peak RSS from a ``benchmark:`` file (its last repeat)."""
    try:
        with open(path) as f:
            lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        row = dict(zip(lines[0], lines[-1], strict=False))
        usage = {}
        if row.get("cpu_time") not in (None, "", "NA", "-"):
            usage["cpu_seconds"] = float(row["cpu_time"])
        if row.get("max_rss") not in (None, "", "NA", "-"):
            usage["max_rss_kib"] = float(row["max_rss"]) * 1024  # Snakemake writes MB
        return usage or None
    except (OSError, ValueError, IndexError):
        return None
