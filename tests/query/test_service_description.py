"""The W3C SPARQL 1.1 Service Description tests, run against a real ``provml serve``.

The manifest (``sparql11/service-description/manifest.ttl``) names three tests and says
no more; what each checks is the Recommendation's conformance criteria (§4): a GET on
the endpoint returns RDF (``returns-rdf``), holding ``?service sd:endpoint <U>`` for the
URL ``U`` it was fetched from (``has-endpoint-triple``), and using the vocabulary as §3
defines it (``conforms-to-schema``). Each runs in every RDF format the endpoint offers,
asked for by ``Accept``, and with none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rdflib
import requests
from rdflib.collection import Collection
from rdflib.namespace import RDF, Namespace

from tests.conftest import SHARED, Server, needs

pytestmark = pytest.mark.integration

MANIFEST = SHARED / "corpus" / "w3c-rdf-tests" / "sparql11" / "service-description"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
#: media type asked for → rdflib's parser (None: no Accept header, Turtle expected)
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
}
#: the instances §3.2 defines, by the class of what may appear there
LANGUAGES = {SD.SPARQL10Query, SD.SPARQL11Query, SD.SPARQL11Update}
FEATURES = {
    SD.DereferencesURIs,
    SD.UnionDefaultGraph,
    SD.RequiresDataset,
    SD.EmptyGraphs,
    SD.BasicFederatedQuery,
}
#: W3C format IRIs (http://www.w3.org/ns/formats/) → the media type of each
RESULT_MEDIA = {
    "SPARQL_Results_JSON": "application/sparql-results+json",
    "SPARQL_Results_XML": "application/sparql-results+xml",
    "SPARQL_Results_CSV": "text/csv",
    "SPARQL_Results_TSV": "text/tab-separated-values",
    "Turtle": "text/turtle",
    "N-Triples": "application/n-triples",
    "RDF_XML": "application/rdf+xml",
    "JSON-LD": "application/ld+json",
}


def manifest_entries(path: Path = MANIFEST / "manifest.ttl") -> list[str]:
    g = rdflib.Graph().parse(path, format="turtle")
    manifest = g.value(predicate=RDF.type, object=MF.Manifest, any=False)
    entries = Collection(g, g.value(manifest, MF.entries))
    assert all((e, RDF.type, MF.ServiceDescriptionTest) in g for e in entries)
    return [str(e).rpartition("#")[2] for e in entries]


def returns_rdf(resp: requests.Response, g: rdflib.Graph, url: str) -> None:
    assert resp.status_code == 200, resp.text
    assert len(g) > 0


def has_endpoint_triple(resp: requests.Response, g: rdflib.Graph, url: str) -> None:
    assert (None, SD.endpoint, rdflib.URIRef(url)) in g


def conforms_to_schema(resp: requests.Response, g: rdflib.Graph, url: str) -> None:
    # the validator the W3C group ran: every sd:NamedGraph has an sd:name …
    for named in g.subjects(RDF.type, SD.NamedGraph):
        assert g.value(named, SD.name) is not None, named
    # … and the domains and ranges of §3 for every term the description uses
    services = set(g.subjects(RDF.type, SD.Service))
    assert services
    for service in services:
        assert set(g.objects(service, SD.endpoint)), service
        assert set(g.objects(service, SD.supportedLanguage)) <= LANGUAGES
        assert set(g.objects(service, SD.feature)) <= FEATURES
        for fmt in g.objects(service, SD.resultFormat):
            assert isinstance(fmt, rdflib.URIRef), fmt
        for dataset in g.objects(service, SD.defaultDataset):
            assert (dataset, RDF.type, SD.Dataset) in g
            for graph in g.objects(dataset, SD.defaultGraph):
                assert (graph, RDF.type, SD.Graph) in g
            for named in g.objects(dataset, SD.namedGraph):
                assert (named, RDF.type, SD.NamedGraph) in g
    for p in set(g.predicates()):
        if str(p).startswith(str(SD)):
            assert p in {SD[t] for t in _PROPERTIES}, f"not a term of the vocabulary: {p}"


_PROPERTIES = [
    "endpoint",
    "feature",
    "defaultEntailmentRegime",
    "entailmentRegime",
    "defaultSupportedEntailmentProfile",
    "supportedEntailmentProfile",
    "extensionFunction",
    "extensionAggregate",
    "languageExtension",
    "supportedLanguage",
    "propertyFeature",
    "defaultDataset",
    "availableGraphs",
    "resultFormat",
    "inputFormat",
    "defaultGraph",
    "namedGraph",
    "name",
    "graph",
]

CHECKS: dict[str, Callable[[requests.Response, rdflib.Graph, str], None]] = {
    "returns-rdf": returns_rdf,
    "has-endpoint-triple": has_endpoint_triple,
    "conforms-to-schema": conforms_to_schema,
}


@needs(MANIFEST)
def test_every_manifest_entry_has_its_check() -> None:
    assert manifest_entries() == ["has-endpoint-triple", "returns-rdf", "conforms-to-schema"]
    assert set(manifest_entries()) == set(CHECKS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("sd") / "data")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def fetch(url: str, accept: str | None) -> tuple[requests.Response, rdflib.Graph]:
    resp = requests.get(url, headers={"Accept": accept} if accept else {}, timeout=30)
    assert resp.status_code == 200, resp.text
    media = resp.headers["Content-Type"].partition(";")[0]
    assert media == (accept or "text/turtle")
    assert resp.headers["Vary"] == "Accept"
    g = rdflib.Graph().parse(data=resp.content, format=RDF_FORMATS[media], publicID=url)
    return resp, g


@pytest.mark.parametrize("accept", [None, *RDF_FORMATS])
@pytest.mark.parametrize("test", manifest_entries() if MANIFEST.is_dir() else [])
def test_service_description(server: Server, test: str, accept: str | None) -> None:
    url = server.url + "/sparql"
    resp, g = fetch(url, accept)
    CHECKS[test](resp, g, url)


def test_the_description_says_what_the_endpoint_does(server: Server) -> None:
    """Query only (no update language, no federation), and each result format it names
    is one the endpoint answers in."""
    url = server.url + "/sparql"
    _, g = fetch(url, "text/turtle")
    service = rdflib.URIRef(url)
    assert set(g.objects(service, SD.supportedLanguage)) == {SD.SPARQL11Query}
    assert SD.BasicFederatedQuery not in set(g.objects(service, SD.feature))
    formats = {str(f).rpartition("/")[2] for f in g.objects(service, SD.resultFormat)}
    assert formats == set(RESULT_MEDIA)
    for name in formats:
        media = RESULT_MEDIA[name]
        graph_form = media in RDF_FORMATS
        query = "CONSTRUCT { <a:s> <a:p> 1 } WHERE {}" if graph_form else "SELECT (1 AS ?x) {}"
        resp = requests.get(url, params={"query": query}, headers={"Accept": media}, timeout=30)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(media), name


def test_rdflib_reads_the_description_by_its_own_negotiation(server: Server) -> None:
    """A real client: rdflib fetching the endpoint's URL as a document."""
    url = server.url + "/sparql"
    g = rdflib.Graph().parse(url)
    assert (rdflib.URIRef(url), SD.endpoint, rdflib.URIRef(url)) in g


def test_head_and_unacceptable_formats(server: Server) -> None:
    url = server.url + "/sparql"
    head = requests.head(url, headers={"Accept": "text/turtle"}, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/turtle")
    assert head.content == b""
    resp = requests.get(url, headers={"Accept": "image/png"}, timeout=30)
    assert resp.status_code == 406 and "text/turtle" in resp.json()["message"]
