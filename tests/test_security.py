"""Access tokens, scopes and the audit log (docs/security.md), against real servers.

Every route of ``provml serve`` (all in one, and split: a tracker forwarding to a store
process) is asked with no token, an unknown token, a token without the route's scope,
a token with it and an admin token, over HTTP. Then: the refusal to serve beyond
loopback without tokens, capture_lib and the CLI sending their tokens, the audit log's
lines, and no token in any log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from provml.core.errors import ConfigError
from provml.web import auth
from tests.conftest import SHA_M, Server, free_port, full_records, make_batch, provml_cmd

pytestmark = pytest.mark.integration

CAPTURE_TOKEN = "cap-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
READ_TOKEN = "read-" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6"
ADMIN_TOKEN = "admin-" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4"
BOTH_TOKEN = "both-" + "L1k2J3h4G5f6D7s8A9z0X1c2V3b4"  # capture and read, not admin
FORWARD_TOKEN = "fwd-" + "M1n2B3v4C5x6Z7l8K9j0H1g2F3d4"  # the tracker's, on the manager
WRONG_TOKEN = "nope-" + "0" * 40
ALL_TOKENS = (CAPTURE_TOKEN, READ_TOKEN, ADMIN_TOKEN, BOTH_TOKEN, FORWARD_TOKEN, WRONG_TOKEN)

#: the token of each scope, and one that lacks it (never admin)
RIGHT = {"capture": CAPTURE_TOKEN, "read": READ_TOKEN, "admin": ADMIN_TOKEN}
LACKING = {"capture": READ_TOKEN, "read": CAPTURE_TOKEN, "admin": BOTH_TOKEN}

TURTLE = b"<http://example.org/e1> a <http://www.w3.org/ns/prov#Entity> .\n"


def tokens_file(directory: Path) -> Path:
    """Text format, with one token given by its hash only, and a comment."""
    path = directory / "tokens"
    admin_sha = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    path.write_text(
        "# the test's tokens\n"
        f"{CAPTURE_TOKEN} capture capture-bot\n"
        f"{READ_TOKEN} read reader   # a trailing comment\n"
        f"sha256:{admin_sha} admin ops\n"
        f"{BOTH_TOKEN} capture,read both\n"
    )
    path.chmod(0o600)
    return path


def manager_tokens_file(directory: Path) -> Path:
    """JSON, for the store process: the same tokens and the tracker's."""
    path = directory / "manager-tokens.json"
    entries = [
        {"name": "capture-bot", "token": CAPTURE_TOKEN, "scopes": ["capture"]},
        {"name": "reader", "token": READ_TOKEN, "scopes": ["read"]},
        {"name": "ops", "sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
         "scopes": ["admin"]},
        {"name": "both", "token": BOTH_TOKEN, "scopes": "capture,read"},
        {"name": "tracker", "token": FORWARD_TOKEN, "scopes": ["capture"]},
    ]  # fmt: skip
    path.write_text(json.dumps({"tokens": entries}))
    path.chmod(0o600)
    return path


