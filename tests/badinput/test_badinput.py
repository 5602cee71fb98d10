"""A corpus of bad requests against a real ``provml serve``, table-driven.

Every route that takes input — the tracker's batches and ProvLake routes, the manager's
import, the SPARQL endpoint, the questions, records and export — gets malformed,
oversized, deeply nested, mistyped and hostile requests. Each must get a 4xx with a JSON
body naming the problem; the store must hold what it held before; and the service must
keep serving (a health check and a good query after each).

The last test prints the counts by route and outcome (and writes them to
``$PROVML_BADINPUT_SUMMARY`` when set).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from query import questions
from tests.conftest import SHA_M, SHARED, Server, full_records, make_batch

pytestmark = pytest.mark.integration

#: the server's request size limit in these tests (PROVML_MAX_REQUEST_BYTES)
LIMIT = 4 * 1024 * 1024
MALFORMED = SHARED / "corpus" / "trungdong-prov" / "malformed"
DEEP = 100_000


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    ctype: str | None = "application/json"
    params: dict[str, Any] | list[tuple[str, str]] = field(default_factory=dict)
    expect: tuple[int, ...] = (400,)
    accept: str | None = None
    #: a 200 answer must hold no rows (a hostile parameter matched nothing)
    no_rows: bool = False

    @property
    def route(self) -> str:
        for prefix in ("/api/v1/questions/", "/api/v1/models/", "/api/v1/datasets/"):
            if self.path.startswith(prefix):
                return prefix + "<…>"
        return self.path.split("?")[0]


def j(obj: Any) -> bytes:
    return orjson.dumps(obj)


def batch(records: list[Any] | None = None, **top: Any) -> dict[str, Any]:
    b = make_batch(records if records is not None else full_records()[:2])
    b.update(top)
    return b


def with_record(**fields: Any) -> bytes:
    rec = dict(full_records()[0])
    rec.update(fields)
    return j(batch([rec]))


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> bytes:
    return (open_ * depth + inner + close * depth).encode()


# ---- the tracker: /api/v1/batches --------------------------------------------------------

B = "/api/v1/batches"
START = full_records()[0]
TRACKER = [
    Case("empty body", "POST", B, b""),
    Case("truncated JSON", "POST", B, j(batch())[:-7]),
    Case("invalid JSON", "POST", B, b"{provml: 1, 'batch': x}"),
    Case("JSON null", "POST", B, b"null"),
    Case("JSON number", "POST", B, b"42"),
    Case("JSON string", "POST", B, b'"a batch"'),
    Case("JSON array", "POST", B, b"[]"),
    Case("empty object", "POST", B, b"{}"),
    Case("NaN", "POST", B, j(batch()).replace(b'"time":1700000000.0', b'"time":NaN', 1)),
    Case("Infinity", "POST", B, j(batch()).replace(b'"time":1700000000.0', b'"time":1e999', 1)),
    Case("huge integer", "POST", B,
         j(batch()).replace(b'"n":1,', b'"n":123456789012345678901234567890,', 1)),
    Case("wrong version", "POST", B, j(batch(provml=2))),
    Case("version as string", "POST", B, j(batch(provml="1"))),
    Case("batch id as number", "POST", B, j(batch(batch=12345))),
    Case("uppercase batch id", "POST", B, j(batch(batch="A" * 32))),
    Case("session not a UUIDv7", "POST", B, j(batch(session="not-a-session"))),
    Case("records as object", "POST", B, j(batch(records={"0": START}))),
    Case("missing records", "POST", B, j({k: v for k, v in batch().items() if k != "records"})),
    Case("unknown top-level field", "POST", B, j(batch(admin=True))),
    Case("record is a string", "POST", B, j(batch(["workflow_start"]))),
    Case("record is null", "POST", B, j(batch([None]))),
    Case("empty compact record", "POST", B, j(batch([[]]))),
    Case("compact record, wrong length", "POST", B, j(batch([["metric", 1, 2]]))),
    Case("unknown record kind", "POST", B, with_record(kind="drop_table")),
    Case("kind as number", "POST", B, with_record(kind=7)),
    Case("missing n", "POST", B, j(batch([{k: v for k, v in START.items() if k != "n"}]))),
    Case("n negative", "POST", B, with_record(n=-1)),
    Case("n too large", "POST", B, with_record(n=2**40)),
    Case("n as string", "POST", B, with_record(n="1")),
    Case("n as boolean", "POST", B, with_record(n=True)),
    Case("time as date string", "POST", B, with_record(time="2026-01-01")),
    Case("time negative", "POST", B, with_record(time=-5)),
    Case("name empty", "POST", B, with_record(name="")),
    Case("name 10k chars", "POST", B, with_record(name="x" * 10_000)),
    Case("params as list", "POST", B, with_record(params=[1, 2])),
    Case("params 2000 entries", "POST", B, with_record(params={f"p{i}": i for i in range(2000)})),
    Case("params nested 40 deep", "POST", B, with_record(params={"a": json.loads(nested(40))})),
    Case("params nested 1000 deep (orjson's limit)", "POST", B,
         j(batch()).replace(b'"owner":"me"', b'"owner":' + nested(1000), 1)),
    Case(f"{DEEP} nested arrays", "POST", B, nested(DEEP)),
    Case(f"{DEEP} nested objects", "POST", B, nested(DEEP, '{"a":', "}", "1")),
    Case(f"records nested {DEEP} deep", "POST", B,
         j(batch()).replace(b'"records":[', b'"records":[' + nested(DEEP) + b",", 1)),
    Case("env with nested value", "POST", B, with_record(env={"a": {"b": 1}})),
    Case("unknown record field", "POST", B, with_record(sql="DROP ALL")),
    Case("data ref, bad sha256", "POST", B,
         with_record(params={"d": {"@data": "file", "sha256": "zz"}})),
    Case("data ref, unknown type", "POST", B,
         with_record(params={"d": {"@data": "virus", "sha256": "a" * 64}})),
    Case("entity ref, space in IRI", "POST", B,
         with_record(params={"e": {"@entity": "https://provml.dev/id/a b"}})),
    Case("entity ref, foreign IRI", "POST", B,
         with_record(params={"e": {"@entity": "javascript:alert(1)"}})),
    Case("entity ref, IRI with >", "POST", B,
         with_record(params={"e": {"@entity": "https://provml.dev/id/x> <a:b> <a:c"}})),
    Case("entity ref with extra keys", "POST", B,
         with_record(params={"e": {"@entity": "https://provml.dev/id/x", "y": 1}})),
    Case("invalid UTF-8", "POST", B, j(batch()).replace(b'"wf"', b'"w\xff\xfe"', 1)),
    Case("lone surrogate escape", "POST", B, j(batch()).replace(b'"wf"', b'"\\ud800"', 1)),
    Case("UTF-16 body", "POST", B, j(batch()).decode().encode("utf-16")),
    Case("not JSON content type", "POST", B, j(batch()), ctype="text/plain"),
    Case("no content type", "POST", B, j(batch()), ctype=None),
    Case("over the size limit", "POST", B, b'{"a":"' + b"x" * (LIMIT + 10) + b'"}',
         expect=(413,)),
    Case("50001 records", "POST", B,
         j(batch([["capture_report", i + 1, 1.0, {}] for i in range(50_001)]))),
    Case("GET on a POST route", "GET", B, None, expect=(405,)),
]  # fmt: skip

# ---- the tracker: ProvLake routes ----------------------------------------------------------

R = "/provlake/retrospective-provenance"
P = "/provlake/prospective-provenance"
RECORD = {"act_type": "task", "dataflow_name": "wf", "prov_obj": {"dt": "train"}}
PROVLAKE = [
    Case("provlake: empty body", "POST", R, b""),
    Case("provlake: truncated", "POST", R, b'[{"act_type": "ta'),
    Case("provlake: object, not array", "POST", R, j(RECORD)),
    Case("provlake: array of numbers", "POST", R, b"[1, 2, 3]"),
    Case("provlake: unknown act_type", "POST", R, j([{**RECORD, "act_type": "job"}])),
    Case("provlake: prov_obj missing", "POST", R, j([{"act_type": "task"}])),
    Case("provlake: prov_obj as list", "POST", R, j([{**RECORD, "prov_obj": []}])),
    Case("provlake: dataflow_name as number", "POST", R, j([{**RECORD, "dataflow_name": 1}])),
    Case("provlake: custom_metadata as list", "POST", R, j([{**RECORD, "custom_metadata": []}])),
    Case(f"provlake: {DEEP} nested arrays", "POST", R, nested(DEEP)),
    Case("provlake: values nested 1000 deep", "POST", R,
         j([{**RECORD, "prov_obj": {"dt": "t", "values": {"x": "@"}}}]).replace(
             b'"@"', nested(1000), 1)),
    Case("provlake: NaN record (Python's json)", "POST", R, b"[NaN]"),
    Case("provlake: invalid UTF-8", "POST", R, b'[{"act_type": "\xff"}]'),
    Case("provlake: with_validation=maybe", "POST", R, j([RECORD]),
         params={"with_validation": "maybe"}),
    Case("provlake: text/plain", "POST", R, j([RECORD]), ctype="text/plain"),
    Case("provlake (root route): not JSON", "POST", "/retrospective-provenance", b"[{"),
    Case("provlake prospective: not JSON", "POST", P, b"{"),
    Case("provlake prospective: array", "POST", P, b"[]"),
    Case("provlake prospective: wrong shape", "POST", P, j({"dataflow_name": 5})),
    Case("provlake prospective: nested", "POST", P, nested(DEEP, '{"a":', "}", "1")),
    Case("provlake prospective: overwrite=perhaps", "POST", P, j({"dataflow_name": "x"}),
         params={"overwrite": "perhaps"}),
]  # fmt: skip

# ---- the manager: /api/v1/import -------------------------------------------------------------

IMP = "/api/v1/import"
FORMATS = {".json": "provjson", ".xml": "provxml", ".rdf": "provxml", ".ttl": "turtle"}
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<prov:document xmlns:prov="http://www.w3.org/ns/prov#" xmlns:ex="http://example.org/">
  <prov:entity prov:id="ex:e"><prov:label>&secret;</prov:label></prov:entity>
</prov:document>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>
<prov:document xmlns:prov="http://www.w3.org/ns/prov#" xmlns:ex="http://example.org/">
  <prov:entity prov:id="ex:e"><prov:label>&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;</prov:label></prov:entity>
</prov:document>"""
IMPORT = [
    Case(f"import: corpus malformed/{p.name}", "POST", IMP, p.read_bytes(), ctype=None,
         params={"format": FORMATS[p.suffix]})
    for p in (sorted(MALFORMED.iterdir()) if MALFORMED.is_dir() else [])
    if p.name != "foreign_vocabulary.ttl"  # valid Turtle, only not PROV: it imports
] + [
    Case("import: no format", "POST", IMP, b"<a:a> <a:b> <a:c> .",
         ctype="application/octet-stream"),
    Case("import: unknown format", "POST", IMP, b"a,b,c", params={"format": "csv"}),
    Case("import: bad base IRI", "POST", IMP, b"<a> <b> <c> .",
         params={"format": "turtle", "base": "not an iri"}),
    # (relative IRIs without ?base= are no longer bad input: they resolve against the
    # document's own base, docs/interop.md)
    Case("import: relative base IRI", "POST", IMP, b"<a> <b> <c> .",
         params={"format": "turtle", "base": "runs/1/"}),
    Case("import: random bytes as Turtle", "POST", IMP, bytes(range(256)) * 4,
         params={"format": "turtle"}),
    Case("import: invalid UTF-8 Turtle", "POST", IMP, b'<a:a> <a:b> "\xff\xfe" .',
         params={"format": "turtle"}),
    Case("import: invalid UTF-8 PROV-N", "POST", IMP, b"document\n entity(ex:\xff)\nendDocument",
         params={"format": "provn"}),
    Case("import: surrogate escape in Turtle", "POST", IMP, b'<a:a> <a:b> "\\uD800" .',
         params={"format": "turtle"}),
    Case("import: IRI with space in N-Triples", "POST", IMP, b"<a:a b> <a:b> <a:c> .\n",
         params={"format": "ntriples"}),
    # well-formed deep nesting is valid Turtle (and imports, without a crash); unclosed:
    Case(f"import: {DEEP} nested Turtle lists, unclosed", "POST", IMP,
         b"<a:a> <a:b> " + b"(" * DEEP + b"1 .", params={"format": "turtle"}),
    Case(f"import: {DEEP} nested blank nodes, unclosed", "POST", IMP,
         b"<a:a> <a:b> " + b"[ <a:p> " * DEEP + b"1 .", params={"format": "turtle"}),
    Case(f"import: PROV-JSON nested {DEEP} deep", "POST", IMP, nested(DEEP, '{"a":', "}", "1"),
         params={"format": "provjson"}),
    Case("import: PROV-JSON nested 900 deep", "POST", IMP,
         b'{"entity": {"ex:e": {"ex:v": ' + nested(900) + b"}}}", params={"format": "provjson"}),
    Case("import: PROV-XML external entity (XXE)", "POST", IMP, XXE, params={"format": "provxml"}),
    Case("import: PROV-XML billion laughs", "POST", IMP, LAUGHS, params={"format": "provxml"}),
    Case("import: PROV-N garbage", "POST", IMP, b"document entity(((( endDocument",
         params={"format": "provn"}),
    Case("import: empty", "POST", IMP, b"   ", params={"format": "trig"}),
    Case("import: over the size limit", "POST", IMP, b"#" * (LIMIT + 10),
         params={"format": "turtle"}, expect=(413,)),
]  # fmt: skip

