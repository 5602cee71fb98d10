"""The transport contract, run against every transport: the file transport (disk mode),
HTTP against a real HTTP server on loopback, the spooling transport (HTTP, else disk:
``mode="http"``) and, where it applies, the no-op transport (``mode="off"``).

What every transport promises the worker (see :class:`capture_lib.transport.base.Transport`):
``send`` returns :data:`SENT` (or None) for a batch delivered, a batch arrives exactly
once, ``send_many`` gives one outcome per batch, a refusal is :class:`Refused` and a
failure a :class:`TransportError` (both in capture_lib's error hierarchy), and the hooks
(``sync``, ``tick``, ``after_fork``, ``close``) are safe to call at any time, ``close``
twice.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from capture_lib.errors import CaptureError, Refused, TransportError
from capture_lib.transport import (
    SENT,
    FileTransport,
    HttpTransport,
    NoopTransport,
    SpoolingTransport,
    Transport,
)
from provml.core.errors import ProvmlError
from provml.core.wire import WIRE_VERSION
from provml.offline import expand, read_lines
from tests.capture_lib.test_transport import Scripted
from tests.conftest import free_port

TRANSPORTS = ("file", "http", "spool", "noop")
#: the transports that deliver somewhere one can look (not "off")
DELIVERING = ("file", "http", "spool")
#: the transports that talk to a receiver that may refuse a batch
REFUSABLE = ("http", "spool")


@dataclass
class Harness:
    """One transport under test, and how to see what reached its destination."""

    kind: str
    transport: Transport
    #: the bodies that reached the destination, in order (None: no destination)
    delivered: Callable[[], list[bytes]] | None
    #: a transport of the same kind whose destination fails
    broken: Callable[[], Transport] | None
    #: the receiver refuses the next ``n`` batches (None: nothing can refuse)
    refuse_next: Callable[[int], None] | None


def segment_bodies(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    return [line.body for f in expand([str(path)]) for line in read_lines(f)]


def unreachable() -> HttpTransport:
    return HttpTransport(f"http://127.0.0.1:{free_port()}", retries=0, timeout=2)


def blocked(tmp_path: Path) -> FileTransport:
    """A file transport whose directory cannot be made (a file is in the way)."""
    (tmp_path / "blocker").write_text("")
    return FileTransport(str(tmp_path / "blocker" / "segments"))


@pytest.fixture(params=TRANSPORTS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind = request.param
    server: Scripted | None = None
    if kind in REFUSABLE:
        server = Scripted([])
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    h: Harness
    if kind == "file":
        h = Harness(
            kind,
            FileTransport(str(tmp_path / "segments")),
            lambda: segment_bodies(tmp_path / "segments"),
            lambda: blocked(tmp_path),
            None,
        )
    elif kind in REFUSABLE:
        assert server is not None
        srv = server

        def refuse_next(n: int) -> None:
            srv.script.extend([(400, {})] * n)

        if kind == "http":
            transport: Transport = HttpTransport(srv.url, retries=0)

            def broken() -> Transport:
                return unreachable()
        else:
            spool = FileTransport(str(tmp_path / "spool"))
            transport = SpoolingTransport(HttpTransport(srv.url, retries=0), spool)

            def broken() -> Transport:
                return SpoolingTransport(unreachable(), blocked(tmp_path))

        h = Harness(kind, transport, lambda: list(srv.received), broken, refuse_next)
    else:
        h = Harness(kind, NoopTransport(), None, None, None)
    yield h
    h.transport.close()
    if server is not None:
        server.shutdown()
        server.server_close()


def batch(n_records: int = 1) -> tuple[dict[str, Any], bytes]:
    """A batch as the worker hands it over: the dict and its JSON."""
    b = {
        "provml": WIRE_VERSION,
        "batch": uuid.uuid4().hex,
        "session": "0190a0b0-c0d0-7000-8000-000000000001",
        "records": [["metric", i + 1, 1, None, "m", float(i), 0.0, None] for i in range(n_records)],
    }
    return b, orjson.dumps(b)


def needs(h: Harness, *kinds: str) -> None:
    if h.kind not in kinds:
        pytest.skip(f"does not apply to the {h.kind} transport")


def test_send_says_a_batch_was_sent(harness: Harness) -> None:
    assert harness.transport.send(*batch()) in (SENT, None)


def test_a_batch_sent_arrives_exactly_once(harness: Harness) -> None:
    needs(harness, *DELIVERING)
    assert harness.delivered is not None
    bodies = []
    for n in (1, 3, 2):
        b, body = batch(n)
        harness.transport.send(b, body)
        bodies.append(body)
    harness.transport.sync()
    harness.transport.tick(force=True)
    assert harness.delivered() == bodies


def test_send_many_gives_one_outcome_per_batch_and_each_arrives_once(harness: Harness) -> None:
    batches = [batch(n) for n in (2, 1, 4)]
    outcomes = harness.transport.send_many(batches)
    assert len(outcomes) == len(batches)
    assert all(o in (SENT, None) for o in outcomes)
    harness.transport.sync()
    if harness.delivered is not None:
        assert harness.delivered() == [body for _, body in batches]


def test_a_refused_batch_is_a_refused_error_and_never_arrives(harness: Harness) -> None:
    needs(harness, *REFUSABLE)
    assert harness.refuse_next is not None and harness.delivered is not None
    harness.refuse_next(1)
    with pytest.raises(Refused) as err:
        harness.transport.send(*batch(3))
    refused = err.value
    assert isinstance(refused, TransportError) and isinstance(refused, CaptureError)
    assert isinstance(refused, ProvmlError)
    assert refused.reason == "http_400" and refused.records == 3 and not refused.retryable
    assert harness.delivered() == []


def test_a_refusal_in_send_many_is_an_outcome_and_the_others_still_go(harness: Harness) -> None:
    needs(harness, *REFUSABLE)
    assert harness.refuse_next is not None and harness.delivered is not None
    first, second, third = batch(), batch(2), batch()
    harness.transport.send(*first)
    harness.refuse_next(1)
    outcomes = harness.transport.send_many([second, third])
    assert isinstance(outcomes[0], Refused) and outcomes[0].records == 2
    assert outcomes[1] in (SENT, None)
    assert harness.delivered() == [first[1], third[1]]


def test_an_undeliverable_batch_is_a_transport_error(harness: Harness) -> None:
    needs(harness, *DELIVERING)
    assert harness.broken is not None
    broken = harness.broken()
    try:
        with pytest.raises(TransportError) as err:
            broken.send(*batch())
        assert isinstance(err.value, CaptureError) and isinstance(err.value, ProvmlError)
        assert not isinstance(err.value, Refused)
        assert err.value.retryable
    finally:
        broken.close()


def test_nothing_waits_and_nothing_is_refused_after_a_delivery(harness: Harness) -> None:
    harness.transport.send(*batch())
    harness.transport.sync()
    harness.transport.tick()
    harness.transport.tick(force=True)
    assert harness.transport.take_refusals() == []
    assert not harness.transport.waiting()


def test_close_is_idempotent(harness: Harness) -> None:
    harness.transport.send(*batch())
    harness.transport.close()
    harness.transport.close()


def test_close_without_sending(harness: Harness) -> None:
    harness.transport.close()
    harness.transport.close()


def test_after_fork_the_transport_still_delivers(harness: Harness) -> None:
    first, second = batch(), batch()
    harness.transport.send(*first)
    harness.transport.after_fork()  # as in a forked child: drop what the parent owns
    assert harness.transport.send(*second) in (SENT, None)
    harness.transport.sync()
    if harness.delivered is not None:
        assert harness.delivered() == [first[1], second[1]]
