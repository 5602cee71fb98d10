"""The browser's sign-in (docs/web.md, "Signing in") and serving under a path prefix,
against real servers: a read token kept in an HttpOnly, SameSite=Strict cookie that
the service takes for reading only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.test_security import (
    ADMIN_TOKEN,
    ALL_TOKENS,
    BOTH_TOKEN,
    CAPTURE_TOKEN,
    READ_TOKEN,
    TURTLE,
    VerboseServer,
    tokens_file,
)

pytestmark = pytest.mark.integration

COOKIE = "provml_session"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerboseServer]:
    home = tmp_path_factory.mktemp("signin")
    srv = VerboseServer(home / "data", "--tokens-file", str(tokens_file(home)))
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def sign_in(url: str, token: str, next_: str = "/") -> requests.Response:
    return requests.post(
        url + "/signin", data={"token": token, "next": next_}, allow_redirects=False, timeout=10
    )


def session(resp: requests.Response) -> requests.Session:
    s = requests.Session()
    s.cookies.set(COOKIE, resp.cookies[COOKIE])
    return s


def test_the_form_is_open_and_not_cached(server: VerboseServer) -> None:
    resp = requests.get(server.url + "/signin?next=/runs", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert 'name="token"' in resp.text and 'value="/runs"' in resp.text


@pytest.mark.parametrize("token, status", [("", 400), ("not-a-token", 401), (CAPTURE_TOKEN, 403)])
def test_a_token_that_may_not_read_sets_no_cookie(
    server: VerboseServer, token: str, status: int
) -> None:
    resp = sign_in(server.url, token)
    assert resp.status_code == status
    assert COOKIE not in resp.cookies
    assert 'role="alert"' in resp.text
    for secret in ALL_TOKENS:
        assert secret not in resp.text


def test_a_read_token_signs_in_with_a_strict_httponly_cookie(server: VerboseServer) -> None:
    resp = sign_in(server.url, READ_TOKEN, "/api/v1/questions?x=1")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/api/v1/questions?x=1")
    header = resp.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    reader = session(resp)
    assert reader.get(server.url + "/api/v1/questions", timeout=10).status_code == 200
    ask = reader.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=10)
    assert ask.status_code == 200


def test_the_cookie_never_writes_nor_stands_beside_a_header(server: VerboseServer) -> None:
    """Even an admin token in the cookie reads only: a POST (a query, an import, a
    batch) needs the Authorization header."""
    for token in (READ_TOKEN, ADMIN_TOKEN, BOTH_TOKEN):
        s = session(sign_in(server.url, token))
        resp = s.post(server.url + "/sparql", data={"query": "ASK {}"}, timeout=10)
        assert resp.status_code == 401, token
        resp = s.post(
            server.url + "/api/v1/import?format=turtle",
            data=TURTLE,
            headers={"Content-Type": "text/turtle"},
            timeout=10,
        )
        assert resp.status_code == 401, token
        resp = s.post(server.url + "/api/v1/batches", json={}, timeout=10)
        assert resp.status_code == 401, token
        # a capture route read with GET: not a read route, the cookie does not count
        resp = s.get(server.url + "/provlake/prospective-provenance", timeout=10)
        assert resp.status_code == 401, token
    # a header wins, even a wrong one: the cookie is not consulted
    s = session(sign_in(server.url, READ_TOKEN))
    resp = s.get(
        server.url + "/api/v1/questions",
        headers={"Authorization": f"Bearer {CAPTURE_TOKEN}"},
        timeout=10,
    )
    assert resp.status_code == 403


def test_a_forged_cookie_is_refused(server: VerboseServer) -> None:
    s = requests.Session()
    s.cookies.set(COOKIE, "forged-" + "x" * 30)
    resp = s.get(server.url + "/api/v1/questions", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "runs", "/\r\nX: y"]
)
def test_next_never_leaves_the_service(server: VerboseServer, target: str) -> None:
    resp = sign_in(server.url, READ_TOKEN, target)
    assert resp.status_code == 303
    assert resp.headers["Location"] in ("/", server.url + "/")


def test_sign_out_forgets_the_cookie(server: VerboseServer) -> None:
    resp = requests.post(server.url + "/signout", allow_redirects=False, timeout=10)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/signin")
    assert f'{COOKIE}=""' in resp.headers["Set-Cookie"] or "Max-Age=0" in resp.headers["Set-Cookie"]


def test_signin_audit_names_the_token_never_the_secret(server: VerboseServer) -> None:
    sign_in(server.url, READ_TOKEN)
    log = server.log.read_text()
    for secret in ALL_TOKENS:
        assert secret not in log


class Prefixed(VerboseServer):
    """A server under ``/provml``: ready when ``/provml/healthz`` answers."""

    def wait_ready(self, timeout: float = 30.0) -> None:
        root, self.url = self.url, self.url + "/provml"
        try:
            super().wait_ready(timeout)
        finally:
            self.url = root


def test_served_under_a_path_prefix(tmp_path: Path) -> None:
    """PROVML_URL_PREFIX: every route under it, the links too (a proxy passing the path
    on as it is)."""
    srv = Prefixed(tmp_path / "data", env={"PROVML_URL_PREFIX": "/provml/"})
    try:
        assert requests.get(srv.url + "/provml/healthz", timeout=10).status_code == 200
        resp = requests.get(srv.url + "/provml/api/v1/questions", timeout=10)
        assert resp.status_code == 200 and resp.json()["questions"]
        # no tokens: the sign-in page sends straight on, under the prefix
        resp = requests.get(
            srv.url + "/provml/signin?next=/api/v1/questions", allow_redirects=False, timeout=10
        )
        assert resp.status_code == 303
        assert resp.headers["Location"].endswith("/provml/api/v1/questions")
    finally:
        srv.stop()
