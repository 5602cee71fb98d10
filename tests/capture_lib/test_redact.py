"""capture_lib never sends secrets: parameters and metadata redacted, environment
variables only when allow-listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib import environment
from capture_lib.redact import DEFAULT_PATTERNS, Redactor
from tests.capture_lib.test_capture import read_records

SECRET = "s3cr3t-" + "x" * 20


@pytest.fixture(autouse=True)
def _shutdown() -> Iterator[None]:
    yield
    cl.shutdown(timeout=5)


@pytest.mark.parametrize(
    "key",
    ["password", "db_password", "PASSWORD", "passwd", "pwd", "client_secret", "secretKey",
     "token", "access_token", "HF_TOKEN", "refresh_token_v2", "api_key", "apiKey", "API-KEY",
     "openai_apikey", "aws_access_key_id", "private_key", "credentials", "auth",
     "http_auth", "Authorization", "cookie", "session_cookie", "connection_string", "dsn"],
)  # fmt: skip
def test_secret_names(key: str) -> None:
    assert Redactor().secret(key)


@pytest.mark.parametrize(
    "key",
    ["lr", "max_tokens", "tokenizer", "num_tokens", "author", "keyword", "key_size",
     "monkey", "passes", "epochs", "batch_size", "dropout"],
)  # fmt: skip
def test_ordinary_names(key: str) -> None:
    assert not Redactor().secret(key)


def test_redaction_copies_nests_and_masks_urls() -> None:
    params = {
        "lr": 0.1,
        "db": {"password": SECRET, "host": "h", "replicas": [{"token": SECRET}]},
        "source": f"postgres://user:{SECRET}@db.example/x",
        "mirror": f"https://{SECRET}@example.org/data.csv",
        "ssh": "ssh://git@example.org/repo",
        "list": [1, {"api_key": SECRET}],
        "none_password": None,
    }
    before = json.dumps(params)
    out = Redactor()(params)
    assert SECRET not in json.dumps(out)
    assert json.dumps(params) == before  # the caller's objects are untouched
    assert out["db"]["password"] == "***" and out["db"]["host"] == "h"
    assert out["source"] == "postgres://***@db.example/x"
    assert out["ssh"] == "ssh://git@example.org/repo"
    assert out["none_password"] is None
    clean = {"lr": 0.1, "layers": [8, 4]}
    assert Redactor()(clean) is clean  # nothing to hide: no copy


def test_extra_patterns_add_to_the_defaults() -> None:
    r = Redactor(["customer_id", "*Ssn*"])
    assert r.secret("customer_id") and r.secret("patient_ssn") and r.secret("password")
    assert set(DEFAULT_PATTERNS) <= set(r.patterns)


def test_deep_values_do_not_break_capture() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert Redactor()({"x": deep})["x"] is deep


def test_nothing_secret_is_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVML_REDACT_KEYS", "customer_*")
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SOME_SETTING", "visible")
    (tmp_path / "data.csv").write_text("a\n1\n")
    cl.init(
        mode="disk", path=str(tmp_path / "logs"), allow_env=["CUDA_*", "*TOKEN*", "SOME_SETTING"]
    )
    raw = cl.file(tmp_path / "data.csv", source=f"s3://AKIA:{SECRET}@bucket/k")
    params = {"db": {"user": "u", "password": SECRET}, "customer_id": "c-42"}
    used = {"raw": raw, "config": {"auth": {"bearer": SECRET}}}
    with cl.workflow("w", params={"owner": "me", "api_key": SECRET}) as wf:
        t = wf.task("load", params=params, used=used).start()
        t.generated(out={"token": SECRET, "rows": 1})
        t.end()
    assert cl.flush()
    text = "\n".join(p.read_text() for p in (tmp_path / "logs").rglob("*.jsonl"))
    assert SECRET not in text and "c-42" not in text
    records = read_records(tmp_path / "logs")
    start = records[0]
    assert start["params"] == {"owner": "me", "api_key": "***"}
    env = start["env"]
    assert env["env.CUDA_VISIBLE_DEVICES"] == "0" and env["env.SOME_SETTING"] == "visible"
    # a pattern never lets a secret-looking variable through; unlisted ones never go
    assert "env.MY_API_TOKEN" not in env and "env.DB_PASSWORD" not in env
    task = next(r for r in records if r["kind"] == "task_start")
    assert task["params"]["db"] == {"user": "u", "password": "***"}
    assert task["used"]["raw"]["source"] == "s3://***@bucket/k"
    assert task["used"]["raw"]["sha256"]  # a data reference stays one
    assert cl.stats()["lost"] == {}


def test_the_environment_allow_list_is_explicit() -> None:
    env = {"HOME": "/root", "PATH": "/bin", "GITHUB_TOKEN": SECRET, "OMP_NUM_THREADS": "4"}
    collected = environment.collect(allow_env=(), environ=env, argv=["x"])
    assert not any(k.startswith("env.") for k in collected)
    collected = environment.collect(allow_env=("OMP_*", "*"), environ=env, argv=["x"])
    assert collected["env.OMP_NUM_THREADS"] == "4" and "env.GITHUB_TOKEN" not in collected
    named = environment.collect(allow_env=("GITHUB_TOKEN",), environ=env, argv=["x"])
    assert named["env.GITHUB_TOKEN"] == SECRET  # named exactly: the user asked for it


def test_an_exceptions_text_is_redacted_and_cut(tmp_path: Path) -> None:
    """A task that raises with a secret in its message, or ends with a huge error: the
    record holds neither the secret nor more than MAX_ERROR_CHARS of it."""
    from capture_lib.redact import MAX_ERROR_CHARS

    cl.init(mode="disk", path=str(tmp_path / "logs"))
    with pytest.raises(RuntimeError), cl.workflow("w") as wf, wf.task("connect"):
        raise RuntimeError(
            f"connect failed: password={SECRET} via postgres://app:{SECRET}@db/x "
            f'{{"api_key": "{SECRET}"}} Authorization: Bearer {SECRET}'
        )
    with cl.workflow("w2") as wf:
        task = wf.task("huge")
        task.start()
        task.end("failed", error="E" * (60 << 20))  # 60 MB of error text
    assert cl.flush()
    text = (
        (tmp_path / "logs").read_bytes()
        if (tmp_path / "logs").is_file()
        else b"".join(f.read_bytes() for f in sorted((tmp_path / "logs").rglob("*")) if f.is_file())
    )
    assert SECRET.encode() not in text
    errors = [r["error"] for r in read_records(tmp_path / "logs") if r.get("error")]
    assert any("password=***" in e and "postgres://***@db/x" in e for e in errors), errors
    huge = next(e for e in errors if e.startswith("EEE"))
    assert len(huge) < MAX_ERROR_CHARS + 100 and huge.endswith("more characters cut)")


@pytest.mark.parametrize(
    "text",
    [
        "{'password': 'a\\'b\"c-" + SECRET + "'}",  # str() of a dict, an escaped quote
        'password="abc\\"' + SECRET + '"',
        "{'api_keys': ['" + SECRET + "', 'k2-" + SECRET + "']}",
        "postgres://user:p@" + SECRET + "@host/db",  # an @ in the password
        "x" * 3990 + ' password="' + SECRET + SECRET + '"',  # across the cut
    ],
)
def test_no_secret_survives_in_an_error(text: str) -> None:
    out = Redactor().text(text)
    assert SECRET not in out and SECRET[:10] not in out, out


def test_a_url_or_a_secret_key_after_plain_batches_is_still_redacted(tmp_path: Path) -> None:
    """The worker passes over batches of plain parameters without the redactor (see
    capture_lib.worker.plain): a URL with credentials under a key already known to be
    plain, a secret key, a nested dict or an error message later must still be hidden,
    each in a batch of its own."""
    client = cl.init(mode="disk", path=str(tmp_path / "logs"))
    with cl.workflow("w") as wf:
        for i in range(3):  # the keys become known, batch after batch
            with wf.task(f"t{i}", params={"lr": 0.1, "src": "file.csv", "n": i}):
                pass
            assert client.flush()
        for name, params in [
            ("url", {"lr": 0.1, "src": f"https://u:{SECRET}@h/x", "n": 1}),
            ("key", {"lr": 0.1, "password": SECRET}),
            ("nested", {"lr": {"token": SECRET}}),
        ]:
            with wf.task(name, params=params):
                pass
            assert client.flush()
        t = wf.task("failed", params={"lr": 0.1}).start()
        t.end("failed", error=f"password={SECRET}")
    assert cl.flush()
    text = "\n".join(p.read_text() for p in (tmp_path / "logs").rglob("*.jsonl"))
    assert SECRET not in text
    records = read_records(tmp_path / "logs")
    starts = {r["plan"][-1]: r for r in records if r["kind"] == "task_start"}
    assert starts["url"]["params"]["src"] == "https://***@h/x"
    assert starts["t2"]["params"] == {"lr": 0.1, "src": "file.csv", "n": 2}
