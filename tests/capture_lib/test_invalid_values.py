"""Values a workflow passes that cannot be recorded: the caller's mistake, said once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import capture_lib as cl
from tests.capture_lib.test_capture import read_records


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def test_a_metric_that_is_not_a_number_is_one_warning_and_its_own_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with caplog.at_level(logging.DEBUG, logger="capture_lib"):
        with cl.workflow("w") as wf, wf.task("t") as t:
            t.metric("loss", "abc")  # type: ignore[arg-type]
            t.metric("loss", None)  # type: ignore[arg-type]
            t.metric("acc", [0.5])  # type: ignore[arg-type]
            t.metric("loss", 0.5, step="first")  # type: ignore[arg-type]
            t.metric("loss", 0.25, step=1.5)  # type: ignore[arg-type]
            # numbers of other numeric types are numbers
            t.metric("dec", Decimal("0.125"), step=2.0)  # type: ignore[arg-type]
            t.metric("flag", True)
        assert cl.flush()
    assert cl.stats()["lost"] == {"invalid_value": 5}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "'abc'" in warnings[0].getMessage() and "invalid_value" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records), "no traceback for a caller's mistake"
    metrics = [(r["name"], r["value"], r.get("step")) for r in read_records(tmp_path / "logs")
               if r["kind"] == "metric"]  # fmt: skip
    assert metrics == [("dec", 0.125, 2), ("flag", 1.0, None)]


def test_integers_past_64_bits_never_lose_the_batch(tmp_path: Path) -> None:
    """JSON numbers here are 64-bit: a metric past that is the float it is (or, past any
    float, an invalid value); a parameter or output past it is its decimal digits; the
    rest of the batch lands either way."""
    big = 10**30
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    params = {"seed": big, "nested": {"ids": [1, -(2**70)]}}
    with cl.workflow("w", params=params) as wf, wf.task("t") as t:
        t.metric("huge", big)
        t.metric("beyond", 10**400)  # no float holds it
        t.metric("loss", 0.5, step=2**64)  # no step either
        t.metric("ok", 2**63 - 1, step=3)
        t.generated(count=big)
    assert cl.flush()
    assert cl.stats()["lost"] == {"invalid_value": 2}
    records = read_records(tmp_path / "logs")
    (start,) = [r for r in records if r["kind"] == "workflow_start"]
    assert start["params"] == {"seed": str(big), "nested": {"ids": [1, str(-(2**70))]}}
    metrics = {r["name"]: r["value"] for r in records if r["kind"] == "metric"}
    assert metrics == {"huge": 1e30, "ok": 2**63 - 1}
    (end,) = [r for r in records if r["kind"] == "task_end"]
    assert end["generated"] == {"count": str(big)}


def test_a_capture_call_that_fails_inside_makes_flush_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record capture_lib failed to make is lost: counted, and flush() says so (an
    unreadable file, delivered as missing data, does not)."""
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w") as wf, wf.task("t", used={"raw": cl.file(tmp_path / "none.csv")}) as t:
        assert cl.flush()  # the missing file is recorded: nothing was lost on the way
        monkeypatch.setattr("capture_lib.api._now", lambda: 1 / 0)
        t.metric("loss", 0.5)  # never raises into the workflow
        monkeypatch.undo()
    assert not cl.flush()
    assert cl.stats()["lost"] == {"unreadable_input": 1, "internal_error": 1}
    assert cl.flush()  # a new period
