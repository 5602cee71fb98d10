"""Capture into disk-only logs, load them through the manager into an in-memory store,
and ask the named questions, as tests/query does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest

import capture_lib as cl
from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from query import questions

pytest.importorskip("sklearn")


class Captured:
    def __init__(self, logs: Path) -> None:
        self.logs = logs

    def records(self) -> list[dict[str, Any]]:
        assert cl.flush()
        out: list[dict[str, Any]] = []
        for f in expand([str(self.logs)]):
            for line in read_lines(f):
                assert line.error is None, line.error
                out.extend(parse_batch(line.body).records)
        return out

    def tasks(self, stage: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["kind"] == "task_start"
                and (stage is None or r.get("stage") == stage)]  # fmt: skip

    def store(self) -> OxigraphStore:
        assert cl.flush()
        store = OxigraphStore(None)
        manager = Manager(store)
        for f in expand([str(self.logs)]):
            for line in read_lines(f):
                manager.apply(resolve_batch(parse_batch(line.body)))
        return store


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict[str, str]]:
    result = store.query(questions.get(name).text(params))
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = result.variables
    return [{v.value: row[v].value for v in names if row[v] is not None} for row in result]


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[Captured]:
    """Disk capture with autolog on; everything undone afterwards."""
    logs = tmp_path / "logs"
    cl.init(mode="disk", path=str(logs), flush_interval=0.05)
    assert cl.autolog()["sklearn"] == "enabled"
    try:
        yield Captured(logs)
    finally:
        cl.autolog(disable=True)
        cl.shutdown(timeout=5)