class VerboseServer(Server):
    """A ``provml -vv serve …`` (debug logging, so that the log has everything there is
    to search for tokens), with extra environment variables."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = data_dir.parent / f"server-{self.port}-{time.monotonic_ns()}.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PROVML_")}
        cmd = provml_cmd("-vv", "serve", "--port", str(self.port), "--data-dir", str(data_dir))
        self.proc = subprocess.Popen(
            [*cmd, *extra],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=data_dir.parent,
            env=environ | (env or {}),
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security")


@pytest.fixture(scope="module")
def single(home: Path) -> Iterator[VerboseServer]:
    """All in one, tokens from a file."""
    srv = VerboseServer(home / "single" / "data", "--tokens-file", str(tokens_file(home)))
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


@pytest.fixture(scope="module")
def split(home: Path) -> Iterator[tuple[VerboseServer, VerboseServer]]:
    """A store process (manager and query, tokens from JSON) and a tracker forwarding to
    it with its own token (PROVML_MANAGER_TOKEN), its tokens from PROVML_TOKENS."""
    store = VerboseServer(
        home / "split" / "store",
        "--component", "manager", "--component", "query",
        env={"PROVML_TOKENS_FILE": str(manager_tokens_file(home))},
    )  # fmt: skip
    tracker = None
    try:
        admin_sha = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
        tracker = VerboseServer(
            home / "split" / "tracker",
            "--component", "tracker", "--manager-url", store.url,
            env={
                "PROVML_TOKENS": f"{CAPTURE_TOKEN} capture capture-bot; {READ_TOKEN} read "
                f"reader\n sha256:{admin_sha} admin ops ;{BOTH_TOKEN} capture,read both",
                "PROVML_MANAGER_TOKEN": FORWARD_TOKEN,
            },
        )  # fmt: skip
        yield store, tracker
    finally:
        if tracker is not None:
            assert tracker.stop() == 0, tracker.log.read_text()
        assert store.stop() == 0, store.log.read_text()


# --- the routes ----------------------------------------------------------------------


def batch_body() -> bytes:
    return json.dumps(make_batch(full_records())).encode()


#: a tracker answers 202 when the batch is queued but not yet stored
STORED = (200, 202)
#: (method, path, scope, body, content type, status(es) with the right token; None: any
#: status below 500 but 401 and 403)
SINGLE_ROUTES: list[tuple[str, str, str | None, Any, str | None, Any]] = [
    ("POST", "/api/v1/batches", "capture", batch_body, "application/json", STORED),
    ("POST", "/manager/api/v1/batches", "capture", batch_body, "application/json", 200),
    ("POST", "/provlake/retrospective-provenance", "capture", b"[]", "application/json", 200),
    ("POST", "/retrospective-provenance", "capture", b"[]", "application/json", 200),
    ("GET", "/provlake/prospective-provenance", "capture", None, None, 200),
    ("GET", "/prospective-provenance", "capture", None, None, 200),
    ("PUT", "/provlake/prospective-provenance", "capture", b"{}", "application/json", None),
    ("POST", "/provlake/prospective-provenance", "capture", b"{}", "application/json", None),
    ("POST", "/api/v1/import?format=turtle", "admin", TURTLE, "text/turtle", 200),
    ("GET", "/sparql?query=ASK%7B%7D", "read", None, None, 200),
    ("POST", "/sparql", "read", b"query=ASK%7B%7D", "application/x-www-form-urlencoded", 200),
    ("POST", "/sparql", "read", b"ASK {}", "application/sparql-query", 200),
    ("GET", "/api/v1/questions", "read", None, None, 200),
    ("GET", f"/api/v1/questions/training-data?model={SHA_M}", "read", None, None, 200),
    ("GET", f"/api/v1/models/{SHA_M}", "read", None, None, None),
    ("GET", f"/api/v1/datasets/{'c' * 64}", "read", None, None, None),
    ("GET", "/api/v1/export?scope=all&format=ntriples", "read", None, None, 200),
    ("GET", "/api/v1/tracker/stats", "read", None, None, 200),
    ("GET", "/manager/api/v1/stats", "read", None, None, 200),
    ("GET", "/metrics", "read", None, None, 200),
    ("GET", "/healthz", None, None, None, 200),
    ("GET", "/readyz", None, None, None, 200),
]
STORE_ROUTES = [
    ("POST", "/api/v1/batches", "capture", batch_body, "application/json", 200),
    ("POST", "/api/v1/import?format=turtle", "admin", TURTLE, "text/turtle", 200),
    ("GET", "/sparql?query=ASK%7B%7D", "read", None, None, 200),
    ("GET", "/api/v1/questions", "read", None, None, 200),
    ("GET", "/api/v1/export?scope=all&format=turtle", "read", None, None, 200),
    ("GET", "/api/v1/stats", "read", None, None, 200),
    ("GET", "/metrics", "read", None, None, 200),
    ("GET", "/healthz", None, None, None, 200),
    ("GET", "/readyz", None, None, None, 200),
]
TRACKER_ROUTES = [
    ("POST", "/api/v1/batches", "capture", batch_body, "application/json", STORED),
    ("POST", "/provlake/retrospective-provenance", "capture", b"[]", "application/json", 200),
    ("GET", "/provlake/prospective-provenance", "capture", None, None, 200),
    ("GET", "/api/v1/tracker/stats", "read", None, None, 200),
    ("GET", "/metrics", "read", None, None, 200),
    ("GET", "/healthz", None, None, None, 200),
    ("GET", "/readyz", None, None, None, 200),
]
CASES = ("none", "wrong", "lacking", "right", "admin")


def call(
    url: str, route: tuple[Any, ...], headers: dict[str, str] | None = None, **kw: Any
) -> requests.Response:
    method, path, _, body, ctype, _ = route
    data = body() if callable(body) else body
    hdrs = dict(headers or {}) | ({"Content-Type": ctype} if ctype else {})
    return requests.request(method, url + path, data=data, headers=hdrs, timeout=30, **kw)


def check_route(url: str, route: tuple[Any, ...], case: str) -> None:
    scope, expected = route[2], route[5]
    token = {"none": None, "wrong": WRONG_TOKEN, "admin": ADMIN_TOKEN}.get(case)
    if scope is not None and case == "lacking":
        token = LACKING[scope]
    elif scope is not None and case == "right":
        token = RIGHT[scope]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = call(url, route, headers)
    where = f"{route[0]} {route[1]} with {case}: {resp.status_code} {resp.text[:300]}"
    if scope is None or case in ("right", "admin"):
        assert resp.status_code not in (401, 403), where
        if expected is not None:
            allowed = expected if isinstance(expected, tuple) else (expected,)
            assert resp.status_code in allowed, where
        else:
            assert resp.status_code < 500, where
        return
    if case in ("none", "wrong"):
        assert resp.status_code == 401, where
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="provml"'), where
        body = resp.json()
        assert body["error"] == ("unauthorized" if case == "none" else "invalid_token"), where
        if case == "wrong":
            assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    else:
        assert resp.status_code == 403, where
        assert resp.json()["error"] == "insufficient_scope", where
        assert f'scope="{scope}"' in resp.headers["WWW-Authenticate"], where
    assert resp.headers["Content-Type"].startswith("application/json"), where
    for secret in ALL_TOKENS:
        assert secret not in resp.text, where


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", SINGLE_ROUTES, ids=lambda r: f"{r[0]} {r[1][:40]}")
def test_all_in_one_routes(single: VerboseServer, route: tuple[Any, ...], case: str) -> None:
    check_route(single.url, route, case)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", STORE_ROUTES, ids=lambda r: f"{r[0]} {r[1][:40]}")
def test_split_store_routes(
    split: tuple[VerboseServer, VerboseServer], route: tuple[Any, ...], case: str
) -> None:
    check_route(split[0].url, route, case)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", TRACKER_ROUTES, ids=lambda r: f"{r[0]} {r[1][:40]}")
def test_split_tracker_routes(
    split: tuple[VerboseServer, VerboseServer], route: tuple[Any, ...], case: str
) -> None:
    check_route(split[1].url, route, case)


def test_unknown_paths_need_a_token_first(single: VerboseServer) -> None:
    resp = requests.get(single.url + "/no/such/route", timeout=10)
    assert resp.status_code == 401
    resp = requests.get(single.url + "/no/such/route", headers=bearer(READ_TOKEN), timeout=10)
    assert resp.status_code == 404
    # a method the route does not have: 405 once authenticated
    resp = requests.delete(single.url + "/sparql", headers=bearer(READ_TOKEN), timeout=10)
    assert resp.status_code == 405


def test_malformed_authorization_headers(single: VerboseServer) -> None:
    for value in ("Bearer", "Bearer ", "Token " + READ_TOKEN, READ_TOKEN, "Basic !!!",
                  "Basic " + base64.b64encode(b"no-colon").decode()):  # fmt: skip
        resp = requests.get(
            single.url + "/api/v1/questions", headers={"Authorization": value}, timeout=10
        )
        assert resp.status_code == 401, value
        assert resp.json()["error"] == "unauthorized"


def test_basic_auth_password_is_a_token(single: VerboseServer) -> None:
    """The ProvLake client takes credentials only in its service URL."""
    url = single.url.replace("http://", f"http://provlake:{CAPTURE_TOKEN}@")
    resp = requests.post(url + "/provlake/retrospective-provenance", json=[], timeout=10)
    assert resp.status_code == 200, resp.text
    resp = requests.get(single.url + "/api/v1/questions", auth=("x", CAPTURE_TOKEN), timeout=10)
    assert resp.status_code == 403


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def select(url: str, query: str, token: str = READ_TOKEN) -> list[dict[str, str]]:
    resp = requests.post(
        url + "/sparql",
        data={"query": query},
        headers=bearer(token) | {"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return [{k: v["value"] for k, v in b.items()} for b in resp.json()["results"]["bindings"]]


# --- the split topology: the tracker's token on the manager --------------------------


def test_split_tracker_delivers_with_its_token(
    split: tuple[VerboseServer, VerboseServer],
) -> None:
    store, tracker = split
    batch = make_batch(full_records())
    resp = requests.post(
        tracker.url + "/api/v1/batches", json=batch, headers=bearer(CAPTURE_TOKEN), timeout=30
    )
    assert resp.status_code in (200, 202), resp.text

    def delivered() -> list[dict[str, Any]]:
        events = audit_events(store.data_dir)
        return [e for e in events if e["event"] == "batch" and e.get("batch") == batch["batch"]]

    deadline = time.monotonic() + 30
    while not delivered() and time.monotonic() < deadline:
        time.sleep(0.2)
    # the manager's audit log names the tracker's token
    mine = delivered()
    assert mine and mine[-1]["who"] == "tracker" and mine[-1]["status"] == 200, mine
    assert mine[-1]["records"] == len(batch["records"])
    events = audit_events(tracker.data_dir)
    mine = [e for e in events if e["event"] == "batch" and e.get("batch") == batch["batch"]]
    assert mine and mine[0]["who"] == "capture-bot" and mine[0]["session"] == batch["session"]


def test_a_tracker_with_a_wrong_manager_token_keeps_its_batches(
    split: tuple[VerboseServer, VerboseServer], home: Path
) -> None:
    """The manager refuses the token: a configuration to fix, so the batch stays queued
    (202) and is retried, never set aside as refused."""
    store, _ = split
    tracker = VerboseServer(
        home / "wrong-forward" / "data",
        "--component", "tracker", "--manager-url", store.url,
        env={"PROVML_TOKENS": f"{CAPTURE_TOKEN} capture capture-bot",
             "PROVML_MANAGER_TOKEN": WRONG_TOKEN, "PROVML_ACK_WAIT": "0.5",
             "PROVML_DRAIN_TIMEOUT": "0.5"},
    )  # fmt: skip
    try:
        resp = requests.post(
            tracker.url + "/api/v1/batches",
            json=make_batch(full_records()),
            headers=bearer(CAPTURE_TOKEN),
            timeout=30,
        )
        assert resp.status_code == 202, resp.text
        time.sleep(1.0)
        metrics = requests.get(tracker.url + "/metrics", timeout=5)
        assert metrics.status_code == 401  # no token
        assert not (tracker.data_dir / "queue" / "refused.jsonl").exists()
    finally:
        tracker.stop()
    text = tracker.log.read_text()
    assert "refused the tracker's token" in text
    for secret in ALL_TOKENS:
        assert secret not in text


def test_a_refused_tracker_token_fixed_on_the_manager_by_sighup(tmp_path: Path) -> None:
    """The manager does not know the tracker's token: the batch waits in the tracker's
    queue; the token added to the manager's file and SIGHUP, the next retry delivers."""
    manager_file = tmp_path / "manager-tokens"
    manager_file.write_text(f"{READ_TOKEN} read reader\n")
    manager_file.chmod(0o600)
    store = VerboseServer(tmp_path / "store" / "data", "--component", "manager",
                          "--component", "query", "--tokens-file", str(manager_file))  # fmt: skip
    try:
        tracker = VerboseServer(
            tmp_path / "tracker" / "data",
            "--component", "tracker", "--manager-url", store.url,
            env={"PROVML_TOKENS": f"{CAPTURE_TOKEN} capture capture-bot",
                 "PROVML_MANAGER_TOKEN": FORWARD_TOKEN, "PROVML_ACK_WAIT": "0.5"},
        )  # fmt: skip
        try:
            resp = requests.post(tracker.url + "/api/v1/batches", json=make_batch(full_records()),
                                 headers=bearer(CAPTURE_TOKEN), timeout=30)  # fmt: skip
            assert resp.status_code == 202, resp.text  # queued: the manager said 401
            ask = "SELECT ?s WHERE { ?s a <http://www.w3.org/ns/prov#Activity> } LIMIT 1"
            assert select(store.url, ask) == []  # nothing stored
            manager_file.write_text(f"{READ_TOKEN} read reader\n{FORWARD_TOKEN} capture tracker\n")
            store.proc.send_signal(signal.SIGHUP)
            assert _wait_for(lambda: bool(select(store.url, ask)), timeout=20)
        finally:
            tracker.stop()
    finally:
        store.stop()
    assert "tokens reloaded: 2 tokens" in store.log.read_text()


