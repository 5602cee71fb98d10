"""`provml ingest` says what it did not load: exit status 1 and one summary line of
counts by reason, on both paths and in both formats; --allow-partial loads the rest."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import Server, full_records, make_batch, provml_cmd

pytestmark = pytest.mark.integration

TORN = b'{"provml": 1, "batch": "ab'  # a write cut short by a kill


def ingest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(provml_cmd("ingest", "--quiet", *args),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def messy_logs(root: Path) -> Path:
    """A truncated file, random bytes, a torn line in the middle, an invalid batch, and
    two good batches around them."""
    logs = root / "logs"
    logs.mkdir()
    good = orjson.dumps(make_batch(full_records()))
    invalid = orjson.dumps(make_batch([{"kind": "metric", "n": 1}]))
    (logs / "a-truncated.jsonl").write_bytes(TORN)
    (logs / "b-random.jsonl").write_bytes(os.urandom(256).replace(b"\n", b" "))
    (logs / "c-middle.jsonl").write_bytes(
        b"\n".join([good, good[: len(good) // 2], b"[1, 2]", invalid, good]) + b"\n"
    )
    return logs


SUMMARY = (
    "ingested {records} records in 2 batches from 3 files; "
    "skipped 4 lines (not_a_batch: 1, not_json: 1, torn_line: 2); "
    "refused 1 batch (invalid_request: 1)"
)


@pytest.mark.parametrize("path", ["url", "data-dir"])
def test_ingest_fails_unless_everything_loaded(tmp_path: Path, path: str) -> None:
    logs = messy_logs(tmp_path)
    server = Server(tmp_path / "data") if path == "url" else None
    try:
        where = ["--url", server.url] if server else ["--data-dir", str(tmp_path / "direct")]
        records = len(full_records())
        failed = ingest(*where, str(logs))
        assert failed.returncode == 1, failed.stderr
        # one summary line on stdout; every skipped line and refused batch on stderr
        assert failed.stdout.strip() == SUMMARY.format(records=2 * records)
        assert "a-truncated.jsonl:1: torn last line" in failed.stderr
        assert "c-middle.jsonl:2: not JSON" in failed.stderr
        assert "c-middle.jsonl:4" in failed.stderr and "--allow-partial" in failed.stderr
        partial = ingest("--allow-partial", *where, str(logs))
        assert partial.returncode == 0, partial.stderr
        assert partial.stdout.strip() == SUMMARY.format(records=2 * records)
        clean = tmp_path / "clean"
        clean.mkdir()
        (clean / "c.jsonl").write_bytes((logs / "c-middle.jsonl").read_bytes().split(b"\n")[0])
        complete = ingest(*where, str(clean))  # a final line without \n is still whole
        assert complete.returncode == 0, complete.stderr
        assert complete.stdout.strip() == f"ingested {records} records in 1 batches from 1 files"
    finally:
        if server is not None:
            assert server.stop() == 0


@pytest.mark.parametrize("path", ["url", "data-dir"])
def test_a_provlake_log_that_loads_nothing_fails(tmp_path: Path, path: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "prov-1.log").write_bytes(
        b"\n".join([b"{}", b"[1]", os.urandom(64).replace(b"\n", b"")])
    )
    server = Server(tmp_path / "data") if path == "url" else None
    try:
        where = ["--url", server.url] if server else ["--data-dir", str(tmp_path / "direct")]
        out = ingest("--format", "provlake", *where, str(logs))
        assert out.returncode == 1, out.stderr
        assert out.stdout.strip() == (
            "ingested 0 records in 0 batches from 1 files; skipped 2 lines (not_a_bag: 1, "
            "torn_line: 1); refused 1 batch (invalid_request: 1)"
        )
    finally:
        if server is not None:
            assert server.stop() == 0
