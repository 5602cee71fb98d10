"""One limit per value and per batch, the same on every path; capture_lib keeps an
oversized value by digest so the rest of the run lands."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

import capture_lib as cl
from provml.core.errors import ValidationError
from provml.core.wire import MAX_BATCH_BYTES, MAX_VALUE_BYTES, TooLarge, parse_batch
from tests.conftest import Server, make_batch, provml_cmd

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


def start(n: int, params: dict[str, object]) -> dict[str, object]:
    return {"kind": "workflow_start", "n": n, "name": "w", "time": 1.0, "params": params}


#: a value just over the limit, and one just under it, as JSON strings
OVER = "x" * MAX_VALUE_BYTES
UNDER = "x" * (MAX_VALUE_BYTES - 2)


def test_the_wire_format_checks_both_limits() -> None:
    parse_batch(orjson.dumps(make_batch([start(1, {"notes": UNDER})])))
    with pytest.raises(ValidationError) as err:
        parse_batch(orjson.dumps(make_batch([start(1, {"ok": 1, "notes": OVER})])))
    assert f"over the limit of {MAX_VALUE_BYTES} bytes per value" in err.value.message
    assert "records[0].params: entry 'notes'" in err.value.message
    many = [start(i, {"notes": UNDER}) for i in range(1, MAX_BATCH_BYTES // MAX_VALUE_BYTES + 2)]
    with pytest.raises(TooLarge) as big:
        parse_batch(orjson.dumps(make_batch(many)))
    assert big.value.status == 413 and f"limit of {MAX_BATCH_BYTES} bytes" in big.value.message


def ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(provml_cmd("ingest", "--quiet", *args),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_every_path_refuses_what_is_over_a_limit(tmp_path: Path, server: Server) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    over_value = orjson.dumps(make_batch([start(1, {"notes": OVER})]))
    count = MAX_BATCH_BYTES // MAX_VALUE_BYTES + 2
    over_batch = orjson.dumps(make_batch([start(i, {"notes": UNDER}) for i in range(1, count)]))
    fine = orjson.dumps(make_batch([start(1, {"notes": "short"})]))
    (logs / "a.jsonl").write_bytes(b"\n".join([over_value, over_batch, fine]) + b"\n")

    def post(body: bytes) -> requests.Response:
        return requests.post(server.url + "/api/v1/batches", data=body, timeout=60,
                             headers={"Content-Type": "application/json"})  # fmt: skip

    assert post(over_value).status_code == 400
    refused = post(over_batch)
    assert refused.status_code == 413 and refused.json()["error"] == "too_large"

    for where in (["--url", server.url], ["--data-dir", str(tmp_path / "direct")]):
        out = ingest(*where, str(logs))
        assert out.returncode == 1, out.stderr
        assert "ingested 1 records in 1 batches" in out.stdout, (where, out.stdout)
        assert "a.jsonl:1" in out.stderr and "a.jsonl:2" in out.stderr, (where, out.stderr)


def test_capture_keeps_an_oversized_value_by_digest(tmp_path: Path, server: Server) -> None:
    big = {"weights": list(range(400_000))}  # ≈ 2.7 MB of JSON
    cl.init(url=server.url, mode="http", path=str(tmp_path / "spool"))
    with cl.workflow("big") as wf:
        with wf.task("train", params={"lr": 0.1, "init": big}) as t:
            t.metric("loss", 0.5)
        # twenty values just under the limit: more than one batch may hold
        for i in range(20):
            with wf.task("note", params={"i": i, "text": UNDER}):
                pass
    assert cl.flush(60)
    stats = cl.stats()
    assert stats["values_digested"] == 1 and stats["refused"] == {} and stats["lost"] == {}
    assert stats["batches_sent"] >= 2  # split under the batch limit
    assert stats["records_sent"] == 2 + 3 + 40
    rows = server.sparql(
        """SELECT ?v WHERE { ?p a provml:AttributeValue ; provml:name "init" ; prov:value ?v }"""
    )
    kept = orjson.loads(rows[0]["v"])
    assert kept["digest_only"] is True and kept["@data"] == "value"
    assert kept["sha256"] == cl.digest(big)["sha256"]  # the node the value itself names
    notes = server.sparql(
        """SELECT (COUNT(?p) AS ?n) WHERE { ?p provml:name "text" ; prov:value ?v }"""
    )
    assert int(notes[0]["n"]) == 20  # values under the limit are kept whole


def test_an_oversized_data_reference_still_names_its_data(tmp_path: Path, server: Server) -> None:
    """A reference with a 2 MiB description: its data lands, named by content, with the
    description kept by digest; the rest of the run lands too."""
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    ref = cl.dataset(data, description="d" * (2 << 20), notes={"long": ["n" * 1000] * 2000})
    cl.init(url=server.url, mode="http", path=str(tmp_path / "spool"))
    with cl.workflow("big-ref") as wf, wf.task("train", used={"data": ref}) as t:
        t.metric("loss", 0.5)
    assert cl.flush(60)
    stats = cl.stats()
    assert stats["values_digested"] == 1 and stats["refused"] == {} and stats["lost"] == {}
    (row,) = server.sparql(
        f"""SELECT ?description ?meta WHERE {{
        <https://provml.dev/id/data/sha256/{ref["sha256"]}> ^prov:entity ?use .
        ?use provml:description ?description ; provml:metadata ?meta }}"""
    )
    assert row["description"].startswith("(kept by digest: sha256 ")
    assert orjson.loads(row["meta"])["notes"]["digest_only"] is True
    assert server.sparql("""SELECT ?v WHERE { ?m provml:name "loss" ; prov:value ?v }""")


def test_a_body_over_the_request_limit_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provml.server import build_app

    monkeypatch.setenv("PROVML_MAX_REQUEST_BYTES", str(1 << 20))
    app = build_app(["manager", "query"], store="memory:")
    body = orjson.dumps(make_batch([start(1, {"notes": "x" * (2 << 20)})]))
    r = app.test_client().post("/api/v1/batches", data=body, content_type="application/json")
    assert r.status_code == 413
    message = r.json["message"]
    assert "PROVML_MAX_REQUEST_BYTES (1048576 bytes)" in message
    assert "cl.digest" in message and str(MAX_VALUE_BYTES) in message


def test_the_trackers_answer_says_how_many_triples_were_stored(server: Server) -> None:
    """The answer docs/wire-format.md shows: records, and the triples they mapped to."""
    batch = make_batch([start(1, {"lr": 0.1})])
    resp = requests.post(server.url + "/api/v1/batches", json=batch, timeout=30)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["records"] == 1 and answer["status"] == "stored"
    assert isinstance(answer["triples"], int) and answer["triples"] > 5


def test_an_import_over_its_limit_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provml.server import build_app

    monkeypatch.setenv("PROVML_IMPORT_MAX_BYTES", "1000")
    client = build_app(["manager"], store="memory:").test_client()
    doc = b"<https://e.org/a> <http://www.w3.org/ns/prov#used> <https://e.org/b> .\n"
    r = client.post("/api/v1/import?format=ntriples", data=doc * 20)
    assert r.status_code == 413 and "PROVML_IMPORT_MAX_BYTES" in r.json["message"]
    r = client.post("/api/v1/import?format=ntriples", data=doc * 5)
    assert r.status_code == 200, r.json
