"""One captured world for the browser's endpoint tests (read only: shared by them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from query.app import create_app
from tests.query.web import world as worlds
from tests.query.web.world import World


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return worlds.build(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="package")
def client(world: World) -> Iterator[FlaskClient]:
    yield create_app({"store": world.store}).test_client()