# ---- the query service ---------------------------------------------------------------------

S = "/sparql"
FORM = "application/x-www-form-urlencoded"
SPARQL = [
    Case("sparql: empty query in the URL", "GET", S, ctype=None, params={"query": ""}),
    Case("sparql: empty query", "POST", S, b"query=", ctype=FORM),
    Case("sparql: syntax error", "POST", S, b"query=SELECT+*+WHERE+%7B", ctype=FORM),
    Case("sparql: two queries", "GET", S, ctype=None,
         params=[("query", "ASK {}"), ("query", "ASK {}")]),
    Case("sparql: update param", "POST", S, b"update=DROP+ALL", ctype=FORM, expect=(403,)),
    Case("sparql: update content type", "POST", S, b"DROP ALL",
         ctype="application/sparql-update", expect=(403,)),
    Case("sparql: LOAD as a query", "POST", S, b"LOAD <http://127.0.0.1:1/>",
         ctype="application/sparql-query", expect=(403,)),
    Case("sparql: SERVICE", "POST", S, b"SELECT * { SERVICE <http://127.0.0.1:1/> {} }",
         ctype="application/sparql-query", expect=(403,)),
    Case("sparql: unknown content type", "POST", S, b"ASK {}", ctype="text/plain"),
    Case("sparql: latin-1 charset", "POST", S, b"ASK {}",
         ctype="application/sparql-query; charset=latin-1"),
    Case("sparql: invalid UTF-8 body", "POST", S, b"ASK { ?s ?p '\xff' }",
         ctype="application/sparql-query"),
    Case("sparql: invalid UTF-8 form", "POST", S, b"query=ASK%7B%FF%7D", ctype=FORM),
    Case("sparql: query in URL and body", "POST", S + "?query=ASK%7B%7D", b"ASK {}",
         ctype="application/sparql-query"),
    Case("sparql: bad graph IRI", "GET", S, ctype=None,
         params={"query": "ASK {}", "default-graph-uri": "not an iri"}),
    Case(f"sparql: {DEEP} nested groups", "POST", S,
         b"SELECT * WHERE " + nested(DEEP, "{", "}", ""), ctype="application/sparql-query",
         expect=(413,)),  # over PROVML_QUERY_MAX_BYTES: refused before any parser
    Case(f"sparql: {DEEP} nested parentheses", "POST", S,
         b"ASK { FILTER(" + nested(DEEP, "(", ")", "1") + b") }",
         ctype="application/sparql-query", expect=(413,)),
    Case("sparql: 20000-step property path", "POST", S,
         b"SELECT * WHERE { ?s " + b"/".join([b"<a:p>"] * 20_000) + b" ?o }",
         ctype="application/sparql-query", expect=(413,)),
    Case("sparql: 20000 UNIONs", "POST", S,
         b"SELECT * WHERE { " + b" UNION ".join([b"{ ?s ?p ?o }"] * 20_000) + b" }",
         ctype="application/sparql-query", expect=(413,)),
    Case("sparql: 20000 additions", "POST", S,
         b"ASK { FILTER(" + b"+".join([b"1"] * 20_000) + b" > 0) }",
         ctype="application/sparql-query"),
    Case("sparql: 300 nested groups", "POST", S, b"ASK " + nested(300, "{", "}", ""),
         ctype="application/sparql-query"),
    Case("sparql: unacceptable Accept", "GET", S, ctype=None, params={"query": "ASK {}"},
         expect=(406,), accept="image/png"),
    Case("sparql: over the size limit", "POST", S, b"ASK {}" + b" " * (LIMIT + 10),
         ctype="application/sparql-query", expect=(413,)),
    Case("sparql: PUT", "PUT", S, b"ASK {}", ctype="application/sparql-query", expect=(405,)),
]  # fmt: skip

