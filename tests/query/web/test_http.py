"""The browser's JSON endpoints over real HTTP (waitress), with access tokens: each needs
a token with the read scope; errors are JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from provml.server import build_app
from provml.web import auth
from tests.cli.conftest import LiveServer
from tests.query.web import world as worlds
from tests.query.web.world import World

READER, WRITER = "r" * 40, "w" * 40


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, World]]:
    tmp: Path = tmp_path_factory.mktemp("http")
    world = worlds.build(tmp)
    tokens = auth.load(None, f"{READER} read reader\n{WRITER} capture writer")
    srv = LiveServer(build_app(("query",), store=world.store, tokens=tokens))
    yield srv, world
    srv.stop()


def _urls(world: World) -> list[str]:
    uuid = world.runs["alice-1"].rsplit("/", 1)[1]
    return [
        "/api/v1/runs?limit=2&sort=-started",
        f"/api/v1/runs/{uuid}",
        f"/api/v1/lineage?node={world.sha['raw']}&direction=down&depth=2",
        f"/api/v1/lineage/fold?node={world.sha['raw']}&relation=used&direction=down&limit=2",
        "/api/v1/search?q=pipeline",
    ]


def test_each_route_needs_a_read_token(live: tuple[LiveServer, World]) -> None:
    srv, world = live
    for path in _urls(world):
        anonymous = requests.get(srv.url + path, timeout=30)
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"]
        writer = requests.get(
            srv.url + path, headers={"Authorization": f"Bearer {WRITER}"}, timeout=30
        )
        assert writer.status_code == 403, path
        ok = requests.get(srv.url + path, headers={"Authorization": f"Bearer {READER}"}, timeout=30)
        assert ok.status_code == 200, (path, ok.text)
        assert ok.headers["Content-Type"].startswith("application/json")


def test_over_http_the_answers_are_whole(live: tuple[LiveServer, World]) -> None:
    srv, world = live
    headers = {"Authorization": f"Bearer {READER}"}
    body = requests.get(
        srv.url + "/api/v1/runs", params={"user": "alice", "limit": 2}, headers=headers, timeout=30
    ).json()
    assert body["total"] == 3 and len(body["runs"]) == 2 and body["more"] is True
    # a run by its IRI in the path
    r = requests.get(srv.url + "/api/v1/runs/" + world.runs["bob"], headers=headers, timeout=30)
    assert r.status_code == 200 and r.json()["run"]["user"] == "bob"
    for path, status in (
        ("/api/v1/runs?sort=size", 400),
        ("/api/v1/runs/ffffffff-0000", 404),
        ("/api/v1/lineage?node=https://example.org/x", 404),
        ("/api/v1/search", 400),
    ):
        r = requests.get(srv.url + path, headers=headers, timeout=30)
        assert r.status_code == status, (path, r.text)
        assert set(r.json()) >= {"error", "message"}
