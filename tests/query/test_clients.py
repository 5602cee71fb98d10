"""Real SPARQL clients against a real ``provml serve`` on loopback: SPARQLWrapper, and
rdflib's SPARQLStore under a Graph, each asking about a workflow provml recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rdflib
from rdflib.namespace import RDF
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, JSONLD, POST, POSTDIRECTLY, TURTLE, URLENCODED, XML, SPARQLWrapper

from manager.service import Manager
from manager.store import open_store
from provml.core import ids
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.server import store_url
from tests.conftest import SHA_M, Server, full_records, make_batch

pytestmark = pytest.mark.integration

PROVML = rdflib.Namespace("https://provml.dev/ns#")
MODEL = rdflib.URIRef(ids.content_iri(SHA_M))
#: the prov: and provml: prefixes are predeclared by the endpoint
TRAINING = "SELECT ?name WHERE { ?t a provml:TrainingExecution ; provml:name ?name }"
HYPERPARAMETERS = f"""SELECT ?name ?value WHERE {{
    <{MODEL}> prov:wasGeneratedBy ?train . ?train prov:used ?p .
    ?p a provml:LearningHyperparameterValue ; provml:name ?name ; prov:value ?value
}} ORDER BY ?name"""
MODELS = "CONSTRUCT WHERE { ?m a provml:Model ; provml:sha256 ?sha }"


def record_workflow(data_dir: Path) -> None:
    """One workflow with every kind of record, written by the manager into the store a
    server on ``data_dir`` opens (the store is closed, and its lock released, on return)."""
    store = open_store(store_url(str(data_dir)))
    try:
        Manager(store).apply(resolve_batch(validate_batch(make_batch(full_records()))))
    finally:
        store.close()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("clients") / "data"
    record_workflow(data_dir)
    srv = Server(data_dir)
    yield srv.url + "/sparql"
    assert srv.stop() == 0, srv.log.read_text()


def wrapper(url: str, query: str, fmt: str, method: str | None = None) -> Any:
    client = SPARQLWrapper(url)
    client.setQuery(query)
    client.setReturnFormat(fmt)
    if method is not None:
        client.setMethod(POST)
        client.setRequestMethod(method)
    return client.query().convert()


@pytest.mark.parametrize("method", [None, URLENCODED, POSTDIRECTLY], ids=["GET", "form", "direct"])
def test_sparqlwrapper_select_json(endpoint: str, method: str | None) -> None:
    result = wrapper(endpoint, TRAINING, JSON, method)
    assert result["head"]["vars"] == ["name"]
    assert [b["name"]["value"] for b in result["results"]["bindings"]] == ["train"]
    rows = wrapper(endpoint, HYPERPARAMETERS, JSON, method)["results"]["bindings"]
    assert [(b["name"]["value"], b["value"]["value"]) for b in rows] == [
        ("epochs", "2"),
        ("layers", "[8,4]"),
        ("lr", "0.1"),
    ]


def test_sparqlwrapper_select_xml(endpoint: str) -> None:
    doc = wrapper(endpoint, TRAINING, XML)
    literals = doc.getElementsByTagName("literal")
    assert [n.firstChild.data for n in literals] == ["train"]


@pytest.mark.parametrize("fmt", [JSON, XML])
def test_sparqlwrapper_ask(endpoint: str, fmt: str) -> None:
    def ask(query: str) -> bool:
        answer = wrapper(endpoint, query, fmt)
        if fmt == JSON:
            return bool(answer["boolean"])
        return str(answer.getElementsByTagName("boolean")[0].firstChild.data) == "true"

    assert ask(f"ASK {{ <{MODEL}> a provml:Model }}") is True
    assert ask(f"ASK {{ <{MODEL}> a provml:Dataset }}") is False


@pytest.mark.parametrize("fmt", [XML, TURTLE, JSONLD])
def test_sparqlwrapper_construct(endpoint: str, fmt: str) -> None:
    result = wrapper(endpoint, MODELS, fmt)
    if fmt == TURTLE:  # SPARQLWrapper hands Turtle over as bytes
        result = rdflib.Graph().parse(data=result, format="turtle")
    assert set(result) == {
        (MODEL, RDF.type, PROVML.Model),
        (MODEL, PROVML.sha256, rdflib.Literal(SHA_M)),
    }


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
def test_rdflib_sparqlstore(endpoint: str, method: Any) -> None:
    g = rdflib.Graph(store=SPARQLStore(endpoint, method=method))
    assert [str(row.name) for row in g.query(TRAINING)] == ["train"]  # type: ignore[union-attr]
    assert g.query(f"ASK {{ <{MODEL}> a provml:Model }}").askAnswer is True
    constructed = g.query(MODELS).graph
    assert constructed is not None and (MODEL, RDF.type, PROVML.Model) in constructed
    # triple patterns, answered by SELECT and ASK queries the store writes itself
    assert (MODEL, RDF.type, PROVML.Model) in g
    assert set(g.objects(MODEL, PROVML.sha256)) == {rdflib.Literal(SHA_M)}
    assert PROVML.Model in set(g.objects(MODEL, RDF.type))
    count = g.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")
    assert len(g) == int(next(iter(count)).n) > 50  # type: ignore[union-attr]
