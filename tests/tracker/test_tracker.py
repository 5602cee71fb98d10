"""The tracker through its app factory, with a manager in the same process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from provml.server import build_app
from tests.conftest import full_records, make_batch


@pytest.fixture
def app_client() -> Iterator[tuple[FlaskClient, Any]]:
    app = build_app(store="memory:")
    yield app.test_client(), app.extensions["provml.store"]


def post(client: FlaskClient, body: Any, **kw: Any) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        "/api/v1/batches", data=data, content_type=kw.pop("content_type", "application/json"), **kw
    )


def test_a_batch_is_resolved_and_written(app_client: tuple[FlaskClient, Any]) -> None:
    client, store = app_client
    batch = make_batch(full_records())
    resp = post(client, batch)
    assert resp.status_code == 200, resp.json
    assert resp.json["records"] == len(batch["records"])
    assert resp.json["triples"] > 100
    assert store.count() > 100
    # posting it again (a replay) changes nothing
    before = store.count()
    assert post(client, batch).status_code == 200
    assert store.count() == before
    assert client.get("/api/v1/tracker/stats").json["batches_received"] == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        ({"provml": 99, "batch": "0" * 32, "session": "x", "records": []}, "version"),
        ({**make_batch([]), "records": [{"kind": "teleport", "n": 1}]}, "unknown record kind"),
        ({**make_batch([]), "records": [{"kind": "task_start", "n": 1}]}, "lacks"),
    ],
)
def test_bad_batches_get_400_with_json_and_change_nothing(
    app_client: tuple[FlaskClient, Any], body: Any, fragment: str
) -> None:
    client, store = app_client
    resp = post(client, body)
    assert resp.status_code == 400
    assert resp.json["error"] == "invalid_request"
    assert fragment in resp.json["message"] + " ".join(resp.json.get("details", []))
    assert store.count() == 0


def test_one_bad_record_refuses_the_whole_batch(app_client: tuple[FlaskClient, Any]) -> None:
    client, store = app_client
    records = full_records()
    records[-1]["time"] = "never"
    resp = post(client, make_batch(records))
    assert resp.status_code == 400
    assert f"records[{len(records) - 1}].time" in resp.json["details"][0]
    assert store.count() == 0


def test_wrong_content_type_and_method(app_client: tuple[FlaskClient, Any]) -> None:
    client, _ = app_client
    resp = post(client, make_batch([]), content_type="text/plain")
    assert resp.status_code == 400 and "application/json" in resp.json["message"]
    resp = client.get("/api/v1/batches")
    assert resp.status_code == 405 and resp.json["error"] == "method_not_allowed"
    assert client.get("/nowhere").status_code == 404


def test_healthz_lists_components(app_client: tuple[FlaskClient, Any]) -> None:
    client, _ = app_client
    assert set(client.get("/healthz").json["components"]) == {"tracker", "manager", "query"}
