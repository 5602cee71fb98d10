"""`provml ingest --data-dir`: disk-only files straight into an embedded store, with the
same graph as through the tracker and the manager."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server, provml_cmd
from tests.e2e.test_end_to_end import run_workflow

pytestmark = pytest.mark.integration


def test_direct_load_gives_the_graph_the_servers_give(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for i, lr in enumerate((0.1, 0.05, 0.2)):
        run_workflow(tmp_path / f"w{i}", "disk", str(logs), lr=lr)
    (logs / "torn.jsonl").write_bytes(b'{"provml": 1, "batch": "ab')  # killed mid-write

    direct = subprocess.run(
        provml_cmd("ingest", "--quiet", "--allow-partial", "--data-dir", str(tmp_path / "direct"),
                   "--workers", "2", str(logs)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    assert "ingested 51 records in 3 batches" in direct.stdout
    assert "torn last line" in direct.stderr
    again = subprocess.run(
        provml_cmd("ingest", "--quiet", "--data-dir", str(tmp_path / "direct"), str(logs)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 1  # the torn line is skipped again, and said

    via_server = Server(tmp_path / "served")
    try:
        subprocess.run(provml_cmd("ingest", "--quiet", "--url", via_server.url, str(logs)),
                       capture_output=True, timeout=300)  # fmt: skip
        expected = via_server.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }")
    finally:
        via_server.stop()
    loaded = Server(tmp_path / "direct")
    try:
        got = loaded.sparql("SELECT ?s ?p ?o WHERE { ?s ?p ?o }")
    finally:
        loaded.stop()
    key = lambda r: (r["s"], r["p"], r["o"])  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert any(r["p"].endswith("wasDerivedFrom") for r in got)  # derivation edges too


def test_direct_load_refuses_a_store_in_use(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        logs = tmp_path / "logs"
        run_workflow(tmp_path / "w", "disk", str(logs))
        out = subprocess.run(
            provml_cmd("ingest", "--quiet", "--data-dir", str(tmp_path / "data"), str(logs)),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 1 and "another provml process" in out.stderr
    finally:
        server.stop()


def _triples(data_dir: Path) -> list[tuple[str, str, str]]:
    out = subprocess.run(
        provml_cmd("query", "--json", "--data-dir", str(data_dir),
                   "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"),
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    rows = json.loads(out.stdout)["results"]["bindings"]
    return sorted((r["s"]["value"], r["p"]["value"], r["o"]["value"]) for r in rows)


def test_the_loaded_store_is_compacted_and_compaction_keeps_the_graph(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run = run_workflow(tmp_path / "w", "disk", str(logs))
    data = tmp_path / "data"
    loaded = subprocess.run(
        provml_cmd("ingest", "--data-dir", str(data), str(logs)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "compacting embedded pyoxigraph" in loaded.stderr and "compacted in" in loaded.stderr
    graph = _triples(data)
    assert len(graph) > 100

    again = subprocess.run(provml_cmd("compact", "--data-dir", str(data)),
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "compacted in" in again.stderr
    assert _triples(data) == graph
    exported = subprocess.run(
        provml_cmd("export", "--data-dir", str(data), "--model", run["model"], "--format",
                   "ntriples"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert f"/data/sha256/{run['model']}>" in exported.stdout

    skipped = subprocess.run(
        provml_cmd("ingest", "--quiet", "--no-compact", "--data-dir", str(tmp_path / "d2"),
                   str(logs)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert skipped.returncode == 0 and skipped.stderr == ""
    assert _triples(tmp_path / "d2") == graph


def test_compact_refuses_a_store_in_use_or_missing(tmp_path: Path) -> None:
    missing = subprocess.run(provml_cmd("compact", "--data-dir", str(tmp_path / "nothing")),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 1 and "no embedded store" in missing.stderr
    assert not (tmp_path / "nothing").exists()  # nothing created
    server = Server(tmp_path / "data")
    try:
        for command in (("compact",), ("export", "--format", "turtle"), ("query", "ASK {}")):
            busy = subprocess.run(
                provml_cmd(command[0], "--data-dir", str(tmp_path / "data"), *command[1:]),
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert busy.returncode == 1 and "another provml process" in busy.stderr, command
            assert "Traceback" not in busy.stderr
    finally:
        server.stop()
