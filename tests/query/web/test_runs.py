"""/api/v1/runs and /api/v1/runs/<id> over workflows captured with capture_lib
(tests/query/web/world.py) and the sklearn demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from query.app import create_app
from tests.query.web import world as worlds
from tests.query.web.world import World


def _runs(client: FlaskClient, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/runs", query_string=params)
    assert r.status_code == 200, r.json
    body: dict[str, Any] = r.json
    return body


def _labels(world: World, body: dict[str, Any]) -> set[str]:
    by_iri = {iri: label for label, iri in world.runs.items()}
    return {by_iri[r["run"]] for r in body["runs"]}


def test_lists_every_run_newest_first_with_what_the_page_shows(
    client: FlaskClient, world: World
) -> None:
    body = _runs(client)
    assert body["total"] == 6 and body["more"] is False and body["offset"] == 0
    assert _labels(world, body) == set(world.runs)
    started = [r["started"] for r in body["runs"]]
    assert started == sorted(started, reverse=True)
    hpc = next(r for r in body["runs"] if r["run"] == world.runs["hpc"])
    assert hpc["job"] == "4711" and hpc["user"] == "dave" and hpc["workflow"] == "hpc"
    assert hpc["id"] == world.runs["hpc"].rsplit("/", 1)[1]
    assert hpc["duration"] >= 0 and hpc["status"] == "finished" and hpc["host"]
    # the job's own run (every rank is part of it) is not a row: its ranks are
    assert all("/id/exec/" in r["run"] for r in body["runs"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"workflow": "pipeline"}, {"alice-1", "alice-2", "bob"}),
        ({"workflow": "pipe"}, set()),  # exact, not a substring
        ({"q": "PIPE"}, {"alice-1", "alice-2", "bob"}),
        ({"q": "isl"}, {"island"}),
        ({"user": "bob"}, {"bob"}),
        ({"user": "alice"}, {"alice-1", "alice-2", "serve"}),
        ({"status": "failed"}, {"alice-2"}),
        ({"status": "finished"}, {"alice-1", "bob", "serve", "island", "hpc"}),
        ({"status": "running"}, set()),
        ({"param": "lr:0.01..0.1"}, {"alice-1", "bob"}),
        ({"param": "lr:0.02.."}, {"alice-1", "alice-2"}),
        ({"param": "lr:..0.01"}, {"bob"}),
        ({"param": "steps:10..10"}, {"hpc"}),  # a task's parameter
        ({"param": "ranks:2..2"}, {"hpc"}),  # the workflow's own
        ({"metric": "accuracy:0.84.."}, {"alice-2"}),  # the evaluation's 0.85
        ({"metric": "loss:..0.4"}, {"alice-1", "bob"}),  # the last epoch's loss
        ({"metric": "loss:5.."}, set()),
    ],
)
def test_each_filter_includes_and_excludes(
    client: FlaskClient, world: World, params: dict[str, str], expected: set[str]
) -> None:
    body = _runs(client, **params)
    assert _labels(world, body) == expected
    assert body["total"] == len(expected)


def test_two_ranges_must_both_hold(client: FlaskClient, world: World) -> None:
    r = client.get("/api/v1/runs?param=lr:0.01..0.1&metric=loss:..0.4&user=bob")
    assert _labels(world, r.json) == {"bob"}


def test_used_takes_a_hash_prefix_or_the_iri(client: FlaskClient, world: World) -> None:
    everyone = {"alice-1", "alice-2", "bob"}
    assert _labels(world, _runs(client, used=world.sha["raw"][:10])) == everyone
    assert _labels(world, _runs(client, used=world.iri("raw"))) == everyone
    assert _labels(world, _runs(client, used=world.sha["alice-1-model"])) == {"alice-1", "serve"}
    assert _labels(world, _runs(client, used=world.sha["own"])) == {"island"}


def test_time_window(client: FlaskClient, world: World) -> None:
    rows = _runs(client, sort="-started")["runs"]  # oldest first
    middle = rows[3]["started"]
    later = _runs(client, since=middle)
    assert _labels(world, later) == _labels(world, {"runs": rows[3:]})
    earlier = _runs(client, until=middle)
    assert _labels(world, earlier) == _labels(world, {"runs": rows[:3]})
    assert _runs(client, since="2999-01-01T00:00:00")["total"] == 0


def test_pages_lose_nothing_and_repeat_nothing(client: FlaskClient) -> None:
    for sort in ("started", "-started", "duration", "-duration", "workflow", "user", "status"):
        seen: list[str] = []
        offset, more = 0, True
        while more:
            body = _runs(client, limit=4, offset=offset, sort=sort)
            seen += [r["run"] for r in body["runs"]]
            more, offset = body["more"], offset + 4
            assert body["total"] == 6
        assert len(seen) == len(set(seen)) == 6, sort
    assert _runs(client, limit=6)["more"] is False
    assert _runs(client, limit=5)["more"] is True
    assert _runs(client, offset=6)["runs"] == []


def test_sorts(client: FlaskClient) -> None:
    by_workflow = [r["workflow"] for r in _runs(client, sort="workflow")["runs"]]
    assert by_workflow == sorted(by_workflow)
    assert [r["workflow"] for r in _runs(client, sort="-workflow")["runs"]] == sorted(
        by_workflow, reverse=True
    )
    durations = [r["duration"] for r in _runs(client, sort="duration")["runs"]]
    assert durations == sorted(durations, reverse=True)
    durations = [r["duration"] for r in _runs(client, sort="-duration")["runs"]]
    assert durations == sorted(durations)


@pytest.mark.parametrize(
    "query",
    [
        "nope=1",
        "limit=1001",
        "limit=0",
        "limit=x",
        "offset=-1",
        "sort=size",
        "sort=--started",
        "since=yesterday",
        "until=2024-13-01",
        "param=lr",
        "param=lr:0.1",
        "param=lr:a..b",
        "param=:0..1",
        "param=lr:..",
        "param=lr:2..1",
        "metric=acc:nan..",
        "status=a&status=b",
        "used=zzzz",
    ],
)
def test_bad_parameters_are_400_json(client: FlaskClient, query: str) -> None:
    r = client.get("/api/v1/runs?" + query)
    assert r.status_code == 400, (query, r.json)
    assert r.json["error"] and r.json["message"]


def test_a_run_page(client: FlaskClient, world: World) -> None:
    ref = world.runs["alice-2"].rsplit("/", 1)[1]
    body = client.get(f"/api/v1/runs/{ref}").json
    run = body["run"]
    assert run["run"] == world.runs["alice-2"] and run["status"] == "failed"
    assert "RuntimeError: the test split is empty" in run["error"]
    assert body["parameters"] == {"team": "alice-2"}
    tasks = {t["name"]: t for t in body["tasks"]}
    assert [t["name"] for t in body["tasks"]] == ["clean", "train", "evaluate"]
    assert tasks["train"]["parameters"] == {"lr": 0.5} and tasks["train"]["stage"] == "training"
    assert tasks["evaluate"]["status"] == "failed"
    assert tasks["evaluate"]["error"] == "RuntimeError: the test split is empty"
    assert tasks["clean"]["status"] == "finished" and tasks["clean"]["error"] is None
    assert all(t["duration"] is not None and t["duration"] >= 0 for t in body["tasks"])
    assert [(d["role"], d["sha256"]) for d in tasks["clean"]["used"]] == [("raw", world.sha["raw"])]
    made = tasks["train"]["generated"]
    assert [(d["role"], d["kind"], d["sha256"]) for d in made] == [
        ("model", "model", world.sha["alice-2-model"])
    ]
    assert made[0]["path"].endswith("alice-2/model.pkl")
    # the DAG: clean → train (by the cleaned data) → evaluate (by the model)
    ids = {t["execution"]: t["name"] for t in body["tasks"]}
    assert sorted((ids[e["from"]], ids[e["to"]], e["data"]) for e in body["edges"]) == [
        ("clean", "train", world.iri("alice-2-clean")),
        ("train", "evaluate", world.iri("alice-2-model")),
    ]
    # metrics per epoch: three of each on train's sections, and the evaluation's
    per_epoch = sorted((m["name"], m["step"]) for m in body["metrics"] if m.get("section"))
    assert per_epoch == [(n, s) for n in ("accuracy", "loss") for s in (0, 1, 2)]
    assert all(ids[m["task"]] == "train" for m in body["metrics"] if m.get("section"))
    (evaluation,) = [m for m in body["metrics"] if not m.get("section")]
    assert ids[evaluation["task"]] == "evaluate" and evaluation["value"] == pytest.approx(0.85)


def test_a_run_by_prefix_or_iri_and_its_environment(client: FlaskClient, world: World) -> None:
    iri = world.runs["hpc"]
    uuid = iri.rsplit("/", 1)[1]
    for ref in (uuid, uuid[:20], iri):
        body = client.get(f"/api/v1/runs/{ref}").json
        assert body["run"]["run"] == iri, ref
    env = body["run"]["environment"]
    assert env["job"]["id"] == "4711" and env["job"]["system"] == "slurm"
    assert env["job"]["cluster"] == "hal" and env["job"]["nodes"] == "n[1-2]"
    assert env["mpi"] == {"rank": 0, "size": 2}
    assert "pyoxigraph" in env["packages"] and env["host"] and env["python"]
    assert isinstance(env["pid"], int)
    if "gitCommit" in env:  # run from a git checkout
        assert len(env["gitCommit"]) == 40 and isinstance(env["gitDirty"], bool)
    assert body["parameters"] == {"ranks": 2}
    assert [t["parameters"] for t in body["tasks"]] == [{"steps": 10}]


def test_a_run_that_is_not_there(client: FlaskClient, world: World) -> None:
    assert client.get("/api/v1/runs/0000dead").status_code == 404
    r = client.get("/api/v1/runs/https://example.org/not-a-run")
    assert r.status_code == 404 and r.json["error"]
    # data is not a run
    assert client.get(f"/api/v1/runs/{world.iri('raw')}").status_code == 404
    assert client.get("/api/v1/runs/no%20such").status_code == 400
    # several runs of one session share a prefix: refused, with the candidates
    prefix = world.runs["alice-1"].rsplit("/", 1)[1][:24]
    r = client.get(f"/api/v1/runs/{prefix}")
    assert r.status_code == 400 and "ambiguous" in r.json["message"]


def test_the_demo(tmp_path: Path) -> None:
    from manager.store.oxigraph import OxigraphStore

    store = OxigraphStore(None)
    demo = worlds.demo(tmp_path, store)
    client = create_app({"store": store}).test_client()
    (row,) = _runs(client)["runs"]
    assert row["workflow"] == "breast-cancer-classifier" and row["user"] == "demo"
    body = client.get(f"/api/v1/runs/{row['id']}").json
    names = [t["name"] for t in body["tasks"]]
    assert names == ["curate", "split", "train", "evaluate", "predict", "predict", "predict"]
    ids = {t["execution"]: t["name"] for t in body["tasks"]}
    dag = {(ids[e["from"]], ids[e["to"]]) for e in body["edges"]}
    assert {("curate", "split"), ("split", "train"), ("train", "evaluate")} <= dag
    assert ("train", "predict") in dag
    train = next(t for t in body["tasks"] if t["name"] == "train")
    assert train["parameters"]["epochs"] == 4
    assert [d["sha256"] for d in train["generated"]] == [demo.model_sha256]
    losses = [m for m in body["metrics"] if m["name"] == "loss" and m.get("section")]
    assert sorted(m["step"] for m in losses) == [0, 1, 2, 3]
    predict = [t for t in body["tasks"] if t["name"] == "predict"]
    assert len(predict) == 3
    assert all(t["generated"][0]["kind"] == "prediction" for t in predict)
    assert all(sorted(d["kind"] for d in t["used"]) == ["model", "value"] for t in predict)
    hyper = _runs(client, param="epochs:4..4")
    assert hyper["total"] == 1 and _runs(client, param="epochs:5..")["total"] == 0


def test_a_run_with_many_tasks_lists_the_first(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from query.web import runs as runs_view

    monkeypatch.setattr(runs_view, "MAX_TASKS", 2)
    body = client.get("/api/v1/runs/" + world.runs["alice-2"]).json
    assert [t["name"] for t in body["tasks"]] == ["clean", "train"] and body["moreTasks"] is True
    assert len(body["edges"]) == 1  # clean → train: the listed tasks' DAG
    monkeypatch.setattr(runs_view, "MAX_TASKS", 3)
    assert client.get("/api/v1/runs/" + world.runs["alice-2"]).json["moreTasks"] is False