Q = "/api/v1/questions/"
#: hostile values for each kind of question parameter
PAYLOADS = {
    "iri": ["> } ; DROP ALL ; <", "https://provml.dev/id/x> ?p ?o } UNION { ?s ?p ?o . <a:b",
            "https://provml.dev/id/x\\u003e", "<https://evil.example/>", "not an iri", "",
            "javascript:alert(1)\n", "a:b\x00c", "https://provml.dev/id/\"x\""],
    "data": ["a" * 7, "z" * 64, "> } UNION { ?s ?p ?o } #", "../../etc/passwd",
             'https://provml.dev/id/x" } #'],
    "string": ['x" } UNION { ?s ?p ?o } #', "x' . ?s ?p ?o", '\\" ) } DROP ALL #',
               "$from", "${model}", "\u202e", "x\\u0022 } UNION { ?s ?p ?o } #"],
    "datetime": ["yesterday", "2026-01-01T00:00:00Z\" ) } UNION { ?s ?p ?o } #",
                 "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01",
                 "$to", ""],
}  # fmt: skip
#: a hostile value is refused (400) or, where it is a well-formed value of its kind (any
#: string; an absolute IRI such as "javascript:alert(1)"), bound as a term that matches
#: nothing, which the answer says (404: it names nothing in the graph) or, when another
#: parameter already did, answers with no rows (200): never part of the query's text
HOSTILE_OK = (200, 400, 404)


