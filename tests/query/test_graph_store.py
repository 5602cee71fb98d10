"""The W3C SPARQL 1.1 Graph Store Protocol tests (indirect identification), read side.

The endpoint is read-only, so each test is run as two halves. Every write of the
manifest (PUT, POST, DELETE) is sent as written and must be refused: 405, an Allow
header, a JSON body saying read-only, and the store unchanged. Every read (GET, HEAD) is
sent to a store holding what the writes before it would have made — the graph the
manifest expects back, or nothing where it expects 404 — and must answer as the
manifest says: status, content type, and a graph isomorphic to the expected one. The
manifest's ``/gsp`` is the endpoint's ``/store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyoxigraph
import pytest
import rdflib
from rdflib.collection import Collection
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, Namespace

from manager.store import open_store
from query.app import create_app
from tests.conftest import SHARED, needs

SUITE = SHARED / "corpus" / "w3c-rdf-tests" / "sparql11" / "graph-store-protocol"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
STATUS = {"OK": 200, "Created": 201, "NoContent": 204, "NotFound": 404}


@dataclass(frozen=True)
class Request:
    test: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    statuses: frozenset[str]
    expected: tuple[str, str] | None  # (content type, body) of the answer

    @property
    def graph(self) -> str | None:
        return parse_qs(urlsplit(self.path).query).get("graph", [None])[0]


def _headers(g: rdflib.Graph, node: Any) -> dict[str, str]:
    head = g.value(node, HT.headers)
    if head is None:
        return {}
    return {str(g.value(h, HT.fieldName)).lower(): str(g.value(h, HT.fieldValue))
            for h in Collection(g, head)}  # fmt: skip


def load() -> list[Request]:
    g = rdflib.Graph().parse(SUITE / "manifest-indirect.ttl", format="turtle")
    out = []
    for test in g.subjects(RDF.type, MF.GraphStoreProtocolTest):
        for node in Collection(g, g.value(g.value(test, MF.action), HT.requests)):
            resp = g.value(node, HT.resp)
            body = g.value(g.value(node, HT.body), CNT.chars)
            expected_body = g.value(g.value(resp, HT.body), CNT.chars)
            expected = None
            if expected_body is not None:
                expected = (_headers(g, resp)["content-type"], str(expected_body))
            out.append(
                Request(
                    test=str(test).rpartition("#")[2],
                    method=str(g.value(node, HT.methodName)),
                    path="/store" + str(g.value(node, HT.absolutePath)).removeprefix("/gsp"),
                    headers=_headers(g, node),
                    body=None if body is None else str(body),
                    statuses=frozenset(
                        str(s).rpartition("#")[2] for s in g.objects(resp, MF.expectedStatus)
                    ),
                    expected=expected,
                )
            )
    return out


REQUESTS = load() if SUITE.is_dir() else []
WRITES = [r for r in REQUESTS if r.method in ("PUT", "POST", "DELETE")]
# a read of a graph the test created by POST to /gsp (its IRI from Location) cannot be set up
READS = [r for r in REQUESTS if r.method in ("GET", "HEAD") and "$LOCATION$" not in r.path]


def app_holding(graph: str | None, turtle: str | None) -> Any:
    store = open_store("memory:")
    if turtle is not None:
        name = pyoxigraph.NamedNode(graph) if graph else pyoxigraph.DefaultGraph()
        triples = pyoxigraph.parse(turtle.encode(), format=pyoxigraph.RdfFormat.TURTLE,
                                   base_iri=graph or "http://www.example/")  # fmt: skip
        store.add([pyoxigraph.Quad(t.subject, t.predicate, t.object, name) for t in triples])
    return create_app({"store": store}), store


@needs(SUITE)
def test_the_manifest_is_read_whole() -> None:
    assert len({r.test for r in REQUESTS}) == 9
    assert {r.method for r in WRITES} == {"PUT", "POST", "DELETE"}
    assert any(r.method == "HEAD" for r in READS) and any(r.expected for r in READS)


@pytest.mark.parametrize("req", WRITES, ids=lambda r: f"{r.test}-{r.method}")
def test_writes_are_refused(req: Request) -> None:
    app, store = app_holding("http://www.example/gsp/person/1.ttl", "<a:s> <a:p> <a:o> .")
    r = app.test_client().open(req.path, method=req.method, data=req.body, headers=req.headers)
    assert r.status_code == 405, r.data
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert r.json["error"] == "method_not_allowed" and "read-only" in r.json["message"]
    assert store.count() == 1


@pytest.mark.parametrize("req", READS, ids=lambda r: f"{r.test}-{r.method}")
def test_reads_answer_as_the_manifest_expects(req: Request) -> None:
    statuses = {STATUS[s] for s in req.statuses}
    if 404 in statuses:
        holding = None
    elif req.expected is not None:
        holding = req.expected[1]
    else:  # HEAD of a graph the test PUT: any content will do
        holding = "<http://www.example/s> <http://www.example/p> 1 ."
    app, _ = app_holding(req.graph, holding)
    r = app.test_client().open(req.path, method=req.method, headers=req.headers)
    assert r.status_code in statuses, r.data
    if req.expected is not None:
        assert r.headers["Content-Type"] == req.expected[0]
        got = rdflib.Graph().parse(data=r.data, format="turtle")
        want = rdflib.Graph().parse(data=req.expected[1], format="turtle")
        assert isomorphic(got, want)
    if req.method == "HEAD":
        assert r.data == b""


def test_reads_are_audited(tmp_path: Any) -> None:
    """Like every read route: who read which graph, and who fetched the description."""
    import json

    from provml.web.audit import AuditLog

    app, _ = app_holding("http://www.example/g", "<a:s> <a:p> <a:o> .")
    audit = app.extensions["provml.audit"] = AuditLog(str(tmp_path / "audit.log"))
    client = app.test_client()
    try:
        assert client.get("/store?graph=http://www.example/g").status_code == 200
        assert client.get("/sparql?default").status_code == 200
        assert client.get("/sparql").status_code == 200
        assert client.put("/store?default").status_code == 405
    finally:
        audit.close()
    events = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(e["event"], e.get("graph"), e.get("default")) for e in events[:3]] == [
        ("graph", "http://www.example/g", False),
        ("graph", None, True),
        ("service_description", None, None),
    ]
    assert len(events) == 3  # a refused write changes nothing and reads nothing


def test_options_and_graph_writes_on_sparql_say_what_is_allowed() -> None:
    """OPTIONS lists the methods each resource allows, as its 405s do; a Graph Store
    write sent to /sparql is refused as updates are (403), not allowed and refused at
    once; a read without a graph says how to name one."""
    app, store = app_holding("http://www.example/g", "<a:s> <a:p> <a:o> .")
    client = app.test_client()
    assert client.options("/store").headers["Allow"] == "GET, HEAD, OPTIONS"
    assert client.options("/sparql").headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    r = client.post("/sparql?graph=http://www.example/g", data="<a:x> <a:y> <a:z> .",
                    content_type="text/turtle")  # fmt: skip
    assert r.status_code == 403 and "read-only" in r.json["message"]
    assert store.count() == 1
    r = client.get("/store")
    assert r.status_code == 400 and "?default for the default graph" in r.json["message"]
