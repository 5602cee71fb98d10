"""Attacks on the HTTP server itself, on loopback, against a real ``provml serve``
(issue [9], items 2 and 3): bodies refused before they are read, no lock-out by slow
or idle connections. Each attack is bounded in time and in connections."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Server, make_batch
from tests.test_security import CAPTURE_TOKEN, tokens_file

pytestmark = pytest.mark.integration

LIMIT = 1 << 20  # PROVML_MAX_REQUEST_BYTES for these servers


@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("PROVML_MAX_REQUEST_BYTES", str(LIMIT))
    monkeypatch.setenv("PROVML_HEADER_TIMEOUT", "2")
    home = tmp_path / "home"
    home.mkdir()
    srv = Server(tmp_path / "data", "--tokens-file", str(tokens_file(home)))
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def _connect(srv: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Status and JSON body of the answer on ``sock`` (read until the server closes)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _headers(path: str, *lines: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: x", *lines]) + "\r\n\r\n").encode()


def test_a_body_announced_over_the_limit_is_refused_unread(guarded: Server) -> None:
    auth = f"Authorization: Bearer {CAPTURE_TOKEN}"
    with _connect(guarded) as sock:
        sock.sendall(_headers("/api/v1/batches", auth, "Content-Type: application/json",
                              f"Content-Length: {900 << 20}"))  # fmt: skip
        # not one byte of the 900 MB sent: the answer comes from the headers alone
        status, body = _response(sock)
    assert status == 413 and body["error"] == "request_entity_too_large"
    assert f"PROVML_MAX_REQUEST_BYTES ({LIMIT} bytes)" in str(body["message"])


def test_a_chunked_body_is_read_no_further_than_the_limit(guarded: Server) -> None:
    auth = f"Authorization: Bearer {CAPTURE_TOKEN}"
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    with _connect(guarded) as sock:
        sock.sendall(_headers("/api/v1/batches", auth, "Content-Type: application/json",
                              "Transfer-Encoding: chunked"))  # fmt: skip
        try:
            while sent < 64 * LIMIT:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: it stopped reading
            pass
    # what the server read is at most the limit plus what sat in the sockets' buffers
    assert sent < 8 * LIMIT, sent


def test_an_unauthenticated_body_is_refused_before_it_is_read(guarded: Server) -> None:
    for auth in ([], ["Authorization: Bearer not-a-token"]):
        with _connect(guarded) as sock:
            sock.sendall(_headers("/api/v1/batches", *auth, "Content-Type: application/json",
                                  f"Content-Length: {LIMIT // 2}"))  # fmt: skip
            status, body = _response(sock)  # no body byte sent
        assert status == 401, body
        assert body["error"] == ("unauthorized" if not auth else "invalid_token")
    # asking for "100 Continue" changes nothing: no 100, the body is never read
    for length in (LIMIT // 2, 900 << 20):
        with _connect(guarded) as sock:
            sock.sendall(_headers("/api/v1/batches", "Expect: 100-continue",
                                  f"Content-Length: {length}"))  # fmt: skip
            status, body = _response(sock)
            assert status == 401, body
    # over the limit too: still 401 first (the limits are no one's business but callers')
    with _connect(guarded) as sock:
        sock.sendall(_headers("/api/v1/batches", "Content-Type: application/json",
                              f"Content-Length: {900 << 20}"))  # fmt: skip
        status, body = _response(sock)
        assert status == 401, body
    # with its token, the same request is read and answered by the application
    batch = make_batch([{"kind": "workflow_start", "n": 1, "name": "w", "time": 1.0}])
    resp = requests.post(guarded.url + "/api/v1/batches", json=batch, timeout=10,
                         headers={"Authorization": f"Bearer {CAPTURE_TOKEN}"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    # and the refusals are in the audit log, without the body's content
    audit = (guarded.data_dir / "audit.log").read_text()
    denied = [json.loads(line) for line in audit.splitlines() if '"denied"' in line]
    assert [d["status"] for d in denied if d.get("before_body")] == [401] * 5


def test_slow_headers_do_not_lock_anyone_out(guarded: Server) -> None:
    """150 connections trickling a header byte each second (more than waitress's default
    100): health checks answer all along, and the server closes them after its header
    timeout (2 s here)."""
    slow = []
    for _ in range(150):
        sock = _connect(guarded)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(sock)
    answered = []
    closed = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        for sock in slow:
            with contextlib.suppress(OSError):  # closed by the server already
                sock.sendall(b"X")
        t0 = time.monotonic()
        ok = requests.get(guarded.url + "/healthz", timeout=5).ok
        answered.append((ok, time.monotonic() - t0))
        time.sleep(1)
    for sock in slow:
        try:
            sock.settimeout(0.5)
            if sock.recv(1) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
        sock.close()
    assert all(ok for ok, _ in answered) and max(t for _, t in answered) < 2, answered
    assert closed == len(slow)  # each closed by the server, none answered