# --- serving beyond loopback ---------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PROVML_")} | extra


def test_refuses_to_serve_beyond_loopback_without_tokens(tmp_path: Path) -> None:
    result = subprocess.run(
        provml_cmd("serve", "--host", "0.0.0.0", "--port", str(free_port()),
                   "--data-dir", str(tmp_path / "data")),
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )  # fmt: skip
    assert result.returncode != 0
    assert "refusing to serve on 0.0.0.0 without access tokens" in result.stderr
    assert "--insecure-no-auth" in result.stderr
    assert not (tmp_path / "data" / "store").exists()
    # PROVML_HOST too
    result = subprocess.run(
        provml_cmd("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")),
        capture_output=True, text=True, timeout=60, env=clean_env(PROVML_HOST="0.0.0.0"),
    )  # fmt: skip
    assert result.returncode != 0 and "refusing to serve" in result.stderr


def test_insecure_no_auth_overrides(tmp_path: Path) -> None:
    srv = VerboseServer(tmp_path / "data", "--host", "0.0.0.0", "--insecure-no-auth")
    try:
        resp = requests.get(srv.url + "/api/v1/questions", timeout=10)
        assert resp.status_code == 200
    finally:
        assert srv.stop() == 0
    assert "no tokens: every request is allowed" in srv.log.read_text()


