"""Provenance-capture overhead: provml's capture_lib side by side with its peers.

The unit of work is one *task*: start a task, give it 4 parameters, log 1 metric, end
it. Each contender runs four cases: every task with its own name (``distinct``: one per
file, chunk or rank, the usual case in HPC) or all with one name (``same``), on a quiet
machine and on a loaded one (``loaded``: one busy-loop process per core, started before
the case's runs and stopped after — on a compute node every core is busy with the
application, so what the capture's threads take from it is the overhead that counts).
For each contender and case this prints, over ``--repeats`` fresh processes (medians):

* the caller-thread cost per task (median and p99 of every task timed on its own), and
* the amortised cost per task up to "everything is on disk" (the contender's own flush,
  stop or end call included), its ratio to the naive baseline's in the same case, and
  the records found on disk afterwards.

``--memory N`` adds the memory run: N tasks with distinct names (provml, disk mode),
the process's RSS sampled as it goes; its growth after the first 10 % is the figure.

provml and the naive baseline run in this interpreter; each peer runs in its own
virtualenv under ``bench/.venvs/<name>``, created on first use (a peer whose install
fails is skipped). Usage::

    python bench/capture.py [--tasks N] [--repeats R] [--only provml,naive]
                            [--names distinct,same] [--load quiet,loaded] [--memory N]

See bench/README.md for what each figure means and how each peer is set up.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / "peers"
VENVS = BENCH / ".venvs"
MARKER = ".bench-installed.json"
RESULT_PREFIX = "BENCH-RESULT "
Pip = tuple[tuple[str, ...], ...]  # pip install argument lists, run in order
NAMES = ("distinct", "same")  # a name per task, or one name for all
LOADS = ("quiet", "loaded")  # the machine as it is, or one busy-loop process per core


@dataclass(frozen=True)
class Contender:
    name: str
    runner: str  # a script in bench/peers/
    installs: tuple[Pip, ...] = ()  # alternatives tried in order; () = this interpreter
    slow: bool = False  # capped at --slow-tasks
    note: str = ""
    setup: str = ""


CONTENDERS = (
    Contender(
        "provml",
        "run_provml.py",
        note="queue + background writer; fsync at flush",
        setup='capture_lib, cl.init(mode="disk"), this interpreter',
    ),
    Contender(
        "naive",
        "run_naive.py",
        note="json.dumps + write per record; no fsync",
        setup="json.dumps + f.write per record (3 per task), f.flush() at the end",
    ),
    Contender(
        "provlake",
        "run_provlake.py",
        installs=(
            (
                ("--no-deps", "--ignore-requires-python", "provlake==0.2.982"),
                ("requests-futures", "requests"),
            ),
        ),
        note="1 line per record on caller thread; no fsync",
        setup="ProvLake.get_persister(log_dir=...) offline; ProvTask, begin(), end()",
    ),
    Contender(
        "flowcept",
        "run_flowcept.py",
        installs=((("flowcept",),),),
        note="in memory until stop(): a crash loses all",
        setup="offline profile (no MQ/DB), FlowceptTask(used=...).end(generated=...)",
    ),
    Contender(
        "mlflow",
        "run_mlflow.py",
        installs=((("mlflow",),), (("mlflow-skinny",),)),
        slow=True,
        note="file store, nested run per task",
        setup='set_tracking_uri("file:..."), start_run(nested=True), log_params, log_metric',
    ),
)
BY_NAME = {c.name: c for c in CONTENDERS}


class Skip(Exception):
    """A contender that cannot run here (its install failed)."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- virtualenvs ------------------------------------------------------------------
def ensure_python(contender: Contender) -> str:
    """The interpreter for ``contender``: this one, or its venv's (made on first use)."""
    if not contender.installs:
        return sys.executable
    venv = VENVS / contender.name
    python = venv / "bin" / "python"
    marker = venv / MARKER
    if marker.is_file() and python.exists():
        try:
            installed = json.loads(marker.read_text())
        except ValueError:
            installed = {}
        if tuple(tuple(args) for args in installed.get("pip", ())) in contender.installs:
            return str(python)
    errors = []
    for pip in contender.installs:
        shown = "; ".join("pip install " + " ".join(args) for args in pip)
        say(f"setting up {venv}: {shown} (pip's output: {venv / 'install.log'})")
        try:
            error = _install(venv, pip)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            marker.write_text(json.dumps({"pip": pip, "python": sys.version.split()[0]}))
            return str(python)
        errors.append(error)
    raise Skip("install failed: " + " / ".join(errors))