def question_cases() -> list[Case]:
    cases = [
        Case("question: unknown", "GET", Q + "drop-all", ctype=None, expect=(404,)),
        Case("question: missing parameter", "GET", Q + "training-data", ctype=None),
        Case("question: unknown parameter", "GET", Q + "training-data", ctype=None,
             params={"model": SHA_M, "top": "5"}),
        Case("question: parameter given twice", "GET", Q + "training-data", ctype=None,
             params=[("model", SHA_M), ("model", SHA_M)]),
    ]  # fmt: skip
    for q in questions.questions().values():
        good = {p.name: {"string": "wf", "datetime": "2026-01-01T00:00:00Z"}.get(p.kind, SHA_M)
                for p in q.params}  # fmt: skip
        for p in q.params:
            for payload in PAYLOADS[p.kind]:
                cases.append(Case(f"question {q.name} {p.name}={payload!r}", "GET", Q + q.name,
                                  ctype=None, params={**good, p.name: payload},
                                  expect=HOSTILE_OK, no_rows=True))  # fmt: skip
    return cases


RECORDS = [
    Case(f"record: model {value!r}", "GET", "/api/v1/models/" + value, ctype=None,
         expect=(400, 404))
    for value in ["> } ; DROP ALL ; <", "not an iri", "a" * 63, "z" * 64,
                  "urn:x%3E%20%3Fp%20%3Fo"]
] + [
    Case(f"record: dataset {value!r}", "GET", "/api/v1/datasets/" + value, ctype=None,
         expect=(400, 404))
    for value in ["> } UNION { ?s ?p ?o } #", "b" * 65]
] + [
    Case(f"export: {name}", "GET", "/api/v1/export", ctype=None, params=params, expect=expect)
    for name, params, expect in [
        ("unknown scope", {"scope": "everything"}, (400,)),
        ("unknown format", {"format": "pdf"}, (400,)),
        ("lineage without id", {"scope": "lineage"}, (400,)),
        ("lineage, injected IRI", {"scope": "lineage", "id": "> } ; DROP ALL ; <"}, (400,)),
        ("lineage, IRI with space", {"scope": "lineage", "id": "https://provml.dev/id/a b"},
         (400,)),
        ("lineage, unknown entity", {"scope": "lineage", "id": "https://provml.dev/id/none"},
         (404,)),
        ("run, injected IRI", {"scope": "run", "id": 'x" } UNION { ?s ?p ?o } #'}, (400,)),
        ("workflow, injected name", {"scope": "workflow", "id": 'wf" } UNION { ?s ?p ?o } #'},
         (404,)),
        ("workflow, quote in name", {"scope": "workflow", "id": "w'f\\"}, (404,)),
        ("unknown parameter", {"scope": "all", "limit": "1"}, (400,)),
        ("scope in header injection", {"scope": 'all"\r\nX-Evil: 1'}, (400,)),
    ]
]  # fmt: skip