def test_tokens_allow_serving_beyond_loopback(tmp_path: Path) -> None:
    srv = VerboseServer(
        tmp_path / "data", "--host", "0.0.0.0", env={"PROVML_TOKENS": f"{READ_TOKEN} read r"}
    )
    try:
        assert requests.get(srv.url + "/api/v1/questions", timeout=10).status_code == 401
        ok = requests.get(srv.url + "/api/v1/questions", headers=bearer(READ_TOKEN), timeout=10)
        assert ok.status_code == 200
    finally:
        assert srv.stop() == 0


def test_a_bad_tokens_file_stops_the_start_without_echoing_tokens(tmp_path: Path) -> None:
    bad = tmp_path / "tokens"
    bad.write_text(f"{READ_TOKEN} read ok\nshort-secret9 read weak\n")
    result = subprocess.run(
        provml_cmd("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
                   "--tokens-file", str(bad)),
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{bad}: line 2: a token must have at least 16 characters" in result.stderr
    assert "short-secret9" not in result.stderr and READ_TOKEN not in result.stderr
    bad.write_text(f"{READ_TOKEN} write x\n")
    result = subprocess.run(
        provml_cmd("serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
                   "--tokens-file", str(bad)),
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )  # fmt: skip
    assert result.returncode != 0 and "scopes are among capture, read, admin" in result.stderr
    assert READ_TOKEN not in result.stderr


# --- clients: capture_lib and the CLI ------------------------------------------------

CAPTURE_SCRIPT = """
import json, sys
import capture_lib as cl
url, spool, name, token = sys.argv[1:5]
cl.init(url=url, mode="http", path=spool, **({"token": token} if token else {}))
with cl.workflow(name) as wf:
    with wf.task("step", params={"k": 1}) as t:
        t.generated(out={"v": 1})
ok = cl.flush(30)
print(json.dumps({"flushed": ok, "stats": cl.stats()}))
"""


def run_capture(url: str, spool: Path, name: str, token: str = "", **env: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", CAPTURE_SCRIPT, url, str(spool), name, token],
        capture_output=True, text=True, timeout=120, env=clean_env(**env), check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def workflow_runs(url: str, name: str) -> int:
    rows = select(
        url,
        f"""SELECT (COUNT(?w) AS ?n) WHERE {{
        ?w a provml:WorkflowExecution ; provml:name "{name}" }}""",
    )
    return int(rows[0]["n"])


def test_capture_lib_sends_its_token(single: VerboseServer, home: Path) -> None:
    # cl.init(token=…)
    result = run_capture(single.url, home / "spool1", "sec-init", CAPTURE_TOKEN)
    assert result["flushed"] and result["stats"]["records_sent"] > 0, result
    assert result["stats"]["spilled_to_disk"] == 0, result
    # PROVML_TOKEN
    result = run_capture(single.url, home / "spool2", "sec-env", PROVML_TOKEN=CAPTURE_TOKEN)
    assert result["flushed"] and result["stats"]["records_sent"] > 0, result
    assert workflow_runs(single.url, "sec-init") == 1
    assert workflow_runs(single.url, "sec-env") == 1
    # without a token: refused, kept under rejected/ in the spool, not in the graph
    # (capture_lib counts a refused batch as sent: it left the process)
    run_capture(single.url, home / "spool3", "sec-none")
    assert list((home / "spool3" / "rejected").iterdir())
    assert workflow_runs(single.url, "sec-none") == 0
    # a read token may not capture
    run_capture(single.url, home / "spool4", "sec-read", READ_TOKEN)
    assert list((home / "spool4" / "rejected").iterdir())
    assert workflow_runs(single.url, "sec-read") == 0
    events = audit_events(single.data_dir)
    who = {e["who"] for e in events if e["event"] == "batch" and e["status"] == 200}
    assert "capture-bot" in who


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        provml_cmd(*args), capture_output=True, text=True, timeout=120, env=clean_env(**env)
    )


def test_cli_commands_send_their_token(single: VerboseServer, tmp_path: Path) -> None:
    url = single.url
    q = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    denied = cli("query", "--url", url, q)
    assert denied.returncode != 0 and "401" in denied.stderr
    assert cli("query", "--url", url, "--token", READ_TOKEN, q).returncode == 0
    assert cli("query", "--url", url, q, PROVML_TOKEN=READ_TOKEN).returncode == 0
    assert cli("ask", "--url", url, "--token", READ_TOKEN, "training-data",
               f"model={SHA_M}").returncode == 0  # fmt: skip
    assert cli("ask", "--url", url, "training-data", f"model={SHA_M}").returncode != 0
    model = cli("model", "--url", url, SHA_M, PROVML_TOKEN=CAPTURE_TOKEN)
    assert model.returncode != 0 and "403" in model.stderr
    out = tmp_path / "all.ttl"
    assert cli("export", "--url", url, "-o", str(out), PROVML_TOKEN=READ_TOKEN).returncode == 0
    assert out.stat().st_size > 0
    assert cli("export", "--url", url, "-o", str(out)).returncode != 0
    doc = tmp_path / "doc.ttl"
    doc.write_bytes(TURTLE)
    assert cli("import", "--quiet", "--url", url, str(doc),
               PROVML_TOKEN=CAPTURE_TOKEN).returncode != 0  # fmt: skip
    imported = cli("import", "--quiet", "--url", url, "--token", ADMIN_TOKEN, str(doc))
    assert imported.returncode == 0, imported.stderr
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "seg.jsonl").write_text(json.dumps(make_batch(full_records())) + "\n")
    refused = cli("ingest", "--quiet", "--url", url, str(logs))
    assert refused.returncode == 1 and "401" in refused.stderr
    ingested = cli("ingest", "--quiet", "--url", url, str(logs), PROVML_TOKEN=CAPTURE_TOKEN)
    assert ingested.returncode == 0, ingested.stderr
    for result in (denied, refused, model):
        for secret in ALL_TOKENS:
            assert secret not in result.stdout + result.stderr


