"""provml.client against a real provml server running in this process."""

from __future__ import annotations

import ast
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import provml.client
from provml.client import ClientError, Exported, ProvmlClient, with_details
from provml.core.errors import ProvmlError
from provml.web import auth
from tests.cli.conftest import LiveServer, serve
from tests.conftest import SHA_M, free_port, full_records, make_batch

TURTLE = b"""@prefix prov: <http://www.w3.org/ns/prov#> .
<http://example.org/cake> a prov:Entity ; prov:wasGeneratedBy <http://example.org/baking> .
<http://example.org/baking> a prov:Activity .
"""


@pytest.fixture
def client(live: LiveServer) -> Iterator[ProvmlClient]:
    with ProvmlClient(live.url + "/") as c:  # a trailing slash is no part of the paths
        yield c


def test_health(client: ProvmlClient) -> None:
    assert client.url.endswith(":" + client.url.rsplit(":", 1)[1])
    assert not client.url.endswith("/")
    assert client.health() is True


def test_nothing_listening_is_a_client_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClientError) as info:
        ProvmlClient(url).health()
    err = info.value
    assert isinstance(err, ProvmlError)
    assert err.unreachable and not err.refused
    assert err.cause == "ConnectionError"
    assert err.message.startswith(f"cannot reach {url}: ")
    assert err.reason and err.reason in err.message


def test_sparql_select_ask_and_construct(client: ProvmlClient) -> None:
    table = client.sparql("SELECT ?m WHERE { ?m a provml:Model }")
    assert isinstance(table, dict)
    values = [b["m"]["value"] for b in table["results"]["bindings"]]
    assert values == [f"https://provml.dev/id/data/sha256/{SHA_M}"]
    assert client.sparql("ASK { ?m a provml:Model }") == {"head": {}, "boolean": True}
    graph = client.sparql("CONSTRUCT { ?m a provml:Model } WHERE { ?m a provml:Model }")
    assert isinstance(graph, str)
    assert SHA_M in graph and "provml:Model" in graph


def test_a_bad_query_is_refused_with_the_services_message(client: ProvmlClient) -> None:
    with pytest.raises(ClientError) as info:
        client.sparql("SELECT nonsense")
    err = info.value
    assert err.refused and err.status_code == 400
    assert err.error_code == "invalid_query"
    assert err.message.startswith("400: ")
    assert err.message[5:].startswith(err.body["message"])


def test_ask_pages(client: ProvmlClient) -> None:
    everything = client.ask("runs", {})
    assert len(everything["results"]["bindings"]) == 2
    first, more = client.ask_page("runs", {"limit": "1"})
    assert len(first["results"]["bindings"]) == 1 and more
    second, more = client.ask_page("runs", {"limit": "1", "offset": "1"})
    assert len(second["results"]["bindings"]) == 1 and not more
    assert first["results"]["bindings"] != second["results"]["bindings"]
    data = client.ask("training-data", {"model": SHA_M[:8]})
    assert {b["sha256"]["value"] for b in data["results"]["bindings"]} == {"c" * 64}


def test_records(client: ProvmlClient) -> None:
    record = client.record("model", SHA_M[:12])
    assert record["sha256"] == SHA_M
    assert record["framework"] == "sklearn"
    assert len(record["trainings"]) == 2
    dataset = client.record("dataset", "c" * 64)
    assert dataset["sha256"] == "c" * 64
    with pytest.raises(ClientError) as info:
        client.record("model", "9" * 10)
    assert info.value.status_code == 404 and info.value.error_code == "not_found"
    assert info.value.message.startswith("404: no data in the graph has a SHA-256 starting")


def test_post_batch(client: ProvmlClient) -> None:
    import json

    answer = client.post_batch(json.dumps(make_batch(full_records())).encode())
    assert answer["records"] == len(full_records())
    assert answer["status"] == "stored"
    with pytest.raises(ClientError) as info:
        client.post_batch(b'{"provml": 1}')
    err = info.value
    assert err.status_code == 400 and err.error_code == "invalid_request"
    lines = err.message.splitlines()
    assert lines[0].startswith("400: invalid batch")
    assert "  records: must be an array" in lines[1:]


def test_import_then_export(client: ProvmlClient) -> None:
    done = client.import_document(TURTLE, "turtle")
    assert done["triples"] == 3
    exported = client.export("document", done["document"], "ntriples")
    assert isinstance(exported, Exported)
    assert exported.unexpressed == 0
    text = exported.data.decode()
    assert "<http://example.org/cake>" in text and "<http://example.org/baking>" in text
    trig = client.export("document", done["document"], "trig").data.decode()
    assert "example.org/cake" in trig
    again = client.import_document(TURTLE, "turtle", base="http://example.org/base/")
    assert again["document"] != done["document"]


def test_a_document_that_cannot_be_read_is_refused(client: ProvmlClient) -> None:
    with pytest.raises(ClientError) as info:
        client.import_document(b"this is no turtle", "turtle")
    assert info.value.refused and info.value.status_code == 400
    with pytest.raises(ClientError) as info:
        client.export("run", None)  # a run needs an id
    assert info.value.status_code == 400


def test_the_token_is_sent(tmp_path: Path) -> None:
    secret = auth.new_token()
    srv = serve(tmp_path, tokens=auth.load(None, f"{secret} read,capture tester"))
    try:
        with pytest.raises(ClientError) as info:
            ProvmlClient(srv.url).ask("runs", {})
        assert info.value.status_code == 401
        assert secret not in info.value.message
        with ProvmlClient(srv.url, token=secret) as c:
            assert len(c.ask("runs", {})["results"]["bindings"]) == 2
        assert ProvmlClient(srv.url).health()  # the health check needs no token
    finally:
        srv.stop()


class _NotProvml(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_that_is_no_json() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotProvml)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with pytest.raises(ClientError) as info:
            ProvmlClient(url).ask("runs", {})
        assert info.value.message == (
            f"{url}/api/v1/questions/runs did not answer with SPARQL JSON results "
            "(is it a provml service?)"
        )
        assert info.value.status_code == 200 and not info.value.refused
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_with_details() -> None:
    assert with_details("bad", None) == "bad"
    assert with_details("bad", []) == "bad"
    assert with_details("bad", ["a", "b"]) == "bad\n  a\n  b"
    many = with_details("bad", [str(i) for i in range(25)]).splitlines()
    assert len(many) == 22 and many[-2] == "  19" and many[-1] == "  … and 5 more"


def test_the_client_does_not_use_click() -> None:
    tree = ast.parse(Path(provml.client.__file__).read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert "requests" in modules
    assert "click" not in modules
