"""The W3C SPARQL 1.1 Protocol tests, run against a real ``provml serve`` on loopback.

The tests come from the manifest (``sparql11/protocol/manifest.ttl``), read with rdflib:
each is a list of HTTP requests with the responses expected of them. The graphs they name
(``ut:graphData``) are loaded into the server's on-disk store, as named graphs, before it
starts; the requests are sent as written, with the manifest's ``/sparql/`` mapped to the
endpoint's path, and only the expectations the manifest states are checked.

The tests of the update operation do not apply: the endpoint is read-only by design. They
are skipped with their reason, and ``test_update_is_refused`` sends their requests all
the same, to check that each is refused and that the store does not change.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import url2pathname

import pyoxigraph
import pytest
import rdflib
import requests
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, Namespace
from rdflib.query import Result

from manager.store import open_store
from provml.server import store_url
from tests.conftest import SHARED, Server, needs

pytestmark = pytest.mark.integration

SUITE = SHARED / "corpus" / "w3c-rdf-tests" / "sparql11" / "protocol"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")

#: the manifest's endpoint path, and the server's
MANIFEST_PATH, ENDPOINT = "/sparql/", "/sparql"
FORM, QUERY, UPDATE = (
    "application/x-www-form-urlencoded",
    "application/sparql-query",
    "application/sparql-update",
)
#: mf:expectedFormat → the media types the protocol allows for it (and their parsers)
BOOLEAN = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
}
TABULAR = {**BOOLEAN, "text/csv": "csv", "text/tab-separated-values": "tsv"}
RDF_GRAPH = {
    "application/rdf+xml": "xml",
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "text/plain": "nt",  # N-Triples' media type before RDF 1.1
}
FORMATS = {"boolean": BOOLEAN, "tabular": TABULAR, "RDF": RDF_GRAPH}
SPARQL_RESULTS = "{http://www.w3.org/2005/sparql-results#}"


@dataclass(frozen=True)
class HttpRequest:
    """One ``ht:Request`` of a test, with the ``ht:Response`` expected of it."""

    method: str
    path: str  # on the server, with the query string
    headers: dict[str, str]
    body: bytes | None
    statuses: frozenset[str]  # status classes: "2xx", "4xx", …
    format: str | None = None  # "boolean", "tabular", "RDF"
    boolean: bool | None = None

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def params(self) -> dict[str, list[str]]:
        """The parameters in the URL and, when it is declared form-encoded, the body."""
        params = parse_qs(urlsplit(self.path).query)
        if self.body is not None and self.media_type == FORM:
            for key, values in parse_qs(self.body.decode("utf-8")).items():
                params.setdefault(key, []).extend(values)
        return params

    def is_update(self) -> bool:
        """An update operation, as the protocol tells one apart: by media type or field."""
        return self.media_type == UPDATE or "update" in self.params()

    def is_query(self) -> bool:
        return self.media_type == QUERY or "query" in self.params()


@dataclass(frozen=True)
class ProtocolTest:
    id: str
    name: str
    requests: list[HttpRequest]
    graphs: dict[str, Path] = field(default_factory=dict)  # graph name → data file

    def not_applicable(self) -> str | None:
        """Why the test does not apply to a read-only endpoint, or None if it does."""
        if not any(r.is_update() for r in self.requests) and "update" not in self.name:
            return None
        if any(r.is_update() and "2xx" in r.statuses for r in self.requests):
            why = "expects an update to succeed, and the endpoint is read-only"
        else:
            why = "tests how the update operation rejects a bad request, and there is none"
        return f"{self.id} ({self.name}): {why} (every update answers 403)"


def _request(g: rdflib.Graph, node: Any) -> HttpRequest:
    headers = {}
    if (head := g.value(node, HT.headers)) is not None:
        for h in Collection(g, head):
            headers[str(g.value(h, HT.fieldName)).lower()] = str(g.value(h, HT.fieldValue))
    body = None
    if (content := g.value(node, HT.body)) is not None:
        encoding = str(g.value(content, CNT.characterEncoding) or "UTF-8")
        body = str(g.value(content, CNT.chars)).encode(encoding)
    path = str(g.value(node, HT.absolutePath))
    assert path.startswith(MANIFEST_PATH), path
    resp = g.value(node, HT.resp)
    fmt, boolean = g.value(resp, MF.expectedFormat), g.value(resp, MF.expectedBoolean)
    return HttpRequest(
        method=str(g.value(node, HT.methodName)),
        path=ENDPOINT + path.removeprefix(MANIFEST_PATH),
        headers=headers,
        body=body,
        statuses=frozenset(
            str(s).rpartition("StatusCode")[2] for s in g.objects(resp, MF.expectedStatus)
        ),
        format=None if fmt is None else str(fmt),
        boolean=None if boolean is None else bool(boolean.toPython()),
    )


def load_manifest(path: Path = SUITE / "manifest.ttl") -> list[ProtocolTest]:
    g = rdflib.Graph().parse(path, format="turtle")

    def file_of(iri: Any) -> Path:
        return Path(url2pathname(urlsplit(str(iri)).path))

    def items(subject: Any, predicate: rdflib.URIRef) -> Collection:
        head = g.value(subject, predicate)
        assert head is not None, (subject, predicate)
        return Collection(g, head)

    tests = []
    manifest = g.value(predicate=RDF.type, object=MF.Manifest, any=False)
    for entry in items(manifest, MF.entries):
        assert (entry, RDF.type, MF.ProtocolTest) in g, entry
        action = g.value(entry, MF.action)
        tests.append(
            ProtocolTest(
                id=str(entry).rpartition("#")[2],
                name=str(g.value(entry, MF.name)),
                requests=[_request(g, r) for r in items(action, HT.requests)],
                graphs={
                    str(g.value(d, RDFS.label)): file_of(g.value(d, UT.graph))
                    for d in g.objects(entry, UT.graphData)
                },
            )
        )
    return tests


TESTS = load_manifest() if SUITE.is_dir() else []
APPLICABLE = [t for t in TESTS if t.not_applicable() is None]
REFUSED = [t for t in TESTS if t.not_applicable() is not None]


def load_graphs(data_dir: Path, graphs: dict[str, Path]) -> None:
    """Write the graphs into the store a server on ``data_dir`` opens, before it starts."""
    store = open_store(store_url(str(data_dir)))
    try:
        for name, path in sorted(graphs.items()):
            fmt = pyoxigraph.RdfFormat.from_extension(path.suffix.lstrip("."))
            assert fmt is not None, path
            graph = pyoxigraph.NamedNode(name)
            store.add(
                [
                    pyoxigraph.Quad(t.subject, t.predicate, t.object, graph)
                    for t in pyoxigraph.parse(path=path, format=fmt)
                ]
            )
    finally:
        store.close()  # and, dropped on return, releases the store's lock for the server


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("protocol") / "data"
    load_graphs(data_dir, {name: p for t in TESTS for name, p in t.graphs.items()})
    srv = Server(data_dir)
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def send(server: Server, req: HttpRequest, **headers: str) -> requests.Response:
    return requests.request(
        req.method,
        server.url + req.path,
        data=req.body,
        headers={**req.headers, **headers},
        allow_redirects=False,
        timeout=30,
    )


def media_type(resp: requests.Response) -> str:
    return resp.headers.get("Content-Type", "").partition(";")[0].strip()


def boolean_of(resp: requests.Response) -> bool:
    if BOOLEAN[media_type(resp)] == "json":
        answer = resp.json()["boolean"]
    else:
        node = ET.fromstring(resp.content).find(f"{SPARQL_RESULTS}boolean")
        assert node is not None and node.text in ("true", "false"), resp.text
        answer = node.text == "true"
    assert isinstance(answer, bool)
    return answer


def check(resp: requests.Response, req: HttpRequest) -> None:
    """Check a response against what the manifest expects of it, and nothing more."""
    assert f"{resp.status_code // 100}xx" in req.statuses, (resp.status_code, resp.text)
    if resp.status_code >= 400:  # provml's errors are JSON, with a message
        assert resp.json()["message"], resp.text
    if req.format is None:
        return
    allowed = FORMATS[req.format]
    assert media_type(resp) in allowed, resp.headers
    if req.format == "boolean":
        answer = boolean_of(resp)
        assert req.boolean is None or answer is req.boolean
    elif req.format == "tabular":
        result = Result.parse(BytesIO(resp.content), format=allowed[media_type(resp)])
        assert result.type == "SELECT" and result.vars
    else:
        rdflib.Graph().parse(data=resp.content, format=allowed[media_type(resp)])


@needs(SUITE)
def test_the_manifest_is_read_whole() -> None:
    g = rdflib.Graph().parse(SUITE / "manifest.ttl", format="turtle")
    assert (
        len(TESTS) == len({t.id for t in TESTS}) == len(set(g.subjects(RDF.type, MF.ProtocolTest)))
    )
    assert len(APPLICABLE) + len(REFUSED) == len(TESTS) and APPLICABLE and REFUSED
    assert all(r.statuses for t in TESTS for r in t.requests)
    assert all(p.is_file() for t in TESTS for p in t.graphs.values())


def test_the_endpoint_holds_the_test_graphs(endpoint: Server) -> None:
    rows = endpoint.sparql("SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    graphs = {name for t in TESTS for name in t.graphs}
    assert {(r["g"], r["n"]) for r in rows} == {(g, "1") for g in graphs}


def _entry(test: ProtocolTest) -> Any:
    why = test.not_applicable()
    marks = [pytest.mark.skip(reason=f"not applicable: {why}")] if why else []
    return pytest.param(test, id=test.id, marks=marks)


@pytest.mark.parametrize("test", [_entry(t) for t in TESTS])
def test_protocol(endpoint: Server, test: ProtocolTest) -> None:
    """One manifest entry: its requests in order, each response as the manifest expects."""
    for req in test.requests:
        check(send(endpoint, req), req)


DUMP = "SELECT ?g ?s ?p ?o { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"


@pytest.mark.parametrize("test", REFUSED, ids=lambda t: t.id)
def test_update_is_refused(endpoint: Server, test: ProtocolTest) -> None:
    """Every request of a test that does not apply is refused, and changes nothing."""
    before = endpoint.sparql(DUMP)
    for req in test.requests:
        resp = send(endpoint, req)
        if req.is_update():
            assert resp.status_code == 403, resp.text
            assert resp.json()["error"] == "forbidden" and "read-only" in resp.json()["message"]
        elif req.is_query():  # it looks for what the update would have written
            assert resp.status_code == 200, resp.text
            assert boolean_of(resp) is False
        else:  # not an update to the protocol (no media type, or another): a bad request
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"] == "invalid_request"
    assert sorted(endpoint.sparql(DUMP), key=json.dumps) == sorted(before, key=json.dumps)
    assert before


@pytest.mark.parametrize(
    ("test", "accept"),
    [(t, media) for t in APPLICABLE for r in t.requests if r.format for media in FORMATS[r.format]],
    ids=lambda v: v.id if isinstance(v, ProtocolTest) else v,
)
def test_content_negotiation(endpoint: Server, test: ProtocolTest, accept: str) -> None:
    """Each result format the protocol allows for a test's answer, asked for by name."""
    for req in test.requests:
        resp = send(endpoint, req, Accept=accept)
        check(resp, req)
        assert media_type(resp) == accept and resp.headers["Vary"] == "Accept"


