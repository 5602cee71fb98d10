"""HTTP delivery: retries with backoff, Retry-After, and spooling to disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import capture_lib as cl
from capture_lib.transport.http import HttpTransport
from provml.core.wire import parse_batch
from provml.offline import read_lines
from tests.conftest import free_port


class Scripted(ThreadingHTTPServer):
    """Answers POSTs with the next status of ``script`` (then 200)."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.received: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = server.script.pop(0) if server.script else (200, {})
                if status == 200:
                    server.received.append(body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"records": 0}')

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    servers: list[Scripted] = []
    yield servers  # type: ignore[misc]
    for s in servers:
        s.shutdown()
        s.server_close()
    cl.shutdown()


def start(servers: list[Scripted], script: list[tuple[int, dict[str, str]]]) -> Scripted:
    srv = Scripted(script)
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    servers.append(srv)
    return srv


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HttpTransport, "BACKOFF", 0.01)


def spooled(path: Path) -> int:
    """Records in the segments directly under ``path``."""
    if not path.exists():
        return 0
    return sum(
        len(parse_batch(line.body).records)
        for f in path.glob("*.jsonl")
        for line in read_lines(str(f))
    )


def test_a_failure_is_retried_then_delivered(scripted: list[Scripted], tmp_path: Path) -> None:
    srv = start(scripted, [(503, {})])
    cl.init(url=srv.url, mode="http", path=str(tmp_path / "spool"))
    with cl.workflow("w"):
        pass
    assert cl.flush(10)
    assert len(srv.received) == 1 and spooled(tmp_path / "spool") == 0
    assert cl.stats()["records_sent"] == 2 and cl.stats()["spilled_to_disk"] == 0


def test_retry_after_is_honoured(scripted: list[Scripted]) -> None:
    import time

    srv = start(scripted, [(429, {"Retry-After": "0.5"}), (503, {})])
    transport = HttpTransport(srv.url, retries=3)
    started = time.monotonic()
    transport.send({"batch": "b"}, b"{}")
    assert time.monotonic() - started >= 0.5
    assert len(srv.received) == 1


def test_spooled_batches_are_resent_when_the_tracker_returns(
    scripted: list[Scripted], tmp_path: Path
) -> None:
    # the batch and its one retry fail, then so does the re-send that the flush attempts
    srv = start(scripted, [(503, {})] * 4)
    cl.init(url=srv.url, mode="http", path=str(tmp_path / "spool"))
    with cl.workflow("w"):
        pass
    assert not cl.flush(10)  # the records sit only in the spool
    assert spooled(tmp_path / "spool") == 2 and srv.received == []
    assert cl.stats()["records_sent"] == 0 and cl.stats()["waiting_in_spool"]
    with cl.workflow("again"):
        pass
    assert cl.flush(10)  # everything, the spool too, is delivered now
    assert spooled(tmp_path / "spool") == 0  # re-sent, then deleted
    # the second batch met the cool-down and went to disk too: both were re-sent
    assert len(srv.received) == 2 and cl.stats()["resent_batches"] == 2
    assert cl.stats()["records_sent"] == 4 and not cl.stats()["waiting_in_spool"]


def test_unreachable_tracker_spools_everything(tmp_path: Path, scripted: list[Scripted]) -> None:
    cl.init(url=f"http://127.0.0.1:{free_port()}", mode="http", path=str(tmp_path / "spool"))
    wf = cl.workflow("w").start()
    for i in range(10):
        wf.metric("m", i)
    wf.end()
    assert not cl.flush(20)
    assert spooled(tmp_path / "spool") == 12
    assert cl.stats()["spilled_to_disk"] == 12 and cl.stats()["lost"] == {}


def test_a_refused_batch_is_kept_on_disk(tmp_path: Path, scripted: list[Scripted]) -> None:
    srv = start(scripted, [(400, {})])
    cl.init(url=srv.url, mode="http", path=str(tmp_path / "spool"))
    with cl.workflow("w"):
        pass
    assert not cl.flush(10)
    assert srv.received == []
    assert spooled(tmp_path / "spool" / "rejected") == 2
    stats = cl.stats()
    assert stats["lost"] == {} and stats["records_sent"] == 0
    assert stats["refused"] == {"http_400": 2} and stats["refused_batches"] == {"http_400": 1}
