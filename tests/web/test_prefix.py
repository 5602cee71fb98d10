"""The pages behind a reverse proxy under a path prefix (SCRIPT_NAME): every link, form,
script and stylesheet stays under the prefix. No browser needed: the HTML is read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from provml.server import build_app, close_app
from tests.cli.conftest import load
from tests.conftest import SHA_M, full_records, make_batch

PREFIX = "/prov"
_URL = re.compile(r'(?:href|src|action)="([^"]*)"')


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    tmp: Path = tmp_path_factory.mktemp("prefix")
    app = build_app(store="memory:", queue_dir=str(tmp / "queue"))
    load(app, make_batch(full_records()))
    yield app.test_client()
    close_app(app, timeout=5)


def _local_urls(html: str) -> list[str]:
    return [u for u in _URL.findall(html) if not u.startswith(("http:", "https:", "data:", "#"))]


@pytest.mark.parametrize(
    "path",
    ["/lineage", "/search", "/compare", f"/models/{SHA_M}", "/no/such/page", "/models/" + "0" * 64],
)
def test_every_url_of_a_page_keeps_the_prefix(client: FlaskClient, path: str) -> None:
    resp = client.get(
        path, base_url=f"http://proxy.example{PREFIX}/", headers={"Accept": "text/html"}
    )
    assert resp.status_code in (200, 404), resp.text
    assert resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    urls = _local_urls(html)
    assert urls, "a page with no links"
    outside = [u for u in urls if not u.startswith(PREFIX + "/")]
    assert not outside, f"URLs outside {PREFIX}: {outside}"
    assert f'data-root="{PREFIX}"' in html  # what the scripts put before the API's paths


def test_a_page_error_is_html_and_an_api_error_json(client: FlaskClient) -> None:
    page = client.get("/lineage?node=x&direction=sideways", headers={"Accept": "text/html"})
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "direction" in page.get_data(as_text=True)
    missing = client.get("/api/v1/models/" + "0" * 64, headers={"Accept": "text/html"})
    assert missing.status_code == 404 and missing.json["error"] == "not_found"
    nowhere = client.get("/nowhere")  # no Accept: not a browser
    assert nowhere.status_code == 404 and nowhere.json["error"] == "not_found"


def test_with_tokens_the_pages_need_one_and_their_assets_do_not(tmp_path: Path) -> None:
    """The stylesheet and scripts are open (the sign-in page needs them); a page needs a
    token with the read scope, as the JSON it is made from does (without one a browser
    is sent to sign in)."""
    from provml.web import auth

    token = "r" * 32
    app = build_app(store="memory:", queue_dir=str(tmp_path / "queue"),
                    tokens=auth.load(env_value=f"{token} read reader"))  # fmt: skip
    try:
        client = app.test_client()
        for asset in ("/assets/css/site.css", "/assets/vendor/VENDORED.md"):
            with client.get(asset) as resp:  # a file's stream: closed
                assert resp.status_code == 200, asset
        away = client.get("/search", headers={"Accept": "text/html"})
        assert away.status_code == 303 and "/signin" in away.headers["Location"]
        page = client.get("/search", headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200 and page.mimetype == "text/html"
    finally:
        close_app(app, timeout=5)
