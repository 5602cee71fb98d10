"""``provml run`` with real processes: a shell script that reads an input and writes an
output, a failing command, a command killed by a signal, forwarded signals, a watched
directory, and two steps of a batch script joined into one run. Captured in disk-only
mode and loaded into an embedded store, or sent over HTTP to a live server; then asked."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provml.cli import main
from provml.core import config
from tests.cli.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "PREFIX provml: <https://provml.dev/ns#> PREFIX prov: <http://www.w3.org/ns/prov#>\n"

STEP = """#!/bin/sh
# reads its input, writes its output, as a compiled code would
tr a-z A-Z < "$1" > "$2"
echo "step done"
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVML_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({"PROVML_MODE": "disk", "PROVML_PATH": str(tmp_path / "logs"), **extra})
    return env


def provml_run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``provml run ARGS`` as a real process in ``tmp_path/work``."""
    return subprocess.run(
        [sys.executable, "-m", "provml.cli", "run", *args],
        cwd=tmp_path / "work",
        env=env or environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "step.sh").write_text(STEP)
    (work / "raw.txt").write_text("some raw data\n")
    return work


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in config.ALL:
        monkeypatch.delenv(setting.name, raising=False)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), prog_name="provml")
    assert result.exit_code == 0, result.output
    return result.output


def load(tmp_path: Path) -> str:
    """The disk-only logs loaded into a new embedded store: its data directory."""
    data = str(tmp_path / "data")
    cli("ingest", "--quiet", "--workers", "1", str(tmp_path / "logs"), "--data-dir", data)
    return data


def select(where: str, *, data: str | None = None, url: str | None = None) -> list[dict[str, str]]:
    target = ["--data-dir", data] if data else ["--url", str(url)]
    rows = json.loads(cli("query", "--json", PREFIX + where, *target))["results"]["bindings"]
    return [{k: v["value"] for k, v in row.items()} for row in rows]


DATA = 'FILTER(STRSTARTS(STR(?d), "https://provml.dev/id/data/sha256/"))'
TASK = """SELECT ?task ?status ?error ?cpu ?rss ?command WHERE {
  ?task a provml:DataTransformationExecution ; provml:name "%s" .
  OPTIONAL { ?task provml:status ?status } OPTIONAL { ?task provml:error ?error }
  OPTIONAL { ?task provml:cpuSeconds ?cpu } OPTIONAL { ?task provml:maxRssBytes ?rss }
  OPTIONAL { ?task prov:used ?p . ?p provml:name "command" ; prov:value ?command }
}"""


def test_a_script_that_reads_and_writes(tmp_path: Path, work: Path) -> None:
    done = provml_run(
        tmp_path, "--in", "raw.txt", "--out", "out.txt", "--",
        "sh", "step.sh", "raw.txt", "out.txt", "--password", "hunter2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "step done\n"  # the child's output, untouched
    assert done.stderr == ""
    assert (work / "out.txt").read_text() == "SOME RAW DATA\n"
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.jsonl"))
    assert "hunter2" not in logs
    data = load(tmp_path)
    [row] = select(TASK % "sh", data=data)
    assert row["status"] == "finished" and "error" not in row
    assert row["command"] == "sh step.sh raw.txt out.txt --password '***'"
    assert float(row["cpu"]) >= 0 and int(row["rss"]) > 0
    used = select(f"SELECT ?d WHERE {{ <{row['task']}> prov:used ?d . {DATA} }}", data=data)
    made = select(f"SELECT ?d WHERE {{ ?d prov:wasGeneratedBy <{row['task']}> }}", data=data)
    assert [r["d"] for r in used] == [f"https://provml.dev/id/data/sha256/{sha(work / 'raw.txt')}"]
    assert f"https://provml.dev/id/data/sha256/{sha(work / 'out.txt')}" in [r["d"] for r in made]
    exit_metric = select(
        f"SELECT ?v WHERE {{ ?m provml:name 'exit_status' ; prov:value ?v ; "
        f"prov:wasGeneratedBy <{row['task']}> }}",
        data=data,
    )
    assert [float(r["v"]) for r in exit_metric] == [0.0]


def test_a_failing_command_and_a_killed_one(tmp_path: Path, work: Path) -> None:
    failed = provml_run(tmp_path, "--name", "fails", "--", "sh", "-c", "echo oops >&2; exit 3")
    assert failed.returncode == 3 and failed.stderr == "oops\n"
    killed = provml_run(tmp_path, "--name", "killed", "--", "sh", "-c", "kill -KILL $$")
    assert killed.returncode == 128 + signal.SIGKILL
    missing = provml_run(tmp_path, "--name", "missing", "--", "./no-such-program")
    assert missing.returncode == 127 and "no-such-program" in missing.stderr
    data = load(tmp_path)
    [fails] = select(TASK % "fails", data=data)
    assert (fails["status"], fails["error"]) == ("failed", "exit status 3")
    [died] = select(TASK % "killed", data=data)
    assert (died["status"], died["error"]) == ("failed", "killed by SIGKILL (exit status 137)")
    [never] = select(TASK % "missing", data=data)
    assert never["error"] == (
        "could not start the command: No such file or directory (exit status 127)"
    )


def test_stdin_passes_through(tmp_path: Path, work: Path) -> None:
    done = provml_run(tmp_path, "--", "sh", "-c", "tr a-z A-Z; exit 0", input="piped\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "PIPED\n", "")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded(tmp_path: Path, work: Path, sig: signal.Signals) -> None:
    name = sig.name.removeprefix("SIG")
    script = f"trap 'kill $!; echo got {name}; exit 42' {name}; touch ready; sleep 30 & wait"
    proc = subprocess.Popen(
        [sys.executable, "-m", "provml.cli", "run", "--name", "waits", "--", "sh", "-c", script],
        cwd=work, env=environ(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (work / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 42 and out == f"got {name}\n", err
    [row] = select(TASK % "waits", data=load(tmp_path))
    assert row["error"] == "exit status 42"


def test_a_watched_directory(tmp_path: Path, work: Path) -> None:
    out = work / "out"
    out.mkdir()
    (out / "same.txt").write_text("unchanged\n")
    (out / "changed.txt").write_text("before\n")
    script = (
        "echo after > out/changed.txt; mkdir -p out/sub; echo new > out/sub/new.txt; "
        "sleep 1.5"  # the capture's worker writes its segment meanwhile: not an output
    )
    env = environ(tmp_path, PROVML_PATH=str(out / "logs"))
    done = provml_run(
        tmp_path, "--watch", "out", "--name", "sim", "--", "sh", "-c", script, env=env
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "logs").mkdir()
    for segment in (out / "logs").iterdir():
        segment.rename(tmp_path / "logs" / segment.name)
    data = load(tmp_path)
    [row] = select(TASK % "sim", data=data)
    made = select(
        f"SELECT ?d ?role WHERE {{ ?d prov:wasGeneratedBy <{row['task']}> ; "
        f"prov:qualifiedGeneration/prov:hadRole/provml:name ?role . {DATA} }}",
        data=data,
    )
    assert sorted((r["role"], r["d"].rsplit("/", 1)[1]) for r in made) == [
        ("out/changed.txt", sha(out / "changed.txt")),
        ("out/sub/new.txt", sha(out / "sub" / "new.txt")),
    ]


def test_steps_of_a_batch_script_join_one_run(tmp_path: Path, work: Path, live: LiveServer) -> None:
    env = environ(tmp_path, PROVML_MODE="http", PROVML_URL=live.url)
    started = provml_run(tmp_path, "--start-workflow", "pipeline", env=env)
    assert started.returncode == 0, started.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    assert exports["PROVML_WORKFLOW"] == "pipeline"
    env.update(exports)
    first = provml_run(
        tmp_path, "--name", "clean", "--in", "raw.txt", "--out", "mid.txt", "--",
        "sh", "step.sh", "raw.txt", "mid.txt", env=env,
    )  # fmt: skip
    second = provml_run(
        tmp_path, "--name", "train", "--in", "mid.txt", "--model", "model.bin", "--",
        "sh", "-c", "cat mid.txt mid.txt > model.bin", env=env,
    )  # fmt: skip
    ended = provml_run(tmp_path, "--end-workflow", "finished", env=env)
    assert (first.returncode, second.returncode, ended.returncode) == (0, 0, 0), second.stderr
    assert first.stderr == second.stderr == ""
    parent = exports["PROVML_PARENT"]
    steps = select(
        f"SELECT ?name WHERE {{ ?t provml:partOf <{parent}> ; provml:name ?name }} ORDER BY ?name",
        url=live.url,
    )
    assert [r["name"] for r in steps] == ["clean", "train"]
    [_ended] = select(
        f"SELECT ?end WHERE {{ <{parent}> prov:endedAtTime ?end ; provml:name 'pipeline' }}",
        url=live.url,
    )
    raw, mid, model = sha(work / "raw.txt"), sha(work / "mid.txt"), sha(work / "model.bin")
    was_used = json.loads(cli("ask", "was-used", f"source={raw}", "--json", "--url", live.url))
    [hit] = was_used["results"]["bindings"]
    assert hit["model"]["value"].endswith(model) and hit["via"]["value"].endswith(mid)
    downstream = json.loads(cli("ask", "downstream", f"source={raw}", "--json", "--url", live.url))
    found = {b["entity"]["value"].rsplit("/", 1)[1] for b in downstream["results"]["bindings"]}
    assert {mid, model} <= found


def test_a_bad_parent_or_capture_never_changes_the_status(tmp_path: Path, work: Path) -> None:
    env = environ(tmp_path, PROVML_PARENT="not-an-iri", PROVML_WORKFLOW="w")
    done = provml_run(tmp_path, "--", "sh", "-c", "exit 5", env=env)
    assert done.returncode == 5
    assert "is not the IRI of an execution" in done.stderr
    # capture cannot even start (a path that is a file): the step runs and exits as usual
    (tmp_path / "blocked").write_text("")
    env = environ(tmp_path, PROVML_PATH=str(tmp_path / "blocked" / "logs"))
    done = provml_run(tmp_path, "--", "sh", "-c", "echo hi; exit 4", env=env)
    assert done.returncode == 4 and done.stdout == "hi\n"
    assert "provml run:" in done.stderr


def test_usage() -> None:
    result = CliRunner().invoke(main, ["run"], prog_name="provml")
    assert result.exit_code == 2 and "give the command to run" in result.output
    result = CliRunner().invoke(main, ["run", "--end-workflow", "finished"], prog_name="provml")
    assert result.exit_code == 2 and "PROVML_PARENT" in result.output


def test_cpu_time_and_peak_memory_are_the_childrens(tmp_path: Path, work: Path) -> None:
    grow = "b = b'x' * (150 << 20); import time; t = time.process_time() + 0.3\n" + (
        "while time.process_time() < t: pass"
    )
    done = provml_run(tmp_path, "--name", "grows", "--", sys.executable, "-c", grow)
    assert done.returncode == 0, done.stderr
    small = provml_run(tmp_path, "--name", "small", "--", "sh", "-c", "true")
    assert small.returncode == 0, small.stderr
    data = load(tmp_path)
    [row] = select(TASK % "grows", data=data)
    assert float(row["cpu"]) >= 0.3
    assert int(row["rss"]) >= 150 << 20  # bytes: the child's peak
    # not provml run's own size (tens of MB), which Linux would carry into a child's peak
    # across exec: the command is forked from the small launcher
    [row] = select(TASK % "small", data=data)
    assert int(row["rss"]) < 20 << 20