CASES = TRACKER + PROVLAKE + IMPORT + SPARQL + question_cases() + RECORDS
OUTCOMES: list[tuple[str, str, int, bool]] = []  # (route, case, status, as expected)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    old = os.environ.get("PROVML_MAX_REQUEST_BYTES")
    os.environ["PROVML_MAX_REQUEST_BYTES"] = str(LIMIT)
    try:
        srv = Server(tmp_path_factory.mktemp("badinput") / "data")
    finally:
        if old is None:
            os.environ.pop("PROVML_MAX_REQUEST_BYTES", None)
        else:
            os.environ["PROVML_MAX_REQUEST_BYTES"] = old
    good = requests.post(srv.url + B, json=make_batch(full_records()), timeout=30)
    assert good.status_code == 200, good.text
    yield srv
    assert srv.stop() == 0, srv.log.read_text()[-3000:]


def quads(server: Server) -> int:
    resp = requests.get(server.url + "/manager/api/v1/stats", timeout=30)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["quads"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name[:90])
def test_bad_input(server: Server, case: Case) -> None:
    before = quads(server)
    headers = {"Content-Type": case.ctype} if case.ctype else {}
    if case.accept:
        headers["Accept"] = case.accept
    try:
        resp = requests.request(case.method, server.url + case.path, data=case.body,
                                params=case.params, headers=headers, timeout=60)  # fmt: skip
        status = resp.status_code
    except requests.ConnectionError:  # a server may close on an oversized body
        status = -1
    ok = status in case.expect or (status == -1 and 413 in case.expect)
    OUTCOMES.append((case.route, case.name, status, ok))
    assert ok, f"{case.name}: HTTP {status} {resp.text[:500]}"
    if status != -1:
        body = resp.json()  # every answer is JSON …
        if status >= 400:  # … and an error names what is wrong
            assert body["error"] and body["message"], body
        elif case.no_rows:
            assert body["results"]["bindings"] == [], body
    # nothing stored, and the service keeps serving
    assert quads(server) == before
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    good = requests.get(server.url + Q + "training-data", params={"model": SHA_M}, timeout=30)
    assert good.status_code == 200 and good.json()["results"]["bindings"]


