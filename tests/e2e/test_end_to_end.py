"""The whole path with real processes: capture → tracker → manager → pyoxigraph on disk
→ SPARQL endpoint, over HTTP on loopback, in http mode and in disk-only mode."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from provml.core.ids import content_iri
from tests.conftest import Server, free_port, provml_cmd

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("workflow_script.py")


def run_workflow(workdir: Path, mode: str, target: str, lr: float = 0.1) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(workdir), mode, target, str(lr)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["flushed"], result
    assert result["stats"]["lost"] == {} and result["stats"]["spilled_to_disk"] == 0, result
    return result


def training_data(server: Server, model_sha: str) -> list[dict[str, str]]:
    return server.sparql(f"""
        SELECT ?sha ?role WHERE {{
          <{content_iri(model_sha)}> prov:wasGeneratedBy ?train .
          ?train a provml:TrainingExecution ; prov:qualifiedUsage ?u .
          ?u prov:entity ?data ; prov:hadRole/provml:name ?role .
          ?data provml:sha256 ?sha }}""")


def hyperparameters(server: Server, model_sha: str) -> dict[str, str]:
    rows = server.sparql(f"""
        SELECT ?name ?value WHERE {{
          <{content_iri(model_sha)}> prov:wasGeneratedBy ?train .
          ?train prov:used ?p . ?p a provml:LearningHyperparameterValue ;
                 provml:name ?name ; prov:value ?value }}""")
    return {r["name"]: r["value"] for r in rows}


def model_of(server: Server, prediction: str) -> list[str]:
    rows = server.sparql(f"""
        SELECT ?sha WHERE {{
          <{prediction}> prov:wasGeneratedBy ?inference .
          ?inference a provml:InferenceExecution ; prov:used ?m .
          ?m a provml:Model ; provml:sha256 ?sha }}""")
    return [r["sha"] for r in rows]


def test_http_and_disk_modes_answer_lineage_questions(server: Server, tmp_path: Path) -> None:
    online = run_workflow(tmp_path / "online", "http", server.url, lr=0.1)
    assert online["stats"]["records_sent"] == 17

    logs = tmp_path / "logs"
    offline = run_workflow(tmp_path / "offline", "disk", str(logs), lr=0.05)
    assert not model_of(server, offline["prediction"])  # not ingested yet
    ingest = subprocess.run(
        provml_cmd("ingest", "--url", server.url, "--quiet", str(logs)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "ingested 17 records in 1 batches from 1 files" in ingest.stdout

    for run, lr in ((online, "0.1"), (offline, "0.05")):
        assert training_data(server, run["model"]) == [{"sha": run["clean"], "role": "data"}]
        assert hyperparameters(server, run["model"]) == {"lr": lr, "epochs": "3"}
        assert model_of(server, run["prediction"]) == [run["model"]]
    # the same clean.csv content used by both runs is one node, used by two trainings
    assert online["clean"] == offline["clean"]
    rows = server.sparql(f"""SELECT (COUNT(DISTINCT ?t) AS ?n) WHERE {{
        ?t prov:used <{content_iri(online["clean"])}> ; a provml:TrainingExecution }}""")
    assert rows == [{"n": "2"}]

    # ingesting the same files again adds nothing
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    before = server.sparql(count)
    subprocess.run(
        provml_cmd("ingest", "--url", server.url, "--quiet", str(logs)),
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert server.sparql(count) == before


def test_the_store_survives_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    try:
        run = run_workflow(tmp_path / "w", "http", server.url)
    finally:
        assert server.stop() == 0
    again = Server(tmp_path / "data")
    try:
        assert model_of(again, run["prediction"]) == [run["model"]]
    finally:
        assert again.stop() == 0


def test_ingest_skips_a_torn_line_and_reports_it(server: Server, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run = run_workflow(tmp_path / "w", "disk", str(logs))
    segment = next(logs.iterdir())
    with segment.open("ab") as f:
        f.write(b'{"provml": 1, "batch": "ab')  # a write cut short by a kill
    result = subprocess.run(
        provml_cmd("ingest", "--url", server.url, "--quiet", str(logs)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # loaded the rest, and says it did not load everything
    assert "ingested 17 records" in result.stdout and "(torn_line: 1)" in result.stdout
    assert "torn last line" in result.stderr
    assert model_of(server, run["prediction"]) == [run["model"]]


def test_cli_query_and_ask_print_tables(server: Server, tmp_path: Path) -> None:
    run = run_workflow(tmp_path / "w", "http", server.url)
    out = subprocess.run(
        provml_cmd(
            "query",
            "--url",
            server.url,
            "SELECT ?name WHERE { ?t a provml:TrainingExecution ; provml:name ?name }",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.splitlines()[0].strip() == "name" and "train" in out and "(1 row)" in out
    out = subprocess.run(
        provml_cmd("ask", "--url", server.url, "training-data", f"model={run['model']}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert run["clean"] in out and "(1 row)" in out
    out = subprocess.run(
        provml_cmd("model", "--url", server.url, run["model"]),
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "trainings:" in out and "lr = 0.1" in out and "framework" in out
    record = subprocess.run(
        provml_cmd("dataset", "--url", server.url, "--json", run["clean"]),
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert json.loads(record)["sha256"] == run["clean"]
    bad = subprocess.run(
        provml_cmd("query", "--url", server.url, "SELECT nonsense"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "400" in bad.stderr
    graph = subprocess.run(
        provml_cmd("query", "--url", server.url, "CONSTRUCT WHERE { ?m a provml:Model }"),
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "@prefix provml:" in graph and "a provml:Model" in graph
    schemeless = subprocess.run(
        provml_cmd("ask", "--url", server.url.removeprefix("http://"), "training-data"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert schemeless.returncode == 2 and "not an http:// or https:// URL" in schemeless.stderr
    # a reference copied from a table: id:data/sha256/…
    short = subprocess.run(
        provml_cmd("ask", "--url", server.url, "training-data",
                   f"model=id:data/sha256/{run['model']}"),
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert run["clean"] in short and "(1 row)" in short


def test_demo_refuses_without_a_server(tmp_path: Path) -> None:
    out = subprocess.run(
        provml_cmd("demo", "--url", f"http://127.0.0.1:{free_port()}",
                   "--workdir", str(tmp_path / "demo")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and "no provml service answers" in out.stderr
    assert not (tmp_path / "demo").exists()  # nothing ran, nothing spooled


def test_serve_says_when_its_port_is_taken(server: Server, tmp_path: Path) -> None:
    out = subprocess.run(
        provml_cmd("serve", "--port", str(server.port), "--data-dir", str(tmp_path / "d2")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and "Address already in use" in out.stderr
    assert "Traceback" not in out.stderr


def test_sparql_endpoint_over_http(server: Server, tmp_path: Path) -> None:
    run_workflow(tmp_path / "w", "http", server.url)
    resp = requests.get(
        server.url + "/sparql",
        params={"query": "CONSTRUCT WHERE { ?m a provml:Model }"},
        headers={"Accept": "application/n-triples"},
        timeout=30,
    )
    assert resp.status_code == 200 and "https://provml.dev/ns#Model" in resp.text
    resp = requests.post(server.url + "/sparql", data={"update": "CLEAR ALL"}, timeout=30)
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden"


def test_demo_runs_against_a_server(server: Server, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    out = subprocess.run(
        provml_cmd("demo", "--url", server.url, "--workdir", str(tmp_path / "demo")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Which data trained the model" in out.stdout
    assert "train.csv" in out.stdout and "(1 row)" in out.stdout
    models = server.sparql(
        "SELECT ?m ?fw WHERE { ?m a provml:Model ; prov:qualifiedGeneration/provml:framework ?fw }"
    )
    assert [m["fw"] for m in models] == ["scikit-learn"]
    epochs = server.sparql("""SELECT (COUNT(?s) AS ?n) WHERE {
        ?s a provml:LearningStageSectionExecution }""")
    assert epochs == [{"n": "8"}]


def test_split_tracker_forwards_to_a_manager_over_http(tmp_path: Path) -> None:
    store = Server(tmp_path / "data", "--component", "manager", "--component", "query")
    tracker = Server(
        tmp_path / "tracker-data", "--component", "tracker", "--manager-url", store.url
    )
    try:
        assert requests.get(tracker.url + "/healthz", timeout=5).json()["components"] == ["tracker"]
        run = run_workflow(tmp_path / "w", "http", tracker.url)
        assert model_of(store, run["prediction"]) == [run["model"]]
        assert requests.get(store.url + "/api/v1/stats", timeout=5).json()["records"] == 17
        # a bad batch is refused by the tracker and never reaches the manager
        resp = requests.post(tracker.url + "/api/v1/batches", json={"provml": 1}, timeout=5)
        assert resp.status_code == 400
        assert requests.get(store.url + "/api/v1/stats", timeout=5).json()["batches"] == 1
    finally:
        assert tracker.stop() == 0
    # with its manager not yet up, a tracker queues durably (202), then delivers
    store.stop()
    tracker = Server(tmp_path / "tracker-data2", "--component", "tracker", "--manager-url",
                     store.url)  # fmt: skip
    try:
        logs = tmp_path / "logs"
        offline = run_workflow(tmp_path / "w2", "disk", str(logs))
        batch = next(logs.iterdir()).read_bytes().splitlines()[0]
        resp = requests.post(
            tracker.url + "/api/v1/batches",
            data=batch,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert resp.status_code == 202 and resp.json()["status"] == "queued"
        stats = requests.get(tracker.url + "/api/v1/tracker/stats", timeout=5).json()
        assert stats["queue_depth"] == 1 and stats["forward_retries"] > 0
        store = Server(tmp_path / "data", "--component", "manager", "--component", "query",
                       _port=store.port)  # fmt: skip
        deadline = time.monotonic() + 30
        while not model_of(store, offline["prediction"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert model_of(store, offline["prediction"]) == [offline["model"]]
        metrics = requests.get(tracker.url + "/metrics", timeout=5).text
        assert "provml_tracker_queue_depth 0" in metrics
        assert "provml_tracker_batches_forwarded_total 1" in metrics
    finally:
        assert tracker.stop() == 0
        assert store.stop() == 0


def _serve_demo(tmp_path: Path, log: Path) -> tuple[int, str]:
    """Start ``provml serve --demo`` as ``make run`` does, in tmp_path, wait for its
    report, check it still serves, stop it: the number of triples it held, and what it
    printed (its port written as make run's)."""
    import signal
    import time

    from tests.conftest import free_port

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # run as `make run` does: the README shows its output
            provml_cmd("serve", "--port", str(port), "--data-dir", "./provml-data", "--demo"),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            deadline = time.monotonic() + 240
            while "Ctrl-C to stop" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            text = log.read_text().replace(f"127.0.0.1:{port}", "127.0.0.1:5000")
            assert "SPARQL endpoint: http://127.0.0.1:5000/sparql" in text
            assert "Which data trained the model" in text and "train.csv" in text
            assert "Which model made the prediction" in text
            # the browser's first page lists the demo's run, its model has a page
            page = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
            assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
            assert "breast-cancer-classifier" in page.text
            model = re.search(r"/models/([0-9a-f]{64})", text)
            assert model is not None, text
            page = requests.get(f"http://127.0.0.1:{port}/models/{model[1]}", timeout=30)
            assert page.status_code == 200 and "train.csv" in page.text
            # still serving after the demo
            resp = requests.post(
                f"http://127.0.0.1:{port}/sparql",
                data={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
                headers={"Accept": "application/sparql-results+json"},
                timeout=30,
            )
            return int(resp.json()["results"]["bindings"][0]["n"]["value"]), text
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0


def _varying(text: str) -> str:
    """``text`` with what differs from run to run (execution ids, times) blanked out."""
    text = re.sub(
        r"exec/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "exec/X", text
    )
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", "TIME", text)


def test_serve_with_the_demo_prints_lineage_and_keeps_serving(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    first, text = _serve_demo(tmp_path, tmp_path / "serve.log")
    assert "Running the demo workflow" in text
    # the README shows what `make run` prints, but for the run's ids
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    sample = readme[readme.index("```\nprovml ") + 4 :]
    sample = sample[: sample.index("```")]
    assert _varying(text).splitlines() == _varying(sample).splitlines()
    # a second start on the same data directory shows the lineage without a second run
    again, text = _serve_demo(tmp_path, tmp_path / "again.log")
    assert "already ran into this store" in text and "Running the demo" not in text
    assert again == first > 0


def test_url_errors_are_messages(tmp_path: Path) -> None:
    broken = subprocess.run(provml_cmd("query", "--url", "http://[::1", "ASK {}"),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert broken.returncode == 2 and "is not a URL" in broken.stderr
    assert "Traceback" not in broken.stderr
    # with --data-dir no URL is used: a wrong PROVML_URL does not matter
    env = {**os.environ, "PROVML_URL": "127.0.0.1:5000"}
    local = subprocess.run(
        provml_cmd("query", "--data-dir", str(tmp_path / "d"), "ASK {}"),
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    # … and a data directory without a store is not made one by a query
    assert local.returncode == 1 and "no embedded store" in local.stderr, local.stderr
    assert not (tmp_path / "d").exists()