def test_provml_config_never_shows_tokens() -> None:
    result = cli("config", PROVML_TOKEN=READ_TOKEN, PROVML_TOKENS=f"{ADMIN_TOKEN} admin",
                 PROVML_MANAGER_TOKEN=CAPTURE_TOKEN)  # fmt: skip
    assert result.returncode == 0
    for secret in (READ_TOKEN, ADMIN_TOKEN, CAPTURE_TOKEN):
        assert secret not in result.stdout
    shown = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()
             if line.startswith("PROVML_")}  # fmt: skip
    assert shown["PROVML_TOKEN"] == shown["PROVML_TOKENS"] == "(set)"
    assert shown["PROVML_MANAGER_TOKEN"] == "(set)"


def test_provml_token_makes_a_usable_line() -> None:
    result = cli("token", "--scopes", "capture read", "--name", "ci")  # a space, as people type
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    secret = lines["token"].strip()
    hashed = lines["tokens file line (hash only)"].strip()
    tokens = auth.load(env_value=hashed)
    identity = tokens.check(secret)
    assert identity is not None and identity.name == "ci"
    assert identity.scopes == {"capture", "read"}
    assert secret not in hashed
    bad = cli("token", "--name", "two words")
    assert bad.returncode == 2 and "a name is 1 to 64" in bad.stderr
    bad = cli("token", "--scopes", "write")
    assert bad.returncode == 2 and "line 1" not in bad.stderr and "scopes are among" in bad.stderr