def test_xml_entities_read_no_file(server: Server, tmp_path: Path) -> None:
    marker = "provml-marker-" + os.urandom(8).hex()
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    doc = XXE.replace(b"file:///etc/hostname", secret.as_uri().encode())
    resp = requests.post(server.url + IMP, params={"format": "provxml"}, data=doc, timeout=30)
    assert resp.status_code == 400 and "DTD" in resp.json()["message"]
    # the same in UTF-7, where "<!DOCTYPE" is "+ADw-!DOCTYPE": no text search finds it
    utf7 = doc.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-7")
    utf7 = b'<?xml version="1.0" encoding="UTF-7"?>' + utf7
    resp = requests.post(server.url + IMP, params={"format": "provxml"}, data=utf7, timeout=30)
    assert resp.status_code == 400 and "encoding it declares" in resp.json()["message"]
    dump = requests.get(server.url + "/api/v1/export", params={"format": "ntriples"}, timeout=60)
    assert dump.status_code == 200 and marker not in dump.text


def test_a_good_batch_still_lands_and_the_summary(server: Server) -> None:
    before = quads(server)
    records = full_records(1_800_000_000.0)
    resp = requests.post(server.url + B, json=make_batch(records), timeout=30)
    assert resp.status_code == 200 and quads(server) > before
    by_route: dict[str, Counter[int]] = {}
    for route, _, status, _ in OUTCOMES:
        by_route.setdefault(route, Counter())[status] += 1
    summary = {
        "tried": len(OUTCOMES),
        "as_expected": sum(ok for *_, ok in OUTCOMES),
        "by_status": dict(Counter(status for _, _, status, _ in OUTCOMES)),
        "by_route": {r: dict(c) for r, c in sorted(by_route.items())},
        "server_alive_after_each": True,
        "store_unchanged_after_each": True,
    }
    print("\nbad-input summary:", json.dumps(summary, indent=1))
    target = os.environ.get("PROVML_BADINPUT_SUMMARY")
    if target:
        Path(target).write_text(json.dumps(summary, indent=1) + "\n")
    assert summary["as_expected"] == summary["tried"] == len(CASES)
