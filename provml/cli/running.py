"""``provml run``: capture a step that is not Python (a compiled simulation, a shell
script, a job step under srun/mpirun) as a task of a workflow.

The command runs with this process's stdin, stdout, stderr and inherited descriptors
untouched, started through a small launcher (:mod:`provml.cli.launcher`); SIGINT,
SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to it (see
:class:`Signals`); ``provml run`` exits with its exit status (128 + the signal when a
signal killed it). A capture failure never changes that status: it is said on stderr
and counted in the capture's statistics (``stats()["lost"]``).

What the task records: its command line (secret-looking option values masked, as
capture_lib masks the workflow's ``argv``), working directory, host, batch job and MPI
rank as parameters; the files named with ``--in`` as used and with ``--out`` as
generated, by content; the files created or changed under each ``--watch`` directory
(path → size, mtime, inode before and after) as generated; the exit status (status
``failed`` and the error ``exit status N`` / ``killed by SIGNAME`` when not 0, and the
metric ``exit_status``); the CPU time (user + system) and peak RSS of the command's
process tree from ``wait4``, measured by the launcher.

The steps of one batch script join one run with ``PROVML_WORKFLOW`` (the workflow's name)
and ``PROVML_PARENT`` (the IRI of its execution, printed by ``provml run
--start-workflow NAME`` as ``export`` lines; see docs/integrations.md).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from provml.core import config

if TYPE_CHECKING:
    from capture_lib.api import Task, Workflow

#: the signals forwarded to the child
FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
#: seconds the captured records may take to be written or sent after the child ended
FLUSH_TIMEOUT = 5.0
#: files a --watch directory may hold; past this its changes are not looked for
WATCH_MAX_FILES = 100_000

Snapshot = dict[str, tuple[int, int, int]]


def _say(message: str) -> None:
    click.echo(f"provml run: {message}", err=True)


class Capture:
    """The capture side of one step; every method catches its own failures (said on
    stderr, counted), so that the step runs and exits as it would without provml."""

    def __init__(self) -> None:
        self.errors = 0
        self.task: Task | None = None
        self.workflow: Workflow | None = None
        self.own_workflow = False

    def failed(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        _say(f"capture error in {where} (the step is not affected): {exc!r}")
        try:
            from capture_lib import runtime

            runtime.count_lost("run_capture_error")
        except Exception:  # pragma: no cover - capture_lib itself is broken
            pass

    def start(
        self,
        command: list[str],
        name: str,
        workflow: str,
        parent: str | None,
        inputs: Iterable[str],
        options: dict[str, Any],
    ) -> None:
        try:
            import capture_lib as cl

            cl.init(**{k: v for k, v in options.items() if v is not None})
            if parent:
                self.workflow = cl.join(parent, workflow).start()
            else:
                self.workflow = cl.workflow(workflow).start()
                self.own_workflow = True
            used = {role(path): cl.file(path) for path in inputs}
            self.task = self.workflow.task(
                name, params=step_params(command), used=used or None, resources=False
            )
            self.task.start()
        except Exception as exc:
            self.failed("start", exc)

    def end(
        self,
        code: int,
        usage: dict[str, float] | None,
        outputs: dict[str, tuple[str, str]],
        not_started: str | None,
    ) -> None:
        try:
            import capture_lib as cl

            if self.task is None or self.workflow is None:
                return
            generated = {
                role(path): cl.model(path) if kind == "model" else cl.file(path)
                for path, kind in outputs.values()
            }
            if generated:
                self.task.generated(**generated)
            status, error = "finished", None
            if code:
                status, error = "failed", describe(code, not_started)
            self.task.metric("exit_status", code)
            self.task.end(status, error, resources=usage)
            if self.own_workflow:
                self.workflow.end(status, error)
            else:
                self.workflow.end()
        except Exception as exc:
            self.failed("end", exc)

    def close(self) -> None:
        try:
            import capture_lib as cl

            delivered = cl.flush(FLUSH_TIMEOUT)
            stats = cl.stats()
            if stats["waiting_in_spool"]:
                path = os.environ.get("PROVML_PATH", "prov-logs")
                _say(
                    "the tracker did not take the step's records: they are kept in the "
                    f"spool directory {path} (load them with provml ingest)"
                )
            elif not delivered:
                _say(f"not everything captured was delivered within {FLUSH_TIMEOUT:g} s")
            lost = stats["lost"]
            if lost:
                _say(f"some of the step's provenance was not captured: {lost}")
            cl.shutdown(FLUSH_TIMEOUT)
        except Exception as exc:
            self.failed("flush", exc)


def step_params(command: list[str]) -> dict[str, Any]:
    """The step's parameters: command line (secrets masked), directory, host, batch job."""
    from capture_lib.environment import batch, core

    params: dict[str, Any] = {"command": core.command_line(command), "cwd": os.getcwd()}
    params["hostname"] = core.host().get("hostname")
    for probe in (batch.batch, batch.mpi):
        with contextlib.suppress(Exception):  # a probe's failure only leaves its keys out
            params.update(probe(os.environ))
    return {k: v for k, v in params.items() if v is not None}


