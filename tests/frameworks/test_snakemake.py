"""The Snakemake logger plugin (``snakemake --logger provml``) with the real Snakemake CLI.

A small workflow written here: a rule with wildcards (``sort``) made twice, for two
independent sources, a ``wc`` rule, a ``run:`` rule in Python (``train``, stage
training, its output a model) and a shell rule deriving a model from it (``tune``). It
runs once with the plugin, capturing to disk, and once without: the outputs are the same
bytes, and the graph answers where each file came from without ever joining the two
branches.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from tests.frameworks.conftest import Captured, ask, framework

framework("snakemake")

ROOT = Path(__file__).resolve().parents[2]

SNAKEFILE = """
rule all:
    input: "a.sorted.count", "b.sorted.txt", "a.tuned.model"

rule sort:
    input: "{name}.txt"
    output: "{name}.sorted.txt"
    params: order="ascending", api_token="s3cret-token"
    shell: "sort {input} > {output}"

rule count:
    input: "{name}.sorted.txt"
    output: "{name}.sorted.count"
    benchmark: "{name}.count.benchmark.tsv"
    shell: "wc -l < {input} > {output}"

rule train:
    input: data="{name}.sorted.txt", lines="{name}.sorted.count"
    output: "{name}.model"
    params: lr=0.1
    run:
        lines = open(input.data).read().split()
        n = int(open(input.lines).read())
        with open(output[0], "w") as f:
            f.write(f"{params.lr} {n} {' '.join(reversed(lines))}\\n")

rule tune:
    input: "{name}.model"
    output: "{name}.tuned.model"
    shell: "cat {input} {input} > {output}"
"""

FAILING = """
rule all:
    input: "ok.txt", "boom.txt"

rule ok:
    output: "ok.txt"
    shell: "echo fine > {output}"

rule boom:
    output: "boom.txt"
    shell: "echo partial > {output}; echo 'password=hunter2' >&2; exit 3"
"""

OUTPUTS = ("a.sorted.txt", "a.sorted.count", "a.model", "a.tuned.model", "b.sorted.txt")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shas(rows: list[dict[str, str]], column: str) -> set[str]:
    """The SHA-256 of the content-addressed nodes in a column."""
    return {r[column].rpartition("/sha256/")[2] for r in rows}


def _workdir(root: Path, snakefile: str) -> Path:
    root.mkdir(parents=True)
    (root / "Snakefile").write_text(snakefile)
    (root / "a.txt").write_text("pear\napple\nfig\n")
    (root / "b.txt").write_text("zebra\nant\n")
    return root


def _snakemake(workdir: Path, *args: str) -> subprocess.Popen[str]:
    """Snakemake's CLI in a process of its own (the runs of this module run at once)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVML_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--nocolor", *args],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=180)
    return process.returncode, output


