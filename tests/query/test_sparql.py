"""The SPARQL 1.1 Protocol endpoint and the named questions, through the app factory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import rdflib
from flask.testing import FlaskClient

from manager.service import Manager
from provml.core import ids
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.server import build_app
from tests.conftest import SHA_M, full_records, make_batch

SELECT = "SELECT ?name WHERE { ?t a provml:TrainingExecution ; provml:name ?name }"
CONSTRUCT = "CONSTRUCT { ?m a provml:Model } WHERE { ?m a provml:Model }"


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    app = build_app(["manager", "query"], store="memory:")
    manager: Manager = app.extensions["provml.manager"]
    manager.apply(resolve_batch(validate_batch(make_batch(full_records()))))
    yield app.test_client()


def names(resp_json: dict) -> list[str]:  # type: ignore[type-arg]
    return [b["name"]["value"] for b in resp_json["results"]["bindings"]]


def test_get_post_form_and_post_direct(client: FlaskClient) -> None:
    r1 = client.get("/sparql?query=" + quote(SELECT))
    r2 = client.post("/sparql", data={"query": SELECT})
    r3 = client.post("/sparql", data=SELECT, content_type="application/sparql-query")
    for r in (r1, r2, r3):
        assert r.status_code == 200
        assert r.mimetype == "application/sparql-results+json"
        assert names(r.json) == ["train"]


@pytest.mark.parametrize(
    ("accept", "mimetype"),
    [
        ("application/sparql-results+xml", "application/sparql-results+xml"),
        ("text/csv", "text/csv"),
        ("text/tab-separated-values", "text/tab-separated-values"),
        ("application/json", "application/json"),
        ("*/*", "application/sparql-results+json"),
    ],
)
def test_select_formats(client: FlaskClient, accept: str, mimetype: str) -> None:
    r = client.post("/sparql", data={"query": SELECT}, headers={"Accept": accept})
    assert r.status_code == 200 and r.mimetype == mimetype
    text = r.get_data(as_text=True)
    assert "train" in text
    if mimetype == "text/csv":
        assert list(csv.reader(io.StringIO(text))) == [["name"], ["train"]]


def test_ask(client: FlaskClient) -> None:
    r = client.get("/sparql", query_string={"query": "ASK { ?m a provml:Model }"})
    assert r.json == {"head": {}, "boolean": True}


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        ("text/turtle", "turtle"),
        ("application/n-triples", "nt"),
        ("application/ld+json", "json-ld"),
    ],
)
def test_construct_formats(client: FlaskClient, accept: str, fmt: str) -> None:
    r = client.post("/sparql", data={"query": CONSTRUCT}, headers={"Accept": accept})
    assert r.status_code == 200 and r.mimetype == accept
    g = rdflib.Graph().parse(data=r.get_data(as_text=True), format=fmt)
    assert (
        rdflib.URIRef(ids.content_iri(SHA_M)),
        rdflib.RDF.type,
        rdflib.URIRef("https://provml.dev/ns#Model"),
    ) in g


def test_unacceptable_format(client: FlaskClient) -> None:
    r = client.post("/sparql", data={"query": SELECT}, headers={"Accept": "image/png"})
    assert r.status_code == 406 and r.json["error"] == "not_acceptable"


@pytest.mark.parametrize(
    "request_kw",
    [
        {"data": {"update": "INSERT DATA { <a:a> <a:b> <a:c> }"}},
        {"data": "INSERT DATA { <a:a> <a:b> <a:c> }", "content_type": "application/sparql-update"},
        {"data": "DROP ALL", "content_type": "application/sparql-update"},
    ],
)
def test_updates_are_refused(client: FlaskClient, request_kw: dict) -> None:  # type: ignore[type-arg]
    before = client.post("/sparql", data={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json
    r = client.post("/sparql", **request_kw)
    assert r.status_code == 403 and "read-only" in r.json["message"]
    after = client.post("/sparql", data={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json
    assert before == after


@pytest.mark.parametrize(
    "text",
    [
        "INSERT DATA { <a:a> <a:b> <a:c> }",
        "# a comment\nPREFIX ex: <http://e/>\ndrop  ALL",
        "BASE <http://e/> WITH <g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_update_text_as_a_query_is_refused_as_an_update(client: FlaskClient, text: str) -> None:
    """Not "expected CONSTRUCT" (what the parser says of an update): read-only, 403."""
    r = client.post("/sparql", data={"query": text})
    assert r.status_code == 403 and r.json["error"] == "forbidden"
    assert "read-only" in r.json["message"]


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"method": "GET", "path": "/sparql?query="}, 400),
        ({"method": "GET", "path": "/sparql?query=SELECT&query=ASK"}, 400),
        ({"method": "POST", "path": "/sparql", "data": "x", "content_type": "text/plain"}, 400),
        ({"method": "GET", "path": "/sparql?query=" + quote("SELECT * WHERE { ?s ?p")}, 400),
    ],
)
def test_bad_requests(client: FlaskClient, kw: dict, status: int) -> None:  # type: ignore[type-arg]
    r = client.open(**kw)
    assert r.status_code == status
    assert r.is_json and r.json["message"]


def test_named_questions(client: FlaskClient) -> None:
    listed = {q["name"] for q in client.get("/api/v1/questions").json["questions"]}
    assert {"training-data", "hyperparameters", "prediction-model"} <= listed
    r = client.get("/api/v1/questions/training-data", query_string={"model": SHA_M})
    assert r.status_code == 200
    rows = r.json["results"]["bindings"]
    assert [(b["role"]["value"], b["sha256"]["value"]) for b in rows] == [("data", "c" * 64)]
    r = client.get(
        "/api/v1/questions/hyperparameters", query_string={"model": ids.content_iri(SHA_M)}
    )
    assert sorted(b["name"]["value"] for b in r.json["results"]["bindings"]) == [
        "epochs",
        "layers",
        "lr",
    ]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/questions/nope", {}, 404),
        ("/api/v1/questions/training-data", {}, 400),
        ("/api/v1/questions/training-data", {"model": "> } ; DROP ALL ; <"}, 400),
        ("/api/v1/questions/training-data", {"model": "x", "extra": "1"}, 400),
        ("/api/v1/questions/prediction-model", {"prediction": "not an iri"}, 400),
    ],
)
def test_question_parameters_are_checked(
    client: FlaskClient,
    path: str,
    params: dict,
    status: int,  # type: ignore[type-arg]
) -> None:
    r = client.get(path, query_string=params)
    assert r.status_code == status, r.json
    assert json.loads(r.get_data())["message"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }",
        "select * where { service silent <http://127.0.0.1:9/> { ?s ?p ?o } }",
    ],
)
def test_federated_queries_are_refused(client: FlaskClient, query: str) -> None:
    r = client.post("/sparql", data={"query": query})
    assert r.status_code == 403 and "SERVICE" in r.json["message"]


def test_the_word_service_in_strings_and_iris_is_fine(client: FlaskClient) -> None:
    q = 'SELECT * WHERE { ?s <http://example.org/service> "SERVICE" } # SERVICE'
    assert client.post("/sparql", data={"query": q}).status_code == 200