@needs(SUITE)  # the endpoint holds the suite's data
@pytest.mark.parametrize(
    ("params", "answer"),
    [
        # a default graph alone: no named graphs
        ({"default-graph-uri": ["data1"]}, {"default": ["data1"], "named": []}),
        # named graphs alone: an empty default graph
        ({"named-graph-uri": ["data1", "data2"]}, {"default": [], "named": ["data1", "data2"]}),
        # none: the query's FROM and FROM NAMED hold
        ({}, {"default": ["data3"], "named": ["data3"]}),
    ],
)
def test_the_protocol_dataset_replaces_the_query_dataset(
    endpoint: Server, params: dict[str, list[str]], answer: dict[str, list[str]]
) -> None:
    base = "http://kasei.us/2009/09/sparql/data/"
    query = f"""SELECT ?in ?doc FROM <{base}data3.rdf> FROM NAMED <{base}data3.rdf> {{
        {{ ?doc a ?t BIND("default" AS ?in) }} UNION {{ GRAPH ?in {{ ?doc a ?t }} }} }}"""
    resp = requests.get(
        endpoint.url + ENDPOINT,
        params={"query": query, **{k: [f"{base}{v}.rdf" for v in vs] for k, vs in params.items()}},
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    found: dict[str, list[str]] = {"default": [], "named": []}
    for b in resp.json()["results"]["bindings"]:
        doc = b["doc"]["value"].removeprefix(base).removesuffix(".rdf")
        found["default" if b["in"]["value"] == "default" else "named"].append(doc)
    assert {k: sorted(v) for k, v in found.items()} == answer


def test_relative_iris_resolve_against_the_endpoint(endpoint: Server) -> None:
    resp = requests.post(
        endpoint.url + ENDPOINT,
        data=b"CONSTRUCT { <s> <p> 1 } WHERE {}",
        headers={"Content-Type": QUERY, "Accept": "application/n-triples"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.text.split() == [
        f"<{endpoint.url}/s>",
        f"<{endpoint.url}/p>",
        '"1"^^<http://www.w3.org/2001/XMLSchema#integer>',
        ".",
    ]
