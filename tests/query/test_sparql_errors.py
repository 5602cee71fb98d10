"""SPARQL that cannot run gets one readable line: where, what was expected, what was
found — on the endpoint, in the SERVICE check, and in ``provml query``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from provml.cli import main
from query.app import create_app


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    with create_app().test_client() as c:
        yield c


def error_of(client: FlaskClient, query: str) -> str:
    r = client.post("/sparql", data={"query": query})
    assert r.status_code == 400, r.json
    message: str = r.json["message"]
    assert "\n" not in message and "\\u{" not in message and "'..='" not in message
    return message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # pyoxigraph: "error at 1:10: expected CONSTRUCT"
        (
            "SELEC * {}",
            "line 1, column 1: expected SELECT, CONSTRUCT, DESCRIBE or ASK, found 'SELEC'",
        ),
        ("# why\nPREFIX ex: <http://e/>\n  slect ?x {}", "line 3, column 3: expected SELECT"),
        # pyoxigraph: a list of Unicode ranges, or "expected OPTIONAL"
        ("SELECT * WHERE { ?s foo:bar ?o }", "line 1, column 21: unknown prefix foo: (declare"),
        (
            "PREFIX ex: <http://e/>\nSELECT * { ?s ex:p ?o . ?s é:x ?z }",
            "line 2, column 28: unknown prefix é:",
        ),
        ("SELECT * WHERE { ?s :p ?o }", "line 1, column 21: unknown prefix :"),
        ("SELECT * WHERE {\n  ?s ?p ?o ", "line 2, column 12: expected one of ',', '.', ';', '{'"),
        ("select * where { ?s ?p ?o } limit x", "expected one of HAVING, OFFSET"),
        # the parser reports the end of the query for both
        (
            "SELECT ?s WHERE { ?s ?p ?o } LIMT 5",
            "column 30: 'LIMT' is no SPARQL keyword or function (did you mean LIMIT?)",
        ),
        (
            'SELECT ?s WHERE {\n ?s ?p "abc }',
            "line 2, column 8: a string starts here and is not closed on its line",
        ),
        ('SELECT ?s { ?s ?p "x"@en FILTER(contans(?s, "a")) }', "'contans' is no SPARQL"),
    ],
)
def test_syntax_errors_are_one_readable_line(
    client: FlaskClient, query: str, expected: str
) -> None:
    message = error_of(client, query)
    assert message.startswith("SPARQL syntax error: ")
    assert expected in message, message


def test_predeclared_prefixes_are_no_unknown_prefix(client: FlaskClient) -> None:
    message = error_of(client, "SELECT * WHERE { ?s a prov:Entity ; provml:name ?n ")
    assert "unknown prefix" not in message and "found the end of the query" in message


def test_a_query_mentioning_service_that_does_not_parse_says_where(client: FlaskClient) -> None:
    """The SERVICE check's parser (rdflib) cannot read it: refused, and says where."""
    r = client.post("/sparql", data={"query": "SELECT ?service WHERE {\n ?service ?p }"})
    assert r.status_code == 403, r.json
    message = r.json["message"]
    assert "\n" not in message and "line 2, column 2 (found '?service')" in message


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <a:a> <a:b> <a:c> }",
        "PREFIX ex: <http://e/>\nDROP GRAPH ex:g",
        "load <http://e/>",
    ],
)
def test_provml_query_refuses_an_update_in_one_line(tmp_path: Path, update: str) -> None:
    result = CliRunner().invoke(main, ["query", update, "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "read-only" in lines[0], result.output
    assert "expected" not in lines[0]
