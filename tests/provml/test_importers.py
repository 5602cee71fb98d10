"""The MLflow and Flowcept importers' conversions (provml.interop.mlflow,
provml.interop.flowcept) on the corpus' files and on made-up edge cases: what becomes
which record, which identifiers, and what is refused and said."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provml.core.ids import execution_iri
from provml.core.resolve import resolve_batch
from provml.interop import flowcept
from provml.interop.mlflow import dump_files, read_dumps, to_batches
from provml.interop.mlflow.convert import run_session
from provml.interop.mlflow.source import MetricPoint, Run, Snapshot
from tests.conftest import CORPUS

MLFLOW = CORPUS / "mlflow-tools/samples/oss_mlflow"
FLOWCEPT = CORPUS / "flowcept/tests/api"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not there")


def records(batches: list[Any]) -> list[dict[str, Any]]:
    return [dict(r, session=r.get("session") or b.session) for b in batches for r in b.records]


def run(**kw: Any) -> Run:
    base: dict[str, Any] = dict(
        run_id="0" * 31 + "1",
        experiment_id="1",
        experiment="exp",
        start_time=1_700_000_000_000,
        end_time=1_700_000_060_000,
        status="FINISHED",
    )
    return Run(**(base | kw))


@needs_corpus
def test_mlflow_dumps_of_the_corpus() -> None:
    snapshot = read_dumps(dump_files([str(MLFLOW)]))
    converted = to_batches(snapshot)
    assert converted.runs == 8 and converted.versions == 2
    # the one file that names no version of a model is said, not dropped
    assert [p.split(": ", 1)[0] for p in converted.problems] == [
        str(MLFLOW / "mlflow_models/mlflow_model.json")
    ]
    recs = records(converted.batches)
    session = run_session(next(r for r in snapshot.runs if r.run_id.startswith("a50163ec")))
    wf = next(r for r in recs if r["kind"] == "workflow_start" and r["session"] == session)
    assert wf["user"] == "andre" and wf["name"] == "mlflow experiment 2"
    assert wf["env"]["git_commit"] == "c6201fcbf3a50b93667ba6d6063932ec55a44afa"
    assert wf["env"]["mlflow_run_id"] == "a50163ec4f9e4343ac8d7e46df730a96"
    task = next(r for r in recs if r["kind"] == "task_start" and r["session"] == session)
    assert task["stage"] == "training" and task["params"]["max-depth"] == "4"
    end = next(r for r in recs if r["kind"] == "task_end" and r["session"] == session)
    assert (
        set(end["generated"]) == {"model"} and end["generated"]["model"]["framework"] == "sklearn"
    )
    finals = [r for r in recs if r["kind"] == "metric" and r["parent_session"] == session]
    assert {(m["name"], m["value"]) for m in finals} == {
        ("rmse", 0.7367947360663162),
        ("r2", 0.28100217442439346),
        ("mae", 0.5877424565761121),
    }
    # the model version of model_version.json, on the model of the run its dump carries
    (v6,) = [
        (r, k)
        for r in recs
        if r["kind"] == "task_end"
        for k in r.get("generated") or {}
        if k == "registered/sklearn_wine/6"
    ]
    ref = v6[0]["generated"]["registered/sklearn_wine/6"]
    assert ref["name"] == "sklearn_wine" and ref["version"] == "6"
    assert ref["sha256"] == v6[0]["generated"]["model"]["sha256"]  # the same model node
    # the dataset input of the MLflow 2.4 experiment, with its digest
    (used,) = [r["used"] for r in recs if r["kind"] == "task_start" and r.get("used")]
    (ds,) = used.values()
    assert ds["@data"] == "dataset" and ds["version"] == "217f4949" and ds["split"] == "training"
    assert ds["source"].endswith("wine-quality.csv")
    # the same dumps converted again: the same batches
    again = to_batches(read_dumps(dump_files([str(MLFLOW)])))
    assert [b.to_json() for b in again.batches] == [b.to_json() for b in converted.batches]


def test_mlflow_metric_history_sections_and_identities() -> None:
    points = [MetricPoint("loss", 1 / (s + 1), 1_700_000_001_000 + s, s) for s in range(3)]
    one = run(metrics={"loss": points + points[:1]})  # a value read twice is one
    converted = to_batches(Snapshot(runs=[one]))
    recs = records(converted.batches)
    assert converted.metric_values == 3 and not converted.problems
    sections = [r for r in recs if r["kind"] == "section_start"]
    assert sorted(s["index"] for s in sections) == [0, 1, 2]
    assert all(s["parent_session"] == run_session(one) and s["parent"] == 2 for s in sections)
    values = [r for r in recs if r["kind"] == "metric"]
    ids = {
        resolve_batch(b).records[i]["id"]
        for b in converted.batches
        for i, r in enumerate(b.records)
        if r["kind"] == "metric"
    }
    assert len(ids) == len(values) == 4  # three steps and the final value on the task
    # a value logged later is a new record beside the old ones, which keep their ids
    more = run(metrics={"loss": [*points, MetricPoint("loss", 0.1, 1_700_000_009_000, 3)]})
    ids2 = {
        resolve_batch(b).records[i]["id"]
        for b in to_batches(Snapshot(runs=[more])).batches
        for i, r in enumerate(b.records)
        if r["kind"] == "metric"
    }
    assert len(ids2 - ids) == 2  # the new value, and the final value on the task now
    assert len(ids - ids2) == 1  # the final value before (it stays in the store)


def test_mlflow_values_that_cannot_be_told_apart_are_said() -> None:
    same = [MetricPoint("acc", v, 1_700_000_001_000, 0) for v in (0.5, 0.6)]
    converted = to_batches(Snapshot(runs=[run(metrics={"acc": same})]))
    assert converted.metric_values == 0
    assert any("2 values at step 0" in p for p in converted.problems)


def test_mlflow_runs_that_cannot_be_imported_are_said() -> None:
    converted = to_batches(
        Snapshot(
            runs=[
                run(start_time=None, status="SCHEDULED"),
                run(run_id="f" * 32, experiment="x" * 300),
            ]
        )
    )
    assert converted.runs == 0 and not converted.batches
    assert len(converted.problems) == 2
    assert "no start time" in converted.problems[0] and "256" in converted.problems[1]


def test_mlflow_running_run_has_no_end_and_killed_one_failed() -> None:
    running = to_batches(Snapshot(runs=[run(status="RUNNING", end_time=None)]))
    assert {r["kind"] for r in records(running.batches)} == {"workflow_start", "task_start"}
    killed = records(to_batches(Snapshot(runs=[run(status="KILLED")])).batches)
    end = next(r for r in killed if r["kind"] == "workflow_end")
    assert end["status"] == "failed" and "KILLED" in end["error"]


def test_mlflow_parameters_are_redacted_by_the_given_redactor() -> None:
    from capture_lib.redact import Redactor

    one = run(params={"lr": "0.1", "api_key": "sk-1"}, tags={"db_password": "x", "team": "a"})
    recs = records(to_batches(Snapshot(runs=[one]), Redactor()).batches)
    task = next(r for r in recs if r["kind"] == "task_start")
    wf = next(r for r in recs if r["kind"] == "workflow_start")
    assert task["params"] == {"lr": "0.1", "api_key": "***"}
    assert wf["env"]["tag:db_password"] == "***" and wf["env"]["tag:team"] == "a"


# --- Flowcept ------------------------------------------------------------------------


def convert_flowcept(name: str) -> flowcept.Converted:
    return flowcept.to_batches(flowcept.loads((FLOWCEPT / name).read_bytes()), where=name)


def test_flowcept_extended_json() -> None:
    msg = {
        "_id": {"$oid": "63d06a8975be8f74e56f40e1"},
        "n": {"$numberLong": "5"},
        "t": {"$date": {"$numberLong": "1674603143298"}},
        "d": {"$date": "2024-02-08T20:06:28Z"},
        "x": {"$numberDouble": "NaN"},
    }
    assert flowcept.plain(msg) == {
        "_id": "63d06a8975be8f74e56f40e1",
        "n": 5,
        "t": 1674603143.298,
        "d": 1707422788.0,
        "x": "NaN",
    }
    assert flowcept.loads(b'{"task_id": "a"}\n{"task_id": "b"}\n') == [
        {"task_id": "a"},
        {"task_id": "b"},
    ]


@needs_corpus
def test_flowcept_sample_data() -> None:
    converted = convert_flowcept("sample_data.json")
    assert converted.messages == 265 and converted.tasks == 190
    # 207 task ids; 17 of them said nothing of when they ran: said, not imported
    assert len(converted.problems) == 17
    assert all("no message of it says when" in p for p in converted.problems)
    recs = records(converted.batches)
    start = next(r for r in recs if r["kind"] == "task_start" and r["time"] == 1674603140.215)
    assert start["params"] == {"batch_size": 64, "number_epochs": 10}
    assert start["plan"] == ["super_campaign", "mlflow"]
    end = next(r for r in recs if r["kind"] == "task_end" and r["session"] == start["session"])
    assert end["generated"] == {"loss": 0.04} and end["time"] == 1674603140.228
    # a failed task, and a dask task named by its function
    failed = [r for r in recs if r["kind"] == "task_end" and r["status"] == "failed"]
    assert len(failed) == 3 and {r["plan"][1] for r in failed} == {"forced_error_func"}
    # used values are parameters, never data nodes shared by content: no task uses data
    assert not any(r.get("used") for r in recs)
    # every task without a workflow is a run of its own: no two share a workflow execution
    parents = [r["session"] for r in recs if r["kind"] == "workflow_start"]
    assert len(parents) == len(set(parents)) == 190


@needs_corpus
def test_flowcept_workflow_with_telemetry() -> None:
    converted = convert_flowcept("sample_data_with_telemetry_and_rai.json")
    assert (converted.tasks, converted.workflows, converted.problems) == (9, 1, [])
    recs = records(converted.batches)
    (wf,) = [r for r in recs if r["kind"] == "workflow_start"]
    assert wf["env"]["flowcept_workflow_id"] == "wf_1df28552-c34e-4ee8-8fba-3b3d57b71839"
    tasks = [r for r in recs if r["kind"] == "task_start"]
    assert len(tasks) == 9 and all(t["parent_session"] == wf["session"] for t in tasks)
    assert len({t["session"] for t in tasks}) == 9
    ends = {r["session"]: r for r in recs if r["kind"] == "task_end"}
    assert len(ends) == 8  # the ninth only started
    loss = sorted(e["generated"]["loss"] for e in ends.values())
    assert loss[0] == pytest.approx(0.014728536784648895)
    rai = next(iter(ends.values()))["generated"]["responsible_ai_metadata"]
    assert "flops" in rai
    # the same messages again: the same records
    again = convert_flowcept("sample_data_with_telemetry_and_rai.json")
    assert [b.to_json() for b in again.batches] == [b.to_json() for b in converted.batches]
    assert execution_iri(wf["session"], 1).endswith("00000001")


def test_flowcept_bad_messages_are_said() -> None:
    converted = flowcept.to_batches(
        [
            1,
            {"no": "task"},
            {
                "task_id": "t",
                "used": {},
                "started_at": 1.7e9,
                "status": "FINISHED",
                "generated": {"": 1},
            },
        ]
    )
    assert converted.batches == [] and len(converted.problems) == 3
    assert "not a JSON object" in converted.problems[0]
    assert "without a task_id" in converted.problems[1]
    assert "task t: not imported" in converted.problems[2]
    json.dumps(converted.problems)


def test_flowcept_bad_extended_json_is_said_not_a_crash() -> None:
    # a traceback stopped the whole import (every file) before
    good = {"task_id": "ok", "started_at": 1_700_000_000.0}
    bad = [
        {"task_id": "a", "started_at": {"$date": "garbage"}},
        {"task_id": "b", "n": {"$numberLong": "x"}},
        {"task_id": "c", "x": {"$numberDouble": "one"}},
    ]
    converted = flowcept.to_batches([*bad, good], where="f.json")
    assert converted.tasks == 1 and len(converted.batches) == 1
    assert [p.split(":")[0] for p in converted.problems] == ["f.json[0]", "f.json[1]", "f.json[2]"]
    assert all("not MongoDB extended JSON" in p for p in converted.problems)


def test_flowcept_workflow_message_without_tasks_is_a_run_or_said() -> None:
    wf = {"type": "workflow", "workflow_id": "wf-1", "name": "train-sweep", "user": "ana",
          "utc_timestamp": 1_700_000_000.0}  # fmt: skip
    converted = flowcept.to_batches([wf])
    (rec,) = records(converted.batches)
    assert (rec["kind"], rec["name"], rec["user"]) == ("workflow_start", "train-sweep", "ana")
    untimed = flowcept.to_batches([{"type": "workflow", "workflow_id": "wf-2"}])
    assert untimed.batches == [] and "says not when it ran" in untimed.problems[0]


def test_mlflow_a_wide_schema_is_kept_by_digest() -> None:
    from provml.interop.mlflow.source import DatasetInput

    wide = {"mlflow_colspec": [{"name": f"c{i}", "type": "double"} for i in range(5000)]}
    one = run(datasets=[DatasetInput("wide", "abcd1234", "s3", {"uri": "s3://b/w"}, wide)])
    converted = to_batches(Snapshot(runs=[one]))
    assert converted.runs == 1 and converted.datasets == 1
    (task,) = [r for r in records(converted.batches) if r["kind"] == "task_start"]
    kept = task["used"]["wide"]["schema"]
    assert set(kept) == {"kept_by_digest", "bytes"} and kept["bytes"] > 64 << 10
