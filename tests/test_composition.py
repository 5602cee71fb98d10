"""One composition path: each service made on its own (``create_app``) or all in one
(``provml.server.build_app``) is installed the same way, reads its settings once into
``app.config``, and every route says the scope it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Blueprint

from manager.service import Manager
from manager.store import open_store
from provml.core.errors import Busy, ProvmlError
from provml.server import build_app, close_app
from provml.web.app import make_app, mount
from provml.web.auth import load
from tracker import app as tracker_app
from tracker.errors import QueueFull, ShuttingDown
from tracker.forward import InProcessForwarder

READER = "reader-" + "r" * 20
ADMIN = "admin-" + "a" * 20


def test_a_tracker_on_its_own_takes_the_queue_and_ack_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``tracker.app.create_app`` once ignored PROVML_QUEUE_MAX_BYTES and PROVML_ACK_WAIT
    that ``provml serve`` applied: both paths now install the tracker the same way."""
    monkeypatch.setenv("PROVML_QUEUE_MAX_BYTES", "123456")
    monkeypatch.setenv("PROVML_ACK_WAIT", "0.25")
    forwarder = InProcessForwarder(Manager(open_store("memory:")))
    alone = tracker_app.create_app({"forwarder": forwarder, "queue_dir": str(tmp_path / "a")})
    together = build_app(["tracker", "manager"], store="memory:", queue_dir=str(tmp_path / "b"))
    try:
        for app in (alone, together):
            tracker = app.extensions["provml.tracker"]
            assert tracker.queue.max_bytes == 123456
            assert tracker.ack_wait == 0.25
    finally:
        close_app(alone, timeout=0)
        close_app(together, timeout=0)


def test_a_setting_given_to_the_app_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROVML_ACK_WAIT", "0.25")
    app = build_app(["tracker", "manager"], store="memory:", queue_dir=str(tmp_path / "q"),
                    config={"PROVML_ACK_WAIT": 0.5})  # fmt: skip
    try:
        assert app.extensions["provml.tracker"].ack_wait == 0.5
    finally:
        close_app(app, timeout=0)


def test_settings_are_read_once_when_the_app_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's limits do not change under it when the environment does."""
    monkeypatch.setenv("PROVML_QUERY_MAX_BYTES", "100")
    app = build_app(["query"], store="memory:")
    monkeypatch.setenv("PROVML_QUERY_MAX_BYTES", "1000000")
    query = "SELECT * WHERE { ?s ?p ?o } " + "#" * 200
    try:
        answer = app.test_client().post("/sparql", data={"query": query})
        assert answer.status_code == 413
        assert "PROVML_QUERY_MAX_BYTES" in answer.json["message"]
    finally:
        close_app(app, timeout=0)


def test_the_query_runner_is_made_with_the_app() -> None:
    """Not lazily inside the first request: its limits are the app's, and it is closed
    with the app."""
    app = build_app(["query"], store="memory:", config={"PROVML_QUERY_MAX_ROWS": 7})
    try:
        runner = app.extensions["provml.query_runner"]
        assert runner.limits.max_rows == 7
    finally:
        close_app(app, timeout=0)


def test_every_route_of_every_service_says_its_scope() -> None:
    app = build_app(store="memory:")
    try:
        unsaid = [
            rule.rule
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            and not hasattr(app.view_functions[rule.endpoint], "provml_scope")
        ]
        assert unsaid == []
    finally:
        close_app(app, timeout=0)


def test_a_route_that_does_not_say_its_scope_needs_admin() -> None:
    bp = Blueprint("extra", __name__)

    @bp.get("/extra")
    def extra() -> dict[str, bool]:
        return {"ok": True}

    app = make_app("test")
    mount(app, bp)
    app.extensions["provml.auth"] = load(env_value=f"{READER} read reader; {ADMIN} admin ops")
    client = app.test_client()
    as_reader = client.get("/extra", headers={"Authorization": f"Bearer {READER}"})
    assert as_reader.status_code == 403 and as_reader.json["error"] == "insufficient_scope"
    as_admin = client.get("/extra", headers={"Authorization": f"Bearer {ADMIN}"})
    assert as_admin.status_code == 200 and as_admin.json == {"ok": True}
    assert client.get("/healthz").json["components"] == ["extra"]


@pytest.mark.parametrize(
    ("error", "retry_after"), [(QueueFull("full"), "1"), (ShuttingDown("closing"), "1"),
                               (Busy("busy"), "2"), (ProvmlError("x"), None)],
)  # fmt: skip
def test_an_error_carries_the_headers_its_answer_needs(
    error: ProvmlError, retry_after: str | None
) -> None:
    bp = Blueprint("failing", __name__)

    @bp.get("/fail")
    def fail() -> None:
        raise error

    app = make_app("test")
    mount(app, bp)
    answer = app.test_client().get("/fail")
    assert answer.status_code == error.status
    assert answer.json["error"] == error.code
    assert answer.headers.get("Retry-After") == retry_after