# --- the audit log, and tokens in no log ---------------------------------------------


def audit_events(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_log_lines(single: VerboseServer) -> None:
    url = single.url
    batch = make_batch(full_records())
    resp = requests.post(url + "/api/v1/batches", json=batch, headers=bearer(CAPTURE_TOKEN),
                         timeout=30)  # fmt: skip
    assert resp.status_code in STORED
    query = "SELECT ?s WHERE { ?s a <http://www.w3.org/ns/prov#Entity> } LIMIT 1 # audit-me"
    select(url, query)
    long_query = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1 #" + "x" * 5000
    select(url, long_query, ADMIN_TOKEN)
    requests.get(url + f"/api/v1/questions/training-data?model={SHA_M}",
                 headers=bearer(READ_TOKEN), timeout=30)  # fmt: skip
    requests.get(url + "/api/v1/export?scope=lineage&format=turtle&id=" + SHA_M,
                 headers=bearer(BOTH_TOKEN), timeout=30)  # fmt: skip
    requests.post(url + "/api/v1/import?format=turtle", data=TURTLE,
                  headers=bearer(ADMIN_TOKEN), timeout=30)  # fmt: skip
    requests.get(url + "/sparql?query=ASK%7B%7D", headers=bearer(WRONG_TOKEN), timeout=30)
    requests.get(url + "/sparql?query=ASK%7B%7D", headers=bearer(CAPTURE_TOKEN), timeout=30)

    path = single.data_dir / "audit.log"
    assert path.stat().st_mode & 0o077 == 0
    events = audit_events(single.data_dir)
    for event in events:
        assert event["time"].endswith("Z") and event["who"] and event["event"]
    batches = [e for e in events if e["event"] == "batch" and e.get("batch") == batch["batch"]]
    assert batches == [
        batches[0]
        | {
            "who": "capture-bot",
            "session": batch["session"],
            "records": len(batch["records"]),
        }
    ]
    assert batches[0]["path"] == "/api/v1/batches" and batches[0]["method"] == "POST"
    assert batches[0]["status"] in STORED
    queries = [e for e in events if e["event"] == "query" and e["who"] == "reader"]
    assert any(e["query"] == query and e["truncated"] is False for e in queries)
    long = [e for e in events if e["event"] == "query" and e["who"] == "ops" and e["truncated"]]
    assert long and len(long[-1]["query"]) == 2000
    questions = [e for e in events if e["event"] == "question"]
    assert {"question": "training-data", "params": {"model": SHA_M}, "who": "reader"}.items() <= (
        questions[-1].items()
    )
    exports = [e for e in events if e["event"] == "export"]
    assert exports[-1]["who"] == "both" and exports[-1]["scope"] == "lineage"
    assert exports[-1]["id"] == SHA_M and exports[-1]["format"] == "turtle"
    imports = [e for e in events if e["event"] == "import"]
    assert imports[-1]["who"] == "ops" and imports[-1]["triples"] == 1
    assert imports[-1]["bytes"] == len(TURTLE) and imports[-1]["format"] == "turtle"
    denied = [e for e in events if e["event"] == "denied"]
    assert any(e["reason"] == "invalid_token" and e["who"] == "anonymous" for e in denied)
    assert any(e["reason"] == "insufficient_scope" and e["who"] == "capture-bot"
               and e["scope"] == "read" for e in denied)  # fmt: skip


def test_no_token_in_any_log(
    single: VerboseServer, split: tuple[VerboseServer, VerboseServer], home: Path
) -> None:
    """After the tests above (file order): the servers' debug logs and audit logs,
    which have seen every token, hold none."""
    # make sure something was logged at all
    requests.get(single.url + "/sparql", headers=bearer(WRONG_TOKEN), timeout=10)
    texts = {}
    for srv in (single, *split):
        texts[str(srv.log)] = srv.log.read_text()
        texts[str(srv.data_dir / "audit.log")] = (srv.data_dir / "audit.log").read_text()
    assert any("DEBUG" in t for t in texts.values())
    for name, text in texts.items():
        assert text, name
        for secret in ALL_TOKENS:
            assert secret not in text, f"{name} holds a token"
            assert base64.b64encode(f"provlake:{secret}".encode()).decode() not in text


# --- the parsing, without a server ---------------------------------------------------


def test_token_lines_and_json() -> None:
    tokens = auth.parse_lines([f"{READ_TOKEN} read"], where="t")
    assert tokens[0].identity.name.startswith("token-")
    with pytest.raises(ConfigError, match="two tokens are named"):
        auth.load(env_value=f"{READ_TOKEN} read a; {ADMIN_TOKEN} admin a")
    with pytest.raises(ConfigError, match="given twice"):
        auth.load(env_value=f"{READ_TOKEN} read a; {READ_TOKEN} admin b")
    with pytest.raises(ConfigError, match="sha256 must be"):
        auth.load(env_value="sha256:abc read a")
    with pytest.raises(ConfigError, match="either token or sha256"):
        auth.parse('[{"scopes": ["read"]}]', where="f")
    assert not auth.load()
    # a line in the wrong order: the error does not show the token
    with pytest.raises(ConfigError) as info:
        auth.load(env_value=f"the-name-of-a-token {ADMIN_TOKEN} admin")
    assert ADMIN_TOKEN not in str(info.value)
    assert auth.credentials("bearer  x-y ") == "x-y"
    assert auth.credentials("Basic " + base64.b64encode(b"u:pw").decode()) == "pw"
    assert auth.credentials("Digest abc") is None


def test_loopback() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert auth.is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "192.168.1.2"):
        assert not auth.is_loopback(host), host