def _install(venv: Path, pip: Pip) -> str | None:
    """Make ``venv`` afresh and pip-install into it; None, or the error's last line."""
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return "python -m venv: " + _last_line(made.stderr)
    with open(venv / "install.log", "w", encoding="utf-8") as log:
        for args in pip:
            command = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args]
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            try:
                done = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, timeout=1800, check=False
                )
            except subprocess.TimeoutExpired:
                return f"pip install {' '.join(args)}: timed out"
            if done.returncode != 0:
                return f"pip install {' '.join(args)}: " + _pip_error(venv / "install.log")
    return None


def _pip_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["failed"])[-1][:200]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ---- runs ---------------------------------------------------------------------------
def run_once(
    contender: Contender,
    python: str,
    tasks: int,
    warmup: int,
    args: argparse.Namespace,
    names: str = "same",
    rss_every: int = 0,
) -> dict[str, Any]:
    """One fresh process of the contender's runner; its result, or ``{"error": …}``."""
    workdir = tempfile.mkdtemp(prefix=f"provml-bench-{contender.name}-", dir=args.workdir_root)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROVML_", "MLFLOW_", "FLOWCEPT_", "PROV_BAG_SIZE"))
    }
    if not contender.installs:  # capture_lib from this checkout, even if not installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [python, str(PEERS / contender.runner), "--tasks", str(tasks)]
    command += ["--warmup", str(warmup), "--workdir", workdir, "--names", names]
    if rss_every:
        command += ["--rss-every", str(rss_every)]
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:g} s"}
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            result["workdir"] = workdir
            return result
    return {"error": _last_line(done.stderr) or f"exit code {done.returncode}, no result"}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Medians over the repeats that produced a result."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return None
    missing = [i + 1 for i, r in enumerate(runs) if "error" not in r and not _complete(r)]
    last = ok[-1]
    return {
        "repeats": len(ok),
        "tasks": last["tasks"],
        "warmup": last["warmup"],
        "caller_median_us": statistics.median(r["median_us"] for r in ok),
        "caller_p99_us": statistics.median(r["p99_us"] for r in ok),
        "caller_mean_us": statistics.median(r["mean_us"] for r in ok),
        "amortised_us": statistics.median(r["amortised_us"] for r in ok),
        "records": last.get("records"),
        "records_expected": last.get("records_expected"),
        "repeats_with_missing_records": missing,
        "versions": last.get("versions", {}),
    }


def _complete(run: dict[str, Any]) -> bool:
    return run.get("records") == run.get("records_expected") and not run.get("incomplete_runs")


def notes(contender: Contender, runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """The static note plus what this run showed (spills, losses, a smaller count)."""
    parts = [contender.note]
    if contender.slow:
        parts.append(f"only {summary['tasks']:,} tasks (--slow-tasks)")
    ok = [r for r in runs if "error" not in r]
    spilled = max((r.get("stats", {}).get("records_spilled", 0) for r in ok), default=0)
    if spilled:
        parts.append(f"queue full: caller wrote ≤{spilled:,} records itself")
    lost = [r["stats"]["lost"] for r in ok if r.get("stats", {}).get("lost")]
    if lost:
        parts.append(f"lost {lost[-1]}")
    invalid = max((r.get("invalid_batches", 0) for r in ok), default=0)
    if invalid:
        parts.append(f"{invalid:,} batch line(s) refused by provml.core.wire")
    if any(r.get("flush_ok") is False for r in ok):
        parts.append("flush timed out")
    if summary["repeats_with_missing_records"]:
        parts.append(f"records missing in repeat {summary['repeats_with_missing_records']}")
    failed = len(runs) - len(ok)
    if failed:
        parts.append(f"{failed} repeat(s) failed")
    return "; ".join(p for p in parts if p)


# ---- report -------------------------------------------------------------------------
def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "workdir_root": args.workdir_root,
        "workdir_filesystem": _filesystem(args.workdir_root),
    }
    git = _git("rev-parse", "--short", "HEAD")
    if git:
        info["provml_git"] = git + (" + uncommitted changes" if _git("status", "--short") else "")
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _filesystem(path: str) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/mounts), if known."""
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    real, best = os.path.realpath(path), ("", None)
    for fields in mounts:
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best[1]


def settle(seconds: float = 2.0) -> None:
    """Write back what the previous run left dirty in the page cache, then pause: a peer
    that writes thousands of files (MLflow) would otherwise have the kernel flushing
    them on one of the two cores, and slow every fsync, during the next contender's run."""
    os.sync()
    time.sleep(seconds)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def fmt_us(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.1f}×" if value < 100 else f"{value:,.0f}×"