def role(path: str) -> str:
    """The role a file has for the step: its path as given (its last 256 characters)."""
    return path[-256:] or "file"


def describe(code: int, not_started: str | None) -> str:
    """The error of a step that did not exit with 0."""
    if not_started:
        return f"{not_started} (exit status {code})"
    if code > 128 and code - 128 < signal.NSIG:
        try:
            return f"killed by {signal.Signals(code - 128).name} (exit status {code})"
        except ValueError:
            pass
    return f"exit status {code}"


def snapshot(directory: str, skip: str = "") -> Snapshot:
    """path → (size, mtime_ns, inode) of the files under ``directory``, but not under
    ``skip`` (a real path: the capture's own segment files)."""
    out: Snapshot = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip)
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:  # gone since it was listed
                continue
            out[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
            if len(out) > WATCH_MAX_FILES:
                raise OverflowError(f"{directory} holds more than {WATCH_MAX_FILES} files")
    return out


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The files created or changed (size, mtime or inode) between two snapshots."""
    return sorted(os.path.normpath(p) for p, key in after.items() if before.get(p) != key)


class Signals:
    """The signals of :data:`FORWARDED`, from before the capture starts to the exit: one
    received before the command starts keeps it from starting; while it runs, each is
    forwarded to it; after it ended, they are only noted (the exit status is the
    command's, and the capture's flush is bounded)."""

    def __init__(self) -> None:
        #: the command's pid once it started; None before (and it is never 0)
        self.child: int | None = None
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
        self._previous = {s: signal.signal(s, self.handle) for s in FORWARDED}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def attach(self, pid: int) -> None:
        """The command runs as ``pid``: send it what was received while it started."""
        self.child = pid
        for signum in self.received:
            self._send(signum)

    def handle(self, signum: int, frame: Any = None) -> None:
        self.received.append(signum)
        if self.child is not None:
            self._send(signum)

    def _send(self, signum: int) -> None:
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError):  # it has just ended
            os.kill(self.child, signum)


#: the process the command is started through (see :mod:`provml.cli.launcher`)
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")


def run_child(
    command: list[str], signals: Signals
) -> tuple[int, dict[str, float] | None, str | None]:
    """Run ``command`` with this process's streams, through :data:`LAUNCHER`: (exit code
    as a shell gives it, its CPU seconds and peak RSS in KiB or None, why it did not
    start or None)."""
    if signals.received:
        signum = signals.received[0]
        return (
            128 + signum,
            None,
            f"{signal.Signals(signum).name} received before the command started",
        )
    read, write = os.pipe()
    try:
        os.set_inheritable(write, True)
        launcher = subprocess.Popen(
            [sys.executable, "-I", "-S", LAUNCHER, str(write), *command], close_fds=False
        )
    except OSError as exc:
        os.close(read)
        _say(f"cannot start {sys.executable}: {exc.strerror or exc}")
        return 126, None, f"could not start the command: {exc.strerror or exc}"
    finally:
        os.close(write)
    lines: list[str] = []
    with os.fdopen(read, "r", encoding="utf-8", errors="replace") as pipe:
        for line in pipe:  # until the launcher and the command are gone
            lines.append(line)
            if line.startswith("pid "):
                signals.attach(int(line.split()[1]))
            elif line.startswith(("done ", "error ")):
                signals.child = None  # reaped: its pid may be another process's soon
    _, status, _usage = os.wait4(launcher.pid, 0)
    launcher.returncode = os.waitstatus_to_exitcode(status)
    for line in lines:
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "error":
            number, _, message = rest.partition(" ")
            _say(f"{command[0]}: {message}")
            return int(number), None, f"could not start the command: {message}"
        if kind == "done":
            raw, cpu, rss = rest.split()
            ended = os.waitstatus_to_exitcode(int(raw))
            resources = {"cpu_seconds": float(cpu), "max_rss_kib": int(rss)}
            return (128 - ended if ended < 0 else ended), resources, None
    # the launcher itself failed (killed before it could say how the command ended)
    ended = launcher.returncode
    return (128 - ended if ended < 0 else ended), None, "the launcher of the command failed"


@click.command(
    name="run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--in", "inputs", multiple=True, metavar="PATH", help="A file the step reads.")
@click.option("--out", "outputs", multiple=True, metavar="PATH", help="A file the step writes.")
@click.option(
    "--model", "models", multiple=True, metavar="PATH", help="A model file the step writes."
)
@click.option(
    "--watch",
    multiple=True,
    metavar="DIR",
    help="A directory whose files created or changed by the step are its outputs.",
)
@click.option("--name", default=None, help="The task's name (default: the command's name).")
@click.option(
    "--workflow",
    default=None,
    help="The workflow the step is a task of (default: PROVML_WORKFLOW, else the task's name).",
)
@click.option(
    "--parent",
    default=None,
    help="IRI of the workflow run the task belongs to (default: PROVML_PARENT; without "
    "one, the step is a run of its own).",
)
@click.option(
    "--start-workflow",
    default=None,
    metavar="NAME",
    help="Start a run of workflow NAME and print the export lines that make the next "
    'steps its tasks: eval "$(provml run --start-workflow NAME)".',
)
@click.option(
    "--end-workflow",
    type=click.Choice(["finished", "failed"]),
    default=None,
    help="Record that the run PROVML_PARENT (--parent) ended, with this status.",
)
@click.option(
    "--mode",
    type=click.Choice(["http", "disk", "off"]),
    default=None,
    help="Capture mode (default: PROVML_MODE; http when a URL is set, else disk).",
)
@click.option("--url", default=None, help="Tracker URL in http mode (default: PROVML_URL).")
@click.option("--path", default=None, help="Directory of disk-mode files (default: PROVML_PATH).")
def run(
    command: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    models: tuple[str, ...],
    watch: tuple[str, ...],
    name: str | None,
    workflow: str | None,
    parent: str | None,
    start_workflow: str | None,
    end_workflow: str | None,
    mode: str | None,
    url: str | None,
    path: str | None,
) -> None:
    """Run COMMAND and capture it as a task: command line (secrets masked), exit status,
    CPU time and peak memory, inputs and outputs by content.

    \b
    provml run --in mesh.dat --out result.h5 -- ./simulate --steps 100
    provml run --watch out/ -- srun ./solver input.nml

    stdin, stdout and stderr pass through; signals are forwarded; the exit status is
    COMMAND's (128 + the signal if one killed it), whatever happens to the capture.
    """
    options = {"mode": mode, "url": url, "path": path}
    try:
        env_workflow = config.WORKFLOW.get()
        env_parent = config.PARENT.get()
    except Exception as exc:  # a setting that cannot be read is only unset
        _say(str(exc))
        env_workflow = env_parent = None
    workflow = workflow or env_workflow
    parent = parent or env_parent
    if start_workflow is not None or end_workflow is not None:
        if command:
            raise click.UsageError("--start-workflow and --end-workflow run no command")
        sys.exit(_workflow_only(start_workflow, end_workflow, workflow, parent, options))
    if not command:
        raise click.UsageError("give the command to run: provml run [OPTIONS] -- COMMAND …")
    if parent:
        from provml.core.ids import parse_execution_iri

        try:
            parse_execution_iri(parent)
        except ValueError as exc:
            _say(f"PROVML_PARENT/--parent: {exc}; the step is captured as a run of its own")
            parent = None
    task_name = name or os.path.basename(command[0]) or "step"
    capture = Capture()
    with Signals() as signals:
        own = os.path.realpath(path or config.PATH.get())  # the capture's own files
        befores: dict[str, Snapshot] = {}
        for directory in watch:
            try:
                befores[directory] = snapshot(directory, own)
            except Exception as exc:
                capture.failed(f"--watch {directory}", exc)
        capture.start(list(command), task_name, workflow or task_name, parent, inputs, options)
        if capture.own_workflow and env_workflow and not env_parent and capture.workflow:
            _say(
                f"started a run of {capture.workflow.name!r}; to make the next steps its "
                f"tasks: export PROVML_PARENT={capture.workflow.iri}"
            )
        code, usage, not_started = run_child(list(command), signals)
        produced: dict[str, tuple[str, str]] = {}
        for out in outputs:
            produced[out] = (out, "file")
        for out in models:
            produced[out] = (out, "model")
        for directory, before in befores.items():
            try:
                for found in changed(before, snapshot(directory, own)):
                    produced.setdefault(found, (found, "file"))
            except Exception as exc:
                capture.failed(f"--watch {directory}", exc)
        capture.end(code, usage, produced, not_started)
        capture.close()
    sys.exit(code)


def _workflow_only(
    start: str | None,
    end: str | None,
    workflow: str | None,
    parent: str | None,
    options: dict[str, Any],
) -> int:
    """--start-workflow NAME (prints the export lines) or --end-workflow STATUS."""
    import capture_lib as cl

    cl.init(**{k: v for k, v in options.items() if v is not None})
    if start is not None:
        wf = cl.workflow(start).start()
        click.echo(f"export PROVML_WORKFLOW={shlex.quote(wf.name)}")
        click.echo(f"export PROVML_PARENT={shlex.quote(wf.iri)}")
    else:
        if not parent:
            raise click.UsageError("--end-workflow needs PROVML_PARENT (or --parent)")
        try:
            joined = cl.join(parent, workflow or "workflow")
        except ValueError as exc:
            raise click.UsageError(f"PROVML_PARENT/--parent: {exc}") from None
        joined.close(end or "finished")
    ok = cl.flush(FLUSH_TIMEOUT)
    cl.shutdown(FLUSH_TIMEOUT)
    if not ok:
        _say(f"not everything captured was delivered within {FLUSH_TIMEOUT:g} s")
    return 0
