"""GET /api/v1/export through the query app: strict, the Provml-Unexpressed headers, and
scope=document."""

from __future__ import annotations

import pytest

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from query.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore")  # prov warns about minted prefixes

MIXED = b"""@prefix prov: <http://www.w3.org/ns/prov#> . @prefix ex: <http://example.org/> .
ex:e a prov:Entity ; ex:about ex:thing . ex:thing a ex:Gadget ; ex:colour "red" ."""


def test_export_leaves_out_and_counts_or_refuses_under_strict() -> None:
    store = OxigraphStore(None)
    doc = Manager(store).import_document(MIXED, "turtle", None)["document"]
    client = create_app({"store": store}).test_client()
    for scope, ident in (("all", None), ("document", doc)):
        params = {"scope": scope, "format": "provn"} | ({"id": ident} if ident else {})
        r = client.get("/api/v1/export", query_string=params)
        assert r.status_code == 200, r.json
        assert r.headers["Provml-Unexpressed"] == "2"  # ex:thing's type and colour
        assert "example.org/thing" in r.headers["Provml-Unexpressed-Sample"]
        assert b"entity(" in r.data
        strict = client.get("/api/v1/export", query_string=params | {"strict": "true"})
        assert strict.status_code == 422 and "example.org/thing" in strict.json["message"]
    r = client.get("/api/v1/export", query_string={"format": "turtle"})
    assert r.headers["Provml-Unexpressed"] == "0" and b"red" in r.data
    bad = client.get("/api/v1/export", query_string={"format": "provn", "strict": "maybe"})
    assert bad.status_code == 400 and "strict" in bad.json["message"]
    missing = client.get("/api/v1/export", query_string={"scope": "document", "id": "a" * 64})
    assert missing.status_code == 404
