"""The query side's defences: read-only, no SERVICE (whatever the spelling), a time and a
size limit on every query request, and a request size limit."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
import pyoxigraph
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pyoxigraph import BlankNode, Literal, NamedNode, Quad, Triple

from manager.service import Manager
from manager.store.sparql import SparqlStore
from provml.core.errors import ForbiddenOperation, QueryTimeout, StoreError
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.server import build_app
from query import federation
from query.limits import Limits, Runner
from query.results import solutions_json
from tests.conftest import SHA_M, free_port, full_records, make_batch

COUNT = "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"


class Listener:
    """A TCP port that counts the connections made to it (a SERVICE target)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def make_app(limits: Limits | None = None, triples: int = 0, graph: int = 0) -> Flask:
    app = build_app(["manager", "query"], store="memory:")
    manager: Manager = app.extensions["provml.manager"]
    manager.apply(resolve_batch(validate_batch(make_batch(full_records()))))
    if triples:
        ex = "http://example.org/"
        manager.store.add(
            [
                Quad(NamedNode(f"{ex}s{i}"), NamedNode(f"{ex}p"), Literal(str(i)))
                for i in range(triples)
            ]
        )
    if graph:  # in a graph of their own, for a cross product of a known size
        g = NamedNode("http://example.org/g")
        manager.store.add(
            [
                Quad(NamedNode(f"http://example.org/g{i}"), NamedNode("http://example.org/p"),
                     Literal(str(i)), g)
                for i in range(graph)
            ]
        )  # fmt: skip
    if limits is not None:
        app.extensions["provml.query_runner"] = Runner(limits)
    return app


@pytest.fixture
def client() -> FlaskClient:
    return make_app().test_client()


def count(client: FlaskClient) -> int:
    r = client.post("/sparql", data={"query": COUNT})
    return int(r.json["results"]["bindings"][0]["n"]["value"])


# ---- read-only: updates and LOAD ------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"data": {"update": "LOAD <http://127.0.0.1:{port}/data.ttl>"}},
        {"data": {"update": "load silent <http://127.0.0.1:{port}/x> into graph <a:g>"}},
        {"data": "LOAD <http://127.0.0.1:{port}/x>", "content_type": "application/sparql-update"},
        {"data": "CLEAR ALL", "content_type": "application/sparql-update; charset=utf-8"},
        {"query_string": {"update": "DROP ALL"}},
        {"data": {"query": "ASK {}", "update": "DROP ALL"}},
    ],
    ids=["form-load", "form-load-lower", "direct-load", "clear", "url-update", "query+update"],
)
def test_updates_and_load_are_refused(client: FlaskClient, listener: Listener, kw: Any) -> None:
    kw = json.loads(json.dumps(kw).replace("{port}", str(listener.port)))
    before = count(client)
    r = client.post("/sparql", **kw)
    assert r.status_code == 403 and r.json["error"] == "forbidden", r.json
    assert count(client) == before and listener.connections == 0


@pytest.mark.parametrize(
    "text",
    [
        "LOAD <http://127.0.0.1:{port}/x>",
        "load <http://127.0.0.1:{port}/x>",
        "# a comment\nLOAD <http://127.0.0.1:{port}/x>",
        "INSERT DATA { <a:a> <a:b> <a:c> }",
        "SELECT * {} ; LOAD <http://127.0.0.1:{port}/x>",
        "\\u004cOAD <http://127.0.0.1:{port}/x>",
    ],
)
def test_update_text_as_a_query_does_nothing(
    client: FlaskClient, listener: Listener, text: str
) -> None:
    before = count(client)
    r = client.post("/sparql", data={"query": text.replace("{port}", str(listener.port))})
    assert r.status_code in (400, 403) and r.json["message"]
    assert count(client) == before and listener.connections == 0


# ---- SERVICE, however it is written ----------------------------------------------------

