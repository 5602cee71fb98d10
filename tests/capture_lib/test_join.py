"""cl.join: the tasks of one process added to a workflow run another process started (the
steps of a batch script, ``provml run``); Task.end(resources=…): a child's usage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import capture_lib as cl
from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.ids import execution_iri, parse_execution_iri
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.offline import expand, read_lines


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def batches(path: Path) -> list[dict[str, object]]:
    import orjson

    return [orjson.loads(line.body) for f in expand([str(path)]) for line in read_lines(f)]


def test_an_execution_iri_reads_back() -> None:
    session = "0190a4e2-7b1c-7d2e-8f00-012300000000"
    for n in (1, 7, 2**32 - 1):
        iri = execution_iri(session, n)
        assert parse_execution_iri(iri) == (session, n)
        assert parse_execution_iri(iri.replace("https://provml.dev/id/", "id:")) == (session, n)
        assert parse_execution_iri(iri.rsplit("/", 1)[1].upper()) == (session, n)
    not_v7 = "0190a4e2-7b1c-4d2e-8f00-012300000001"
    for bad in ("", "exec/1", session, not_v7, execution_iri(session, 1) + "/x"):
        with pytest.raises(ValueError, match="not the IRI of an execution"):
            parse_execution_iri(bad)


def test_tasks_of_two_processes_join_one_run(tmp_path: Path) -> None:
    # the first "process" starts the run; the second joins it, adds a task, ends the run
    first = cl.init(mode="disk", path=str(tmp_path / "one"))
    wf = cl.workflow("pipeline").start()
    parent = wf.iri
    with wf.task("clean") as t:
        t.generated(rows=3)
    cl.shutdown()
    second = cl.init(mode="disk", path=str(tmp_path / "two"))
    assert second.session != first.session
    run = cl.join(parent, "pipeline")
    with run, run.task("train", params={"lr": 0.1}) as t:
        assert cl.current_workflow() is run
        t.generated(loss=0.5)
    task = t
    with run.task("measured") as m:
        pass
    m2 = run.task("child")
    m2.start()
    m2.end("failed", "exit status 3", resources={"cpu_seconds": 1.5, "max_rss_kib": 2048})
    run.close("finished")
    assert cl.flush()
    [joined] = batches(tmp_path / "two")
    records = joined["records"]
    kinds = [r[0] for r in records]
    assert "workflow_start" not in kinds and kinds.count("workflow_end") == 1
    starts = [r for r in records if r[0] == "task_start"]
    # (kind, n, session, parent, parent_session, plan, …): the parent is the first session's
    assert {(r[3], r[4], tuple(r[5])) for r in starts} == {
        (wf.n, first.session, ("pipeline", "train")),
        (wf.n, first.session, ("pipeline", "measured")),
        (wf.n, first.session, ("pipeline", "child")),
    }
    [end] = [r for r in records if r[0] == "task_end" and r[3] == ["pipeline", "child"]]
    assert end[6:8] == ["failed", "exit status 3"]
    assert end[9] == {"cpu_seconds": 1.5, "max_rss_kib": 2048}
    [wf_end] = [r for r in records if r[0] == "workflow_end"]
    assert wf_end[1:3] == [wf.n, first.session]
    # the tracker's checks and the mapping take it: one run, three tasks of it
    store = OxigraphStore(None)
    manager = Manager(store)
    for path in ("one", "two"):
        for batch in batches(tmp_path / path):
            manager.apply(resolve_batch(validate_batch(batch)))
    rows = store.query(
        "PREFIX provml: <https://provml.dev/ns#> PREFIX prov: <http://www.w3.org/ns/prov#> "
        f"SELECT ?name WHERE {{ ?t provml:partOf <{parent}> ; provml:name ?name . "
        f"<{parent}> prov:endedAtTime ?end }} ORDER BY ?name"
    )
    assert [str(r[0].value) for r in rows] == ["child", "clean", "measured", "train"]
    assert task.iri != m.iri and validate_batch(joined).session == second.session


def test_a_bad_parent_is_a_value_error() -> None:
    cl.init(mode="off")
    with pytest.raises(ValueError):
        cl.join("https://provml.dev/id/data/sha256/" + "a" * 64, "w")
