"""Batches a real tracker refuses are counted as refused, never as sent, and make
``flush()`` say False; a wrong tracker URL is an error at ``cl.init``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import capture_lib as cl
from tests.capture_lib.test_transport import spooled
from tests.conftest import Server

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def capture_runs(runs: int) -> None:
    """``runs`` workflows of two records each, flushed one by one: one batch each."""
    for i in range(runs):
        with cl.workflow(f"run-{i}"):
            pass
        cl.flush(10)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_url_with_a_wrong_path_is_refused_and_said_once(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cl.init(url=server.url + "/provml", mode="http", path=str(tmp_path / "spool"))
    with caplog.at_level(logging.WARNING, logger="capture_lib"):
        capture_runs(3)
        with cl.workflow("last"):
            pass
        assert not cl.flush(10)
    stats = cl.stats()
    assert stats["records_sent"] == 0 and stats["batches_sent"] == 0
    assert stats["refused"] == {"http_404": 8} and stats["refused_batches"] == {"http_404": 4}
    assert spooled(tmp_path / "spool" / "rejected") == 8  # kept, for provml ingest
    said = warnings_of(caplog)
    assert len(said) == 1 and "404" in said[0] and "base URL" in said[0], said
    # and nothing reached the graph
    assert server.sparql("SELECT ?w WHERE { ?w a provml:WorkflowExecution }") == []


def test_refusals_are_counted_by_reason_next_to_what_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PROVML_MAX_REQUEST_BYTES", str(64 * 1024))
    srv = Server(tmp_path / "data")  # inherits the small request limit
    try:
        cl.init(url=srv.url, mode="http", path=str(tmp_path / "spool"))
        with caplog.at_level(logging.WARNING, logger="capture_lib"):
            with cl.workflow("fine"):
                pass
            assert cl.flush(10)  # delivered: True
            with cl.workflow("big", params={"notes": "x" * 100_000}):
                pass
            assert not cl.flush(10)  # 413
            with cl.workflow("bad", params={"n" * 300: 1}):  # a name over 256 characters
                pass
            assert not cl.flush(10)  # 400
            with cl.workflow("fine again"):
                pass
            assert cl.flush(10)  # a refusal is reported by the flush after it only
        stats = cl.stats()
        assert stats["records_sent"] == 4 and stats["batches_sent"] == 2
        assert stats["refused"] == {"http_413": 2, "http_400": 2}
        assert stats["refused_batches"] == {"http_413": 1, "http_400": 1}
        said = warnings_of(caplog)
        assert len(said) == 2 and "413" in said[0] and "400" in said[1], said
    finally:
        cl.shutdown(5)
        assert srv.stop() == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:5000/api/v1", "base URL: 'http://127.0.0.1:5000'"),
        ("http://127.0.0.1:5000/api/v1/batches", "base URL: 'http://127.0.0.1:5000'"),
        ("127.0.0.1:5000", "not an http:// or https:// URL"),
        ("ftp://example.org", "not an http:// or https:// URL"),
    ],
)
def test_a_wrong_url_is_a_clear_error_at_init(tmp_path: Path, url: str, says: str) -> None:
    with pytest.raises(ValueError) as err:
        cl.init(url=url, mode="http", path=str(tmp_path / "spool"))
    assert says in str(err.value)
    assert not (tmp_path / "spool").exists()


def test_a_base_url_under_a_proxy_path_is_kept() -> None:
    from capture_lib.client import check_url

    assert check_url("https://gateway.example/api/") == "https://gateway.example/api"
    assert (
        check_url("https://gateway.example/tools/provml") == "https://gateway.example/tools/provml"
    )
    with pytest.raises(ValueError, match=re.escape("base URL: 'https://gateway.example/api'")):
        check_url("https://gateway.example/api/api/v1")