def test_tls_certificates_are_always_verified() -> None:
    """No HTTP client of provml turns certificate checks off."""
    import re

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"verify\s*=\s*False|CERT_NONE|_create_unverified_context")
    found = [
        f"{path.relative_to(root)}:{n}"
        for package in ("provml", "capture_lib", "tracker", "manager", "query", "bench")
        for path in sorted((root / package).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, found


# --- rotating tokens without a restart (SIGHUP) --------------------------------------


def _status(url: str, token: str) -> int:
    return requests.get(
        url + "/sparql?query=ASK%7B%7D", headers=bearer(token), timeout=10
    ).status_code


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sighup_rereads_the_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{READ_TOKEN} read reader\n{CAPTURE_TOKEN} capture capture-bot\n")
    path.chmod(0o600)
    srv = VerboseServer(tmp_path / "data", "--tokens-file", str(path))
    try:
        assert _status(srv.url, READ_TOKEN) == 200
        assert _status(srv.url, BOTH_TOKEN) == 401
        # rotate: reader gets a new token, capture-bot goes, both comes
        path.write_text(f"{BOTH_TOKEN} read reader\n{ADMIN_TOKEN} admin ops\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _status(srv.url, BOTH_TOKEN) == 200)
        assert _status(srv.url, READ_TOKEN) == 401
        assert _status(srv.url, CAPTURE_TOKEN) == 401
        assert _status(srv.url, ADMIN_TOKEN) == 200

        # a broken file, then an empty one: nothing changes, and the server says why
        path.write_text(f"{READ_TOKEN} reed reader\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: "tokens_reload_failed" in (srv.data_dir / "audit.log").read_text())
        path.write_text("# nobody\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: "holds no tokens now" in srv.log.read_text())
        assert _status(srv.url, BOTH_TOKEN) == 200 and _status(srv.url, READ_TOKEN) == 401
        assert _status(srv.url, "") == 401  # still closed
    finally:
        assert srv.stop() == 0
    events = [e for e in audit_events(srv.data_dir) if e["event"].startswith("tokens_")]
    assert events[0] | {"time": ""} == {
        "time": "", "event": "tokens_reloaded", "who": "system", "count": 2,
        "added": ["ops"], "removed": ["capture-bot"], "changed": ["reader"],
    }  # fmt: skip
    assert [e["event"] for e in events[1:]] == ["tokens_reload_failed"] * 2
    assert "scopes are among" in events[1]["reason"]
    log = srv.log.read_text()
    assert "tokens reloaded: 2 tokens from" in log
    for secret in ALL_TOKENS:
        assert secret not in log and secret not in (srv.data_dir / "audit.log").read_text()


def test_reload_without_a_file_or_into_nothing_changes_nothing(tmp_path: Path) -> None:
    from_env = auth.load(None, f"{READ_TOKEN} read reader")
    with pytest.raises(ConfigError, match="no tokens file"):
        auth.reload(from_env)
    path = tmp_path / "tokens"
    path.write_text(f"{READ_TOKEN} read reader\n")
    tokens = auth.load(str(path), f"{ADMIN_TOKEN} admin ops")
    path.write_text(f"{BOTH_TOKEN} read reader\n")
    done = auth.reload(tokens)  # PROVML_TOKENS, as at the start, stays
    assert (done.count, done.added, done.removed, done.changed) == (2, [], [], ["reader"])
    assert tokens.check(ADMIN_TOKEN) is not None and tokens.check(READ_TOKEN) is None
    path.write_text(f"{BOTH_TOKEN} read ops\n")  # a name the environment has already
    with pytest.raises(ConfigError, match="two tokens are named"):
        auth.reload(tokens)
    assert tokens.check(BOTH_TOKEN) is not None and len(tokens) == 2


def test_reloads_run_one_at_a_time_and_odd_files_fail_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{READ_TOKEN} read reader\n")
    tokens = auth.load(str(path), None)
    seen: list[bool] = []
    real_load = auth.load

    def load(*args: Any) -> auth.Tokens:
        seen.append(auth._RELOADING.locked())
        return real_load(*args)

    monkeypatch.setattr(auth, "load", load)
    auth.reload(tokens)
    assert seen == [True]  # read and swapped under the lock
    monkeypatch.undo()
    path.write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setattr(auth.json, "loads", _never)  # refused before the parser recurses
    with pytest.raises(ConfigError, match="nested too deeply"):
        auth.reload(tokens)
    monkeypatch.undo()
    assert tokens.check(READ_TOKEN) is not None
    brackets = READ_TOKEN + "[" * 50 + '\\"' + "{" * 50  # in a string they nest nothing
    doc = {"tokens": [{"name": "reader", "token": brackets, "scopes": ["read"]}]}
    path.write_text(json.dumps(doc))
    assert auth.reload(tokens).count == 1
    assert tokens.check(brackets) is not None


def _never(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("parsed")


def test_sighup_stops_a_server_without_a_tokens_file(tmp_path: Path) -> None:
    srv = VerboseServer(tmp_path / "data")
    try:
        srv.proc.send_signal(signal.SIGHUP)  # a closed terminal: the server goes, as usual
        assert srv.proc.wait(10) == -signal.SIGHUP
    finally:
        srv.stop()
