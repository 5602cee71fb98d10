"""Errors capture_lib catches so that they never reach the workflow are logged and
counted in ``cl.stats()["lost"]``; a Client made directly starts afresh after ``fork``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib import runtime
from capture_lib.api import Task, Workflow
from capture_lib.client import Client
from tests.capture_lib.test_capture import read_records


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("broken inside capture_lib")


def lost() -> dict[str, int]:
    return dict(cl.stats()["lost"])


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@cl.task(generated="doubled")
def double(x: int) -> int:
    return 2 * x


def test_a_task_the_decorator_cannot_make_is_counted_and_the_call_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w"):
        assert cl.flush()
        monkeypatch.setattr(Workflow, "task", boom)
        with caplog.at_level(logging.ERROR, logger="capture_lib"):
            assert double(4) == 8
            assert double(5) == 10
        monkeypatch.undo()
    assert lost() == {"internal_error": 2}
    assert not cl.flush()  # the tasks' records were lost
    assert len(logged_errors(caplog)) == 2 and "@task double" in logged_errors(caplog)[0]
    assert not [r for r in read_records(tmp_path / "logs") if r["kind"] == "task_start"]


def test_a_wrong_call_of_a_decorated_function_raises_as_it_would(tmp_path: Path) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w"), pytest.raises(TypeError):
        double(1, 2)
    assert lost() == {}  # the caller's mistake, not capture_lib's


def test_a_result_the_decorator_cannot_record_is_counted_and_the_task_still_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    monkeypatch.setattr(Task, "generated", boom)
    with caplog.at_level(logging.ERROR, logger="capture_lib"), cl.workflow("w"):
        assert double(4) == 8
    monkeypatch.undo()
    assert lost() == {"internal_error": 1}
    assert cl.flush()  # the task itself was recorded, without its result
    (end,) = [r for r in read_records(tmp_path / "logs") if r["kind"] == "task_end"]
    assert "generated" not in end or not end["generated"]
    assert any("recording its result" in m for m in logged_errors(caplog))


def test_an_inference_that_cannot_be_captured_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("serve"):
        monkeypatch.setattr(Workflow, "task", boom)
        assert cl.inference(model=cl.digest("m"), inputs=[1], outputs=2) is None
        monkeypatch.undo()
        assert cl.inference(model=cl.digest("m"), inputs=[1], outputs=2) is not None
    assert lost() == {"internal_error": 1}


def test_a_flush_that_fails_inside_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cl.init(mode="disk", path=str(tmp_path / "logs"))
    monkeypatch.setattr(client.worker, "flush", boom)
    assert cl.flush() is False
    monkeypatch.undo()
    assert lost() == {"internal_error": 1}


def test_capture_that_cannot_start_from_the_environment_is_off_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cl.shutdown()
    monkeypatch.setenv("PROVML_MODE", "sideways")
    with caplog.at_level(logging.ERROR, logger="capture_lib"):
        stats = cl.stats()
    assert stats["mode"] == "off" and stats["lost"] == {runtime.INIT_ERROR: 1}
    assert "PROVML_MODE" in " ".join(logged_errors(caplog))


def test_a_close_that_fails_at_exit_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cl.init(mode="disk", path=str(tmp_path / "logs"))
    monkeypatch.setattr(client.worker, "close", boom)
    runtime._at_exit()  # never raises
    monkeypatch.undo()
    assert client.stats()["lost"] == {"internal_error": 1}


# --- fork ---------------------------------------------------------------------------------


def sessions_on_disk(path: Path) -> dict[str, str]:
    """Workflow name → the session its start was recorded in."""
    from provml.core.wire import parse_batch
    from provml.offline import expand, read_lines

    found = {}
    for f in expand([str(path)]):
        for line in read_lines(f):
            batch = parse_batch(line.body)
            for r in batch.records:
                if r["kind"] == "workflow_start":
                    found[r["name"]] = batch.session
    return found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_client_made_directly_captures_in_a_forked_child(tmp_path: Path) -> None:
    client = Client(mode="disk", path=str(tmp_path / "logs"), flush_interval=0.05)
    try:
        with Workflow(client, "parent"):
            pass
        assert client.flush()  # the parent's worker thread is running
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                with Workflow(client, "child") as wf:
                    wf.metric("m", 1.0)
                code = 0 if client.flush(10) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # the child's flush said True
        with Workflow(client, "parent again"):
            pass
        assert client.flush()
    finally:
        client.close()
    sessions = sessions_on_disk(tmp_path / "logs")
    assert set(sessions) == {"parent", "child", "parent again"}
    assert sessions["child"] != sessions["parent"] == sessions["parent again"]
    metrics = [r for r in read_records(tmp_path / "logs") if r["kind"] == "metric"]
    assert len(metrics) == 1


def test_the_worker_starts_afresh_when_it_finds_another_pid(tmp_path: Path) -> None:
    """What the worker does in a forked child that no at-fork hook reached: the pid it
    started in is not this one (simulated: the hook is what a real fork runs)."""
    client = Client(mode="disk", path=str(tmp_path / "logs"))
    try:
        with Workflow(client, "before"):
            pass
        assert client.flush()
        session = client.session
        client.worker.pid = -1  # as if this were a child of the process that started it
        with Workflow(client, "after"):
            pass
        assert client.flush()  # a fresh worker delivers what was queued since
        assert client.session != session and client.worker.pid == os.getpid()
    finally:
        client.close()
    assert set(sessions_on_disk(tmp_path / "logs")) == {"before", "after"}