def _provml(logs: Path, *more: str) -> list[str]:
    return ["--logger", "provml", "--logger-provml-mode", "disk",
            "--logger-provml-path", str(logs), *more]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The workflow with the plugin and without it, and a failing one, run at once."""
    base = tmp_path_factory.mktemp("snakemake")
    with_plugin = _workdir(base / "with", SNAKEFILE)
    without = _workdir(base / "without", SNAKEFILE)
    failing = _workdir(base / "failing", FAILING)
    options = ("--logger-provml-models", "*.model", "--logger-provml-stages", "train=training")
    started = [
        _snakemake(with_plugin, *_provml(base / "logs", *options)),
        _snakemake(without),
        _snakemake(failing, "--keep-going",
                   *_provml(base / "failing-logs", "--logger-provml-workflow", "fails")),
    ]  # fmt: skip
    (code, out), (plain, plain_out), failed = (_wait(p) for p in started)
    assert code == 0, out
    assert plain == 0, plain_out
    return {"with": with_plugin, "without": without, "logs": base / "logs",
            "failed": failed, "failing-logs": base / "failing-logs"}  # fmt: skip


def test_the_outputs_are_the_same_with_and_without_the_plugin(runs: dict[str, Any]) -> None:
    for name in OUTPUTS:
        assert (runs["with"] / name).read_bytes() == (runs["without"] / name).read_bytes()


def test_which_rule_and_inputs_produced_a_file(runs: dict[str, Any]) -> None:
    wd = runs["with"]
    store = Captured(runs["logs"]).store()
    sha = {name: _sha(wd / name) for name in ("a.txt", "b.txt", *OUTPUTS)}
    snakefile = _sha(wd / "Snakefile")

    uses = ask(store, "data-uses", data=sha["a.tuned.model"])
    (generation,) = [r for r in uses if r["how"] == "generated"]
    assert generation["step"] == "tune" and generation["path"] == str(wd / "a.tuned.model")
    (run,) = {generation["run"]}
    assert {r["step"] for r in ask(store, "data-uses", data=sha["a.sorted.txt"])} == {
        "sort", "count", "train",
    }  # fmt: skip

    rows = ask(store, "data-derivation", model=sha["a.tuned.model"])
    assert {r["stepName"] for r in rows} == {"tune", "train", "count", "sort"}
    inputs = {r["inputSha256"] for r in rows}
    assert inputs == {sha["a.txt"], sha["a.sorted.txt"], sha["a.sorted.count"], sha["a.model"],
                      snakefile}  # fmt: skip
    (raw,) = [r for r in rows if r["inputSha256"] == sha["a.txt"]]
    assert raw["raw"] == "true" and raw["inputPath"] == str(wd / "a.txt")
    assert json.loads(raw["parameters"])["wildcards"] == {"name": "a"}

    (base,) = ask(store, "derived-from", model=sha["a.tuned.model"])
    assert base["base"].endswith(sha["a.model"]) and base["role"] == "input"

    training = {r["role"]: r["sha256"] for r in ask(store, "training-data", model=sha["a.model"])}
    assert training == {"data": sha["a.sorted.txt"], "lines": sha["a.sorted.count"],
                        "snakefile": snakefile}  # fmt: skip
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha["a.model"])}
    assert hp["lr"] == "0.1" and hp["threads"] == "1"
    assert json.loads(hp["wildcards"]) == {"name": "a"}
    assert {r["run"] for r in ask(store, "training-data", model=sha["a.model"])} == {run}


def test_the_two_branches_are_never_linked(runs: dict[str, Any]) -> None:
    wd = runs["with"]
    store = Captured(runs["logs"]).store()
    sha = {name: _sha(wd / name) for name in ("a.txt", "b.txt", *OUTPUTS)}

    below_a = _shas(ask(store, "downstream", source=sha["a.txt"]), "entity")
    assert below_a == {sha[n] for n in ("a.sorted.txt", "a.sorted.count", "a.model",
                                         "a.tuned.model")}  # fmt: skip
    below_b = _shas(ask(store, "downstream", source=sha["b.txt"]), "entity")
    assert below_b == {sha["b.sorted.txt"]}

    models = _shas(ask(store, "was-used", source=sha["a.txt"]), "model")
    assert models == {sha["a.model"], sha["a.tuned.model"]}
    assert ask(store, "was-used", source=sha["b.txt"]) == []
    rows = ask(store, "data-derivation", model=sha["b.sorted.txt"])
    assert {r["stepName"] for r in rows} == {"sort"}
    assert sha["a.txt"] not in {r["inputSha256"] for r in rows}


def test_the_run_and_its_jobs_as_recorded(runs: dict[str, Any]) -> None:
    records = Captured(runs["logs"]).records()
    (start,) = [r for r in records if r["kind"] == "workflow_start"]
    assert start["name"] == "with"  # the directory of a file called Snakefile
    assert start["params"]["snakefile"]["sha256"] == _sha(runs["with"] / "Snakefile")
    (end,) = [r for r in records if r["kind"] == "workflow_end"]
    assert end.get("status") in (None, "finished")
    tasks = [r for r in records if r["kind"] == "task_start"]
    assert sorted(t["plan"][1] for t in tasks) == ["all", "count", "sort", "sort", "train", "tune"]
    assert all(t["parent"] == start["n"] for t in tasks)
    sort_a = next(t for t in tasks if t["plan"][1] == "sort" and
                  t["params"]["wildcards"] == {"name": "a"})  # fmt: skip
    assert sort_a["params"]["api_token"] == "***"  # redacted as hand-written capture is
    assert sort_a["params"]["order"] == "ascending" and isinstance(sort_a["params"]["jobid"], int)
    assert sort_a["used"]["input"]["path"] == str(runs["with"] / "a.txt")
    ends = [r for r in records if r["kind"] == "task_end"]
    assert len(ends) == 6 and all(e.get("status") in (None, "finished") for e in ends)
    # CPU time and peak memory: the job's, from its benchmark file, else none at all
    measured = {t["plan"][1] for t in tasks for e in ends if e["n"] == t["n"] and "resources" in e}
    assert measured == {"count"}
    assert not any("s3cret-token" in p.read_text() for p in runs["logs"].rglob("*.jsonl"))


def test_a_failing_rule_is_a_failed_task_with_its_error(runs: dict[str, Any]) -> None:
    code, output = runs["failed"]
    assert code != 0 and "exit status 3" in output
    records = Captured(runs["failing-logs"]).records()
    ends = {r["plan"][1]: r for r in records if r["kind"] == "task_end"}
    assert ends["ok"].get("status") is None and "output" in ends["ok"]["generated"]
    assert ends["boom"]["status"] == "failed"
    assert "exit status 3" in ends["boom"]["error"] and "echo partial" in ends["boom"]["error"]
    assert not ends["boom"].get("generated")  # Snakemake removed what it left
    assert "hunter2" not in ends["boom"]["error"]  # the command's secret, masked
    (end,) = [r for r in records if r["kind"] == "workflow_end"]
    assert end["name"] == "fails" and end["status"] == "failed"


def test_capture_failing_inside_the_logger_never_reaches_snakemake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (Snakemake's API), with the capture of every job start broken: the run
    completes, the failures are counted."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    from capture_lib.integrations import snakemake as smk
    from snakemake_logger_plugin_provml import LogHandlerSettings

    def broken(self: Any, record: Any) -> None:
        raise RuntimeError("capture broke")

    monkeypatch.setattr(smk.Capture, "_job_started", broken)
    # (the job also says which run a `provml run` inside it would join)
    ok = FAILING.replace('"boom.txt"', '"b.txt"').replace(
        '"echo fine > {output}"', '"echo fine > {output}; printenv PROVML_PARENT > parent"'
    )
    wd = _workdir(tmp_path / "wd", ok)
    monkeypatch.delenv("PROVML_PARENT", raising=False)
    monkeypatch.delenv("PROVML_WORKFLOW", raising=False)
    cl.init(mode="disk", path=str(tmp_path / "logs"), flush_interval=0.05)
    monkeypatch.chdir(wd)
    try:
        settings = OutputSettings(log_handler_settings={"provml": LogHandlerSettings()})
        with SnakemakeApi(settings) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=1), snakefile=wd / "Snakefile"
            )
            workflow.dag().execute_workflow()
        assert cl.stats()["lost"]["integration_error"] >= 1
    finally:
        cl.shutdown(timeout=5)
    assert (wd / "ok.txt").read_text() == "fine\n"
    assert (wd / "parent").read_text().startswith("https://provml.dev/id/exec/")
    assert "PROVML_PARENT" not in os.environ  # set for the jobs only while the run lasts


def test_the_settings_and_the_runs_default_name(caplog: pytest.LogCaptureFixture) -> None:
    from capture_lib.integrations.snakemake import Options, workflow_name

    assert workflow_name("/p/align/Snakefile") == "align"
    assert workflow_name("/p/align/workflow/Snakefile") == "align"
    assert workflow_name("/p/align/pipeline.smk") == "pipeline"

    class Settings:
        models = "*.pt, models/*.pkl"
        stages = "train=training,score=evaluation,bad=cooking"

    options = Options(Settings())
    assert options.stages == {"train": "training", "score": "evaluation"}
    assert "bad=cooking" in caplog.text  # said, and ignored
    assert options.is_model("/w/net.pt") and options.is_model(os.path.abspath("models/a.pkl"))
    assert not options.is_model("/w/a.pkl") and not Options(None).is_model("/w/net.pt")