SERVICE_TRICKS = [
    "SELECT * WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "select * where { service silent <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { sErViCe <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { # SERVICE in a comment, then the real one\n SERVICE <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { SERVIC\\u0045 <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { \\u0053\\u0045RVICE <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { \\U00000053ERVICE <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p ?o .SERVICE <{url}> { ?a ?b ?c } }",
    "SELECT * WHERE { VALUES ?x { <{url}> } SERVICE ?x { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p 1.SERVICE <{url}> { ?a ?b ?c } }",
    # "<" as "less than", then what a naive scanner takes for an IRI holding a comment
    "SELECT * WHERE { VALUES (?a ?b ?x) { (1 2 <{url}>) } FILTER(?a<?b)SERVICE?x#>\n{ ?s ?p ?o } }",
    'SELECT * WHERE { VALUES (?a ?b) { (1 2) } FILTER(?a<?b#>"""\n) SERVICE <{url}> { ?s ?p ?o }'
    ' # """\n}',
    "PREFIX e: <{url}>\nSELECT * WHERE { SERVICE e: { ?s ?p ?o } }",
    "SELECT * WHERE { { SELECT * WHERE { SERVICE <{url}> { ?s ?p ?o } } } }",
    "ASK { SERVICE <{url}> { ?s ?p ?o } }",
    "CONSTRUCT { ?s ?p ?o } WHERE { SERVICE <{url}> { ?s ?p ?o } }",
]


@pytest.mark.parametrize("query", SERVICE_TRICKS)
def test_federated_queries_are_refused_however_written(
    client: FlaskClient, listener: Listener, query: str
) -> None:
    text = query.replace("{url}", f"http://127.0.0.1:{listener.port}/sparql")
    for r in (
        client.post("/sparql", data={"query": text}),
        client.post("/sparql", data=text, content_type="application/sparql-query"),
        client.get("/sparql?query=" + quote(text)),
    ):
        assert r.status_code == 403 and "SERVICE" in r.json["message"], (r.status_code, r.json)
    time.sleep(0.05)
    assert listener.connections == 0


@pytest.mark.parametrize(
    "query",
    [
        'SELECT * WHERE { ?s <http://example.org/service> "SERVICE" } # SERVICE',
        "SELECT ?service WHERE { ?service ?p ?o } LIMIT 1",
        "PREFIX dcat: <http://www.w3.org/ns/dcat#>\nSELECT * WHERE { ?s a dcat:DataService }",
        "SELECT * WHERE { ?s ?p '''a SERVICE <http://127.0.0.1:9/> { } in a long string''' }",
    ],
)
def test_the_word_service_elsewhere_is_fine(client: FlaskClient, query: str) -> None:
    r = client.post("/sparql", data={"query": query})
    assert r.status_code == 200, r.json


def test_the_check_itself() -> None:
    federation.check("SELECT * { ?s ?p ?o }")
    with pytest.raises(ForbiddenOperation):
        federation.check("SELECT * { SERVICE <http://x/> {} }")
    with pytest.raises(ForbiddenOperation):  # rdflib cannot parse it: refused, not run
        federation.check("SELECT * { SERVICE <http://x/> {")


# ---- time limit --------------------------------------------------------------------------

CROSS = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
#: 250³ = 15.6 M rows to count: about two seconds of pyoxigraph
COUNT_CROSS = (
    "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <http://example.org/g> { ?a ?b ?c . ?d ?e ?f . "
    "?g ?h ?i } }"
)


def test_a_streaming_query_stops_at_the_deadline() -> None:
    app = make_app(Limits(timeout=0.5, max_rows=10**12, max_running=2), triples=200)
    client = app.test_client()
    started = time.monotonic()
    r = client.post("/sparql", data={"query": CROSS})
    took = time.monotonic() - started
    assert r.status_code == 503 and r.json["error"] == "query_timeout", r.json
    assert "PROVML_QUERY_TIMEOUT" in r.json["message"]
    assert took < 3
    # the evaluation stopped at its next row: both slots free again at once
    time.sleep(0.2)
    for _ in range(2):
        assert client.post("/sparql", data={"query": "ASK {}"}).status_code == 200


def test_a_blocking_query_answers_at_the_deadline_and_holds_its_slot() -> None:
    """COUNT needs every row before the first: pyoxigraph cannot be interrupted, so the
    client gets 503 at the deadline, the evaluation winds down in its thread (without
    the GIL: this thread goes on), and while it does its slot stays taken."""
    app = make_app(Limits(timeout=0.3, max_rows=1000, max_running=1), graph=250)
    client = app.test_client()
    started = time.monotonic()
    r = client.post("/sparql", data={"query": COUNT_CROSS})
    assert r.status_code == 503 and r.json["error"] == "query_timeout"
    assert time.monotonic() - started < 2
    # the GIL is free: Python work here is not held up by the evaluation
    t0 = time.monotonic()
    sum(range(2_000_000))  # ~0.05 s; held up until the count ends if the GIL were taken
    assert time.monotonic() - t0 < 0.6
    busy = client.post("/sparql", data={"query": "ASK {}"})
    if busy.status_code == 503:  # still winding down (how long depends on the machine)
        assert busy.json["error"] in ("busy", "query_timeout")
        if busy.json["error"] == "busy":
            assert busy.headers["Retry-After"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # then the slot is free again
        if client.post("/sparql", data={"query": "ASK {}"}).status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the abandoned evaluation never released its slot")


# ---- size limit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kw"),
    [
        ("/sparql", {"method": "POST", "data": {"query": "SELECT * { ?s ?p ?o }"}}),
        ("/sparql", {"method": "POST", "data": {"query": "CONSTRUCT WHERE { ?s ?p ?o }"}}),
        ("/api/v1/export?scope=all&format=turtle", {"method": "GET"}),
        ("/api/v1/export?scope=all&format=provjson", {"method": "GET"}),
        ("/api/v1/models/" + SHA_M, {"method": "GET"}),
    ],
)
def test_too_many_rows_is_422(path: str, kw: Any) -> None:
    client = make_app(Limits(timeout=10, max_rows=5, max_running=2), triples=20).test_client()
    r = client.open(path, **kw)
    assert r.status_code == 422 and r.json["error"] == "result_too_large", r.get_data()
    assert "PROVML_QUERY_MAX_ROWS" in r.json["message"]
    ok = client.post("/sparql", data={"query": "SELECT * { ?s ?p ?o } LIMIT 5"})
    assert ok.status_code == 200 and len(ok.json["results"]["bindings"]) == 5


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_QUERY_TIMEOUT", "2.5")
    monkeypatch.setenv("PROVML_QUERY_MAX_ROWS", "7")
    monkeypatch.setenv("PROVML_QUERY_MAX_RUNNING", "3")
    monkeypatch.setenv("PROVML_QUERY_WORKERS", "1")
    monkeypatch.setenv("PROVML_QUERY_MEMORY", "100")
    assert Limits.of({}) == Limits(
        timeout=2.5, max_rows=7, max_running=3, workers=1, memory=100 << 20
    )
    client = make_app(triples=20).test_client()
    r = client.post("/sparql", data={"query": "SELECT * { ?s ?p ?o }"})
    assert r.status_code == 422


def test_the_request_size_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_MAX_REQUEST_BYTES", "1000")
    client = make_app().test_client()
    r = client.post("/sparql", data={"query": "ASK {}" + " " * 2000})
    assert r.status_code == 413 and r.is_json and r.json["message"]
    r = client.post("/api/v1/import?format=turtle", data=b"#" * 2000)
    assert r.status_code == 413 and r.is_json
    assert client.post("/sparql", data={"query": "ASK {}"}).status_code == 200


# ---- results written by query.results are pyoxigraph's -----------------------------------


def test_solutions_json_matches_pyoxigraph() -> None:
    store = pyoxigraph.Store()
    ex = "http://example.org/"
    objects: list[Any] = [
        Literal("plain"),
        Literal("chat", language="fr"),
        Literal("5", datatype=NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
        Literal('quote " and \\ and \n'),
        NamedNode(ex + "o"),
        BlankNode("b1"),
        Triple(NamedNode(ex + "a"), NamedNode(ex + "b"), Literal("c")),
    ]
    store.extend(
        Quad(NamedNode(f"{ex}s{i}"), NamedNode(ex + "p"), o) for i, o in enumerate(objects)
    )
    text = "SELECT ?s ?o ?none WHERE { ?s ?p ?o OPTIONAL { ?s <x:none> ?none } } ORDER BY ?s"
    theirs = orjson.loads(store.query(text).serialize(format=pyoxigraph.QueryResultsFormat.JSON))
    result = store.query(text)
    ours = orjson.loads(solutions_json(result.variables, result))
    assert ours == theirs


# ---- a remote store is told the time limit -------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []
    delay = 0.0
    headers_out: ClassVar[dict[str, str]] = {}
    answer = "empty"  # or: endless, cut, garbage
    rows_sent = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        type(self).seen.append(self.path)
        time.sleep(type(self).delay)
        if type(self).answer != "empty":
            self._stream()
            return
        body = b'{"head":{"vars":["n"]},"results":{"bindings":[]}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        for k, v in type(self).headers_out.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _stream(self) -> None:
        """An answer without Content-Length, ended by closing the connection: rows for
        ever (until the client goes), 50 rows and then a cut, or not JSON at all; or
        chunked and cut off midway; or the head and then nothing for 3 s."""
        answer = type(self).answer
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        if answer in ("chunked", "stall"):
            # HTTP/1.1 framing: the client knows the answer is incomplete when it ends
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            head = b'{"head":{"vars":["s"]},"results":{"bindings":['
            self.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
            self.wfile.flush()
            if answer == "stall":
                time.sleep(3)
            with contextlib.suppress(OSError):
                self.wfile.write(b"400\r\n" + b" " * 100)  # a chunk cut short
                self.wfile.flush()
            self.close_connection = True
            return
        self.end_headers()
        if type(self).answer == "garbage":
            self.wfile.write(b"<html>Service Unavailable</html>")
            return
        self.wfile.write(b'{"head":{"vars":["s"]},"results":{"bindings":[')
        with contextlib.suppress(OSError):
            n = 0
            while type(self).answer == "endless" or n < 50:
                row = b'%s{"s":{"type":"uri","value":"http://example.org/s%d"}}'
                self.wfile.write(row % (b"," if n else b"", n))
                n += 1
                type(self).rows_sent = n
            self.wfile.write(b',{"s":{"type":"uri","val')  # cut off

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    _Handler.seen, _Handler.delay, _Handler.headers_out = [], 0.0, {}
    _Handler.answer, _Handler.rows_sent = "empty", 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_remote_store_gets_the_timeout(fake_server: str) -> None:
    virtuoso = SparqlStore.from_url("virtuoso+http", f"//{fake_server}")
    list(virtuoso.query("SELECT * {}", timeout=2.5))
    assert "timeout=2500" in _Handler.seen[-1]
    generic = SparqlStore.from_url("sparql+http", f"//{fake_server}/q?timeout_param=timeout")
    list(generic.query("SELECT * {}", timeout=3))
    assert "timeout=3" in _Handler.seen[-1]
    oxigraph = SparqlStore.from_url("oxigraph+http", f"//{fake_server}")
    list(oxigraph.query("SELECT * {}", timeout=3))
    assert "timeout" not in _Handler.seen[-1]  # it has no such parameter


def test_a_slow_or_partial_remote_answer_is_a_timeout(fake_server: str) -> None:
    store = SparqlStore.from_url("virtuoso+http", f"//{fake_server}")
    _Handler.delay = 1.5
    with pytest.raises(QueryTimeout):
        store.query("SELECT * {}", timeout=0.2)
    _Handler.delay = 0.0
    _Handler.headers_out = {"X-SQL-State": "S1TAT", "X-SQL-Message": "anytime timeout"}
    with pytest.raises(QueryTimeout, match="time limit"):
        store.query("SELECT * {}", timeout=1)


def test_a_huge_remote_answer_is_refused_without_reading_it_all(fake_server: str) -> None:
    """An answer that never ends: provml reads it as it arrives and stops at the row limit
    (with the whole answer downloaded first, this request would never be answered)."""
    store = SparqlStore.from_url("sparql+http", f"//{fake_server}/q")
    app = build_app(["query"], store=store)
    app.extensions["provml.query_runner"] = Runner(Limits(timeout=20, max_rows=1000))
    client = app.test_client()
    _Handler.answer = "endless"
    r = client.get("/sparql?query=" + quote("SELECT ?s WHERE { ?s ?p ?o }"))
    assert r.status_code == 422 and r.json["error"] == "result_too_large"
    _Handler.answer = "cut"
    r = client.get("/sparql?query=" + quote("SELECT ?s WHERE { ?s ?p ?o }"))
    assert r.status_code == 503 and r.json["error"] == "store_unavailable"
    assert "broke off" in r.json["message"]
    _Handler.answer = "chunked"
    r = client.get("/sparql?query=" + quote("SELECT ?s WHERE { ?s ?p ?o }"))
    assert r.status_code == 503 and r.json["error"] == "store_unavailable"
    _Handler.answer = "garbage"
    r = client.get("/api/v1/questions/training-data?model=" + SHA_M)
    assert r.status_code == 503 and "not SPARQL JSON results" in r.json["message"]
    _Handler.answer = "empty"  # an empty answer, and a store that knows nothing of the model
    r = client.get("/api/v1/questions/training-data?model=" + SHA_M)
    assert r.status_code == 404 and "names nothing in the graph" in r.json["message"]


def test_a_remote_answer_that_stalls_is_a_store_error(fake_server: str) -> None:
    """The head arrives, then nothing: the read timeout is a provml error, not urllib3's."""
    store = SparqlStore.from_url("sparql+http", f"//{fake_server}/q")
    _Handler.answer = "stall"
    with pytest.raises((StoreError, QueryTimeout)):
        list(store.query("SELECT ?s WHERE { ?s ?p ?o }", timeout=0.5))
