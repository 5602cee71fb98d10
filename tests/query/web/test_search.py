"""/api/v1/search: by name, path, hash prefix, workflow, user, run id and IRI."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.query.web.world import World


def find(client: FlaskClient, q: str, **more: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/search", query_string={"q": q, **more})
    assert r.status_code == 200, r.json
    results: list[dict[str, Any]] = r.json["results"]
    return results


def test_by_hash_prefix(client: FlaskClient, world: World) -> None:
    (hit,) = find(client, world.sha["alice-1-model"][:8])
    assert hit["id"] == world.iri("alice-1-model") and hit["kind"] == "model"
    assert hit["match"] == "hash" and hit["sha256"] == world.sha["alice-1-model"]
    assert hit["url"] == "/models/" + world.sha["alice-1-model"]
    (raw,) = find(client, "sha256:" + world.sha["raw"][:12].upper())
    assert raw["kind"] == "data" and raw["url"] == "/datasets/" + world.sha["raw"]


def test_by_workflow_and_user(client: FlaskClient) -> None:
    hits = find(client, "PIPE")
    workflow = [h for h in hits if h["match"] == "workflow"]
    assert [(h["label"], h["kind"], h["runs"]) for h in workflow] == [("pipeline", "workflow", 3)]
    assert workflow[0]["url"] == "/?workflow=pipeline"
    (carol,) = [h for h in find(client, "caro") if h["match"] == "user"]
    assert (
        carol["kind"] == "person" and carol["label"] == "carol" and carol["url"] == "/?user=carol"
    )


def test_by_name_and_path(client: FlaskClient, world: World) -> None:
    tasks = [h for h in find(client, "train") if h["kind"] == "task"]
    assert [(h["label"], h["match"], h["workflow"]) for h in tasks] == [
        ("train", "name", "pipeline")
    ]
    assert tasks[0]["url"] == "/?workflow=pipeline"
    paths = [h for h in find(client, "alice-2/model") if h["match"] == "path"]
    assert [h["id"] for h in paths] == [world.iri("alice-2-model")]
    assert paths[0]["kind"] == "model" and paths[0]["label"].endswith("alice-2/model.pkl")
    assert find(client, "no such thing anywhere") == []


def test_by_run_id_and_iri(client: FlaskClient, world: World) -> None:
    uuid = world.runs["island"].rsplit("/", 1)[1]
    (hit,) = find(client, uuid)
    assert hit["id"] == world.runs["island"] and hit["kind"] == "run" and hit["match"] == "iri"
    assert hit["url"] == "/runs/" + uuid
    (hit,) = [h for h in find(client, world.iri("own")) if h["match"] == "iri"]
    assert hit["id"] == world.iri("own") and hit["kind"] == "data"


def test_limit(client: FlaskClient) -> None:
    assert len(find(client, "a")) > 3
    assert len(find(client, "a", limit=3)) == 3


@pytest.mark.parametrize(
    "query",
    ["", "q=", "q=%20", "q=x&limit=0", "q=x&limit=201", "q=x&limit=y", "q=x&colour=red", "q=a&q=b"],
)
def test_bad_searches_are_400(client: FlaskClient, query: str) -> None:
    r = client.get("/api/v1/search?" + query)
    assert r.status_code == 400 and r.json["error"] and r.json["message"]