def table(rows: list[dict[str, Any]]) -> str:
    """One case's results as an aligned text table (skipped contenders get one message)."""
    heads = [
        "contender",
        "tasks",
        "caller median µs",
        "caller p99 µs",
        "amortised µs/task",
        "naive ÷ this",
        "records on disk",
        "note",
    ]
    base = next((r["summary"] for r in rows if r["name"] == "naive" and r["summary"]), None)
    cells: list[list[str]] = []
    for row in rows:
        s = row["summary"]
        if s is None:
            cells.append([row["name"], row["status"] + ": " + row["message"]])
            continue
        records = "?" if s["records"] is None else f"{s['records']:,}/{s['records_expected']:,}"
        ratio = fmt_ratio(base["amortised_us"] / s["amortised_us"]) if base else "n/a"
        cells.append(
            [
                row["name"],
                f"{s['tasks']:,}",
                fmt_us(s["caller_median_us"]),
                fmt_us(s["caller_p99_us"]),
                fmt_us(s["amortised_us"]),
                ratio,
                records,
                row["note"],
            ]
        )
    full = [c for c in cells if len(c) == len(heads)]
    widths = [max(len(c[i]) for c in [heads, *full]) for i in range(len(heads) - 1)]
    right = {1, 2, 3, 4, 5, 6}

    def line(c: list[str]) -> str:
        if len(c) != len(heads):  # a skipped contender: its name, then the reason
            return c[0].ljust(widths[0]) + "  " + c[1]
        out = [c[i].rjust(w) if i in right else c[i].ljust(w) for i, w in enumerate(widths)]
        return "  ".join([*out, c[-1]])

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * 4
    return "\n".join([line(heads), rule, *(line(c) for c in cells)])


def memory_table(result: dict[str, Any]) -> str:
    """The memory run: RSS along the run of distinct names."""
    if "error" in result:
        return f"memory run: failed: {result['error']}"
    curve = result["rss_curve_mib"]
    shown = curve[:: max(1, len(curve) // 10)] + ([curve[-1]] if len(curve) % 10 != 1 else [])
    return "\n".join(
        [
            f"memory run: provml, {result['tasks']:,} tasks with distinct names (disk mode), "
            f"{fmt_us(result['amortised_us'])} µs/task, records "
            f"{result['records']:,}/{result['records_expected']:,}",
            "  tasks        RSS MiB",
            *(f"  {n:>11,}  {rss:>7.1f}" for n, rss in dict(shown).items()),
            f"  growth after the first 10 %: {result['rss_growth_after_10pct_mib']} MiB "
            f"(peak {result['rss_peak_mib']} MiB)",
        ]
    )


@contextlib.contextmanager
def cpu_hog(on: bool) -> Iterator[None]:
    """While on: one busy-loop process per core (a compute node running its application)."""
    hogs = []
    if on:
        code = "while True: pass"
        hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
        say(f"CPU hog: {len(hogs)} busy-loop process(es) started")
        time.sleep(0.5)
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait()


def header(
    machine: dict[str, Any], cases: dict[str, list[dict[str, Any]]], args: argparse.Namespace
) -> str:
    load = machine.get("load_average")
    lines = [
        f"provml capture benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"machine:  {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['platform']}"
        + (f", load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start" if load else ""),
        f"python:   {machine['python']} ({machine['python_executable']})",
        f"work dir: {machine['workdir_root']} ({machine['workdir_filesystem']})",
    ]
    if machine.get("provml_git"):
        lines.append(f"checkout: git {machine['provml_git']}")
    rows = next(iter(cases.values()), [])
    for row in rows:
        versions = (row["summary"] or {}).get("versions", {})
        shown = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python")
        if shown or row["status"] != "ok":
            lines.append(f"{row['name'] + ':':9} {shown or row['status']}  [{row['setup']}]")
    lines.append(
        f"runs:     {args.tasks:,} tasks (slow peers {min(args.tasks, args.slow_tasks):,}) after "
        f"a {args.warmup:,}-task warm-up (slow peers {min(args.warmup, args.slow_warmup):,}),"
        f" {args.repeats} fresh process(es) each; medians over the repeats"
    )
    lines.append(
        "cases:    distinct names = a name per task; same = one name; loaded = one busy-loop "
        "process per core during the runs"
    )
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Provenance-capture overhead of provml and its peers (see bench/README.md)."
    )
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks timed per run")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per contender")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed tasks first")
    parser.add_argument(
        "--only", default="", help="comma-separated contenders: " + ",".join(BY_NAME)
    )
    parser.add_argument(
        "--names",
        dest="names_arg",
        default=",".join(NAMES),
        help="task names, comma-separated: distinct,same",
    )
    parser.add_argument(
        "--load",
        dest="load_arg",
        default=",".join(LOADS),
        help="machine states, comma-separated: quiet,loaded",
    )
    parser.add_argument(
        "--memory", type=int, default=0, help="tasks of the memory run (distinct names; 0: none)"
    )
    parser.add_argument("--slow-tasks", type=int, default=2_000, help="task cap for mlflow")
    parser.add_argument("--slow-warmup", type=int, default=200, help="warm-up cap for mlflow")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument(
        "--json", default=str(BENCH / "results" / "capture.json"), help="results file"
    )
    parser.add_argument("--workdir-root", default=tempfile.gettempdir(), help="where runs write")
    parser.add_argument("--keep", action="store_true", help="keep each run's output files")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BY_NAME)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if args.tasks < 1 or args.repeats < 1 or args.warmup < 0 or args.memory < 0:
        parser.error("--tasks and --repeats must be ≥ 1, --warmup and --memory ≥ 0")
    args.names = names
    for option, known in (("names", NAMES), ("load", LOADS)):
        chosen = [v.strip() for v in getattr(args, option + "_arg").split(",") if v.strip()]
        if not chosen or set(chosen) - set(known):
            parser.error(f"--{option} takes some of {','.join(known)}")
        setattr(args, option + "_cases", chosen)
    return args


