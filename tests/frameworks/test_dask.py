"""Dask with capture_lib's scheduler plugin: every task that ran is a task of the
workflow, and the graph's edges are exactly the data that passed between tasks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib.integrations import dask as cd
from tests.frameworks.conftest import Captured, ask, framework

dask = framework("dask")
distributed = framework("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as c:
        yield c


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as c:
        yield c


def inc(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return 2 * x


def add(a: int, b: int) -> int:
    return a + b


def boom(x: int) -> int:
    raise ValueError(f"cannot connect: password=hunter2 (x={x})")


def fit(rows: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    x = [[i % 7, i % 3] for i in range(rows)]
    y = [i % 2 for i in range(rows)]
    return LogisticRegression(max_iter=50).fit(x, y)


def refit(model: Any, rows: int) -> Any:
    from sklearn.base import clone

    x = [[i % 5, i % 3] for i in range(rows)]
    y = [i % 2 for i in range(rows)]
    return clone(model).set_params(C=0.5).fit(x, y)


def _named(store: Any, rows: list[dict[str, str]]) -> set[str]:
    return {r["entity"] for r in rows}


def _node(wf: Any, key: Any) -> str:
    return "https://provml.dev/id/data/sha256/" + cd.output_reference(wf.iri, key)["sha256"]


def test_two_independent_branches_are_never_connected(captured: Captured, client: Any) -> None:
    delayed = dask.delayed
    with cl.workflow("branches") as wf:
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        a1 = delayed(inc)(1, dask_key_name="a1")
        a2 = delayed(double)(a1, dask_key_name="a2")
        b1 = delayed(inc)(10, dask_key_name="b1")
        b2 = delayed(double)(b1, dask_key_name="b2")
        assert dask.compute(a2, b2) == (4, 22)
        total = delayed(add)(a2, b2, dask_key_name="total")
        assert total.compute() == 26
    store = captured.store()
    down_a1 = _named(store, ask(store, "downstream", source=_node(wf, "a1")))
    assert down_a1 == {_node(wf, "a2"), _node(wf, "total")}
    down_b1 = _named(store, ask(store, "downstream", source=_node(wf, "b1")))
    assert down_b1 == {_node(wf, "b2"), _node(wf, "total")}
    assert _named(store, ask(store, "downstream", source=_node(wf, "a2"))) == {_node(wf, "total")}
    assert ask(store, "downstream", source=_node(wf, "total")) == []

    tasks = captured.tasks()
    by_key = {t["params"]["key"]: t for t in tasks}
    assert {k: (t["plan"][-1], t["params"]["function"]) for k, t in by_key.items()} == {
        "a1": ("a1", "inc"),
        "a2": ("a2", "double"),
        "b1": ("b1", "inc"),
        "b2": ("b2", "double"),
        "total": ("total", "add"),
    }  # the plan is the key's prefix (here the whole key), the function a parameter
    assert by_key["total"]["used"] == {
        "a2": cd.output_reference(wf.iri, "a2"), "b2": cd.output_reference(wf.iri, "b2"),
    }  # fmt: skip
    assert "used" not in by_key["a1"] or not by_key["a1"]["used"]
    assert all(t["parent"] == wf.n and t["params"]["worker"].startswith("inproc://")
               for t in tasks)  # fmt: skip
    ends = {r["n"]: r for r in captured.records() if r["kind"] == "task_end"}
    for t in tasks:  # the worker's compute times, in order
        assert t["time"] <= ends[t["n"]]["time"]


def test_a_model_made_by_a_task_answers_was_used_and_derived_from(
    captured: Captured, client: Any
) -> None:
    delayed = dask.delayed
    with cl.workflow("models") as wf:
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        rows = delayed(inc)(59, dask_key_name="rows")
        base = delayed(fit)(rows, dask_key_name="base")
        tuned = delayed(refit)(base, rows, dask_key_name="tuned")
        other = delayed(double)(3, dask_key_name="other")  # no data to or from the models
        model, _ = dask.compute(tuned, other)
    assert model.C == 0.5
    store = captured.store()
    used = ask(store, "was-used", source=_node(wf, "rows"))
    assert {r["model"] for r in used} == {_node(wf, "base"), _node(wf, "tuned")}
    assert ask(store, "was-used", source=_node(wf, "other")) == []
    (derived,) = ask(store, "derived-from", model=_node(wf, "tuned"))
    assert derived["base"] == _node(wf, "base") and derived["role"] == "base"
    kinds = {r["entity"]: r["kind"] for r in ask(store, "downstream", source=_node(wf, "rows"))}
    assert kinds == {_node(wf, "base"): "model", _node(wf, "tuned"): "model"}


def test_array_and_dataframe_reductions_derive_from_every_chunk(
    captured: Captured, client: Any
) -> None:
    import numpy as np
    import pandas as pd
    from dask import array as da
    from dask import dataframe as dd

    with cl.workflow("reductions") as wf:
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        x = (da.from_array(np.arange(40.0), chunks=10) * 2).sum()
        assert float(x.compute()) == float((np.arange(40.0) * 2).sum())
        array_tasks = captured.tasks()
        frame = pd.DataFrame({"a": range(100), "b": range(100, 200)})
        y = dd.from_pandas(frame, npartitions=4).a.sum()
        assert int(y.compute()) == int(frame.a.sum())
    store = captured.store()
    frame_tasks = captured.tasks()[len(array_tasks) :]
    for tasks in (array_tasks, frame_tasks):
        ends = [t for t in tasks if not any(  # the tasks whose output no task used
            cd.output_reference(wf.iri, t["params"]["key"]) in (u.get("used") or {}).values()
            for u in tasks)]  # fmt: skip
        chunks = [t for t in tasks if not t.get("used")]  # the leaves: the chunks
        assert len(ends) == 1 and len(chunks) == 4, [t["params"]["key"] for t in tasks]
        for chunk in chunks:
            rows = ask(store, "downstream", source=_node(wf, chunk["params"]["key"]))
            assert _node(wf, ends[0]["params"]["key"]) in _named(store, rows)


def test_an_erred_task_is_failed_with_its_error_redacted(captured: Captured, client: Any) -> None:
    delayed = dask.delayed
    with cl.workflow("erred"):
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        after = delayed(inc)(delayed(boom)(1, dask_key_name="boom"), dask_key_name="after")
        with pytest.raises(ValueError, match="hunter2"):  # Dask's own error, unchanged
            after.compute()
    ends = {r["n"]: r for r in captured.records() if r["kind"] == "task_end"}
    (task,) = captured.tasks()  # "after" never ran: not a task
    end = ends[task["n"]]
    assert task["params"]["key"] == "boom" and end["status"] == "failed"
    assert "password=***" in end["error"] and "hunter2" not in end["error"]
    assert not end.get("generated")


def test_results_are_identical_and_a_capture_failure_never_reaches_dask(
    captured: Captured, client: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from dask import array as da

    def graph() -> Any:
        x = da.random.RandomState(0).random_sample((30, 30), chunks=10)
        return (x @ x.T).mean(axis=0).compute()

    without = graph()
    with cl.workflow("broken"):
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        with_plugin = graph()

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("capture is broken")

        monkeypatch.setattr(cd, "output_reference", broken)
        with caplog.at_level(logging.WARNING, logger=cd.__name__):
            broken_capture = graph()
    assert (with_plugin == without).all() and (broken_capture == without).all()
    lost = cl.stats()["lost"]
    assert lost["integration_error"] >= 9  # one per task, counted
    assert sum("recording a task failed" in r.getMessage() for r in caplog.records) == 1


def test_past_max_tasks_the_tasks_are_counted_and_reported(
    captured: Captured, cluster: Any
) -> None:
    delayed = dask.delayed
    with cl.workflow("capped"), distributed.Client(cluster) as client:
        client.register_plugin(cd.ProvmlSchedulerPlugin(max_tasks=3))
        values = [delayed(inc)(i, dask_key_name=f"inc-{i}") for i in range(4)]
        values += [delayed(double)(i, dask_key_name=f"double-{i}") for i in range(2)]
        assert sum(dask.compute(*values)) == 12
        counts = client.run_on_scheduler(cd._report_on_scheduler)
    assert sum(counts.values()) == 3
    assert len(captured.tasks()) == 3
    assert cl.stats()["lost"]["dask_task_cap"] == 3
    metrics = {r["name"]: r["value"] for r in captured.records() if r["kind"] == "metric"}
    assert metrics["dask_tasks_not_captured"] == 3
    assert sum(v for k, v in metrics.items() if k.startswith("dask_tasks_not_captured:")) == 3


def test_autolog_registers_on_every_client_and_disable_removes_it(
    captured: Captured, cluster: Any
) -> None:
    def registered(dask_scheduler: Any) -> bool:
        return cd.PLUGIN_NAME in dask_scheduler.plugins

    original = distributed.Client.__init__
    with cl.workflow("autolog"):
        assert cl.autolog()["dask"] == "enabled"
        assert cl.autolog()["dask"] == "enabled" and distributed.Client.__init__ is not original
        with distributed.Client(cluster) as client:
            assert client.run_on_scheduler(registered)
            assert dask.delayed(inc)(1, dask_key_name="one").compute() == 2
            assert cl.autolog(disable=True)["dask"] == "disabled"
            assert distributed.Client.__init__ is original
            assert not client.run_on_scheduler(registered)
            assert dask.delayed(inc)(2, dask_key_name="two").compute() == 3
    assert [t["params"]["key"] for t in captured.tasks()] == ["one"]


def test_a_scheduler_without_capture_starts_it_from_the_plugins_settings(tmp_path: Path) -> None:
    import pickle

    cl.init(mode="disk", path=str(tmp_path / "client"))
    try:
        with cl.workflow("elsewhere") as wf:
            plugin = cd.ProvmlSchedulerPlugin(path=str(tmp_path / "scheduler"))
        cl.shutdown()  # the scheduler's process: no capture running
        remote = pickle.loads(pickle.dumps(plugin))
        remote.capture.task("k", "inc", [("j", "load")], worker="tcp://w:1", start=1.0, stop=2.0)
        client = cl.runtime.current_client()
        assert client is not None and client.mode == "disk"
        assert client.path == str(tmp_path / "scheduler")
        assert cl.flush()
        assert list((tmp_path / "scheduler").glob("*.jsonl"))
        assert remote.capture._workflow.iri == wf.iri
    finally:
        cl.shutdown()


def test_two_worker_processes(captured: Captured) -> None:
    delayed = dask.delayed
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        cl.workflow("processes") as wf,
    ):
        client.register_plugin(cd.ProvmlSchedulerPlugin())
        left = [delayed(inc)(i, dask_key_name=f"left-{i}") for i in range(4)]
        right = [delayed(double)(i, dask_key_name=f"right-{i}") for i in range(4)]
        sums = (
            delayed(sum)(left, dask_key_name="left-sum"),
            delayed(sum)(right, dask_key_name="right-sum"),
        )
        assert dask.compute(*sums) == (10, 12)
    store = captured.store()
    tasks = captured.tasks()
    assert len(tasks) == 10 and all(t["params"]["worker"].startswith("tcp://") for t in tasks)
    down = _named(store, ask(store, "downstream", source=_node(wf, "left-0")))
    assert down == {_node(wf, "left-sum")}