def run_case(
    chosen: list[Contender],
    pythons: dict[str, str],
    args: argparse.Namespace,
    load: str,
    names: str,
) -> dict[str, list[dict[str, Any]]]:
    """Every repeat of every contender in one case, interleaved (drift hits all alike)."""
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in chosen}
    for repeat in range(1, args.repeats + 1):
        for contender in chosen:
            if contender.name not in pythons:
                continue
            tasks = min(args.tasks, args.slow_tasks) if contender.slow else args.tasks
            warmup = min(args.warmup, args.slow_warmup) if contender.slow else args.warmup
            say(f"[{load}, {names} names, {repeat}/{args.repeats}] {contender.name}: {tasks:,} …")
            settle()
            result = run_once(contender, pythons[contender.name], tasks, warmup, args, names)
            runs[contender.name].append(result)
            if "error" in result:
                say(f"    failed: {result['error']}")
            else:
                say(
                    f"    median {fmt_us(result['median_us'])} µs, p99 "
                    f"{fmt_us(result['p99_us'])} µs, amortised {fmt_us(result['amortised_us'])}"
                    f" µs/task, records {result['records']:,}/{result['records_expected']:,}"
                )
    return runs


def memory_run(python: str, args: argparse.Namespace) -> dict[str, Any]:
    """provml over ``--memory`` distinct task names, RSS sampled 50 times on the way."""
    contender = BY_NAME["provml"]
    every = max(1, args.memory // 50)
    say(f"[memory] provml: {args.memory:,} tasks, distinct names, RSS every {every:,} …")
    settle()
    result = run_once(contender, python, args.memory, 0, args, "distinct", every)
    if "error" not in result:
        say(
            f"    RSS {result['rss_start_mib']} → {result['rss_at_10pct_mib']} (10 %) → "
            f"{result['rss_end_mib']} MiB, growth after 10 %: "
            f"{result['rss_growth_after_10pct_mib']} MiB; {fmt_us(result['amortised_us'])} µs/task"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = machine_info(args)
    chosen = [BY_NAME[n] for n in args.names]
    pythons: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for contender in chosen:  # every install before any timing
        try:
            pythons[contender.name] = ensure_python(contender)
        except Skip as exc:
            skipped[contender.name] = str(exc)
            say(f"{contender.name}: skipped, {exc}")
    cases: dict[str, list[dict[str, Any]]] = {}
    for load in args.load_cases:
        with cpu_hog(load == "loaded"):
            for names in args.names_cases:
                runs = run_case(chosen, pythons, args, load, names)
                cases[f"{load}, {names} names"] = case_rows(chosen, runs, skipped, pythons)
    memory = None
    if args.memory and "provml" in pythons:
        memory = memory_run(pythons["provml"], args)
    print(header(machine, cases, args))
    for case, rows in cases.items():
        print(f"\n{case}:\n{table(rows)}")
    if memory is not None:
        print("\n" + memory_table(memory))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "names"} | {"contenders": args.names}
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": machine,
        "config": config,
        "cases": cases,
        "memory": memory,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


def case_rows(
    chosen: list[Contender],
    runs: dict[str, list[dict[str, Any]]],
    skipped: dict[str, str],
    pythons: dict[str, str],
) -> list[dict[str, Any]]:
    rows = []
    for contender in chosen:
        summary = summarise(runs[contender.name])
        if contender.name in skipped:
            status, message = "skipped", skipped[contender.name]
        elif summary is None:
            status, message = "failed", runs[contender.name][-1]["error"]
        else:
            status, message = "ok", ""
        rows.append(
            {
                "name": contender.name,
                "status": status,
                "message": message,
                "setup": contender.setup,
                "python": pythons.get(contender.name),
                "note": notes(contender, runs[contender.name], summary) if summary else "",
                "summary": summary,
                "runs": runs[contender.name],
            }
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
