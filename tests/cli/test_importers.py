"""`provml import --format mlflow` of the corpus' MLflow JSON dumps and `--format
flowcept` of its Flowcept task messages, into a real server on a free port: what lands,
what is said not to, that nothing unrelated is joined, and that importing again adds
nothing. (Tracking stores written by the real MLflow client: tests/frameworks.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import requests
from click.testing import CliRunner, Result

from provml.cli import main
from tests.cli.conftest import LiveServer, serve
from tests.conftest import CORPUS

MLFLOW = CORPUS / "mlflow-tools/samples/oss_mlflow"
FLOWCEPT = CORPUS / "flowcept/tests/api"
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not there")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    srv = serve(tmp_path)
    yield srv
    srv.stop()


class Served(Protocol):
    url: str


def settle(live: Served) -> None:
    """Until the tracker has stored what it queued (a loaded machine may answer 202)."""
    deadline = time.monotonic() + 60
    while requests.get(f"{live.url}/api/v1/tracker/stats", timeout=30).json()["queue_depth"]:
        assert time.monotonic() < deadline, "the tracker's queue did not drain"
        time.sleep(0.05)


def load(live: Served, fmt: str, *sources: str) -> Result:
    args = ["import", "--format", fmt, "--quiet", "--url", live.url, *sources]
    result = CliRunner().invoke(main, args, prog_name="provml")
    settle(live)
    return result


def sparql(live: Served, query: str) -> list[dict[str, str]]:
    resp = requests.post(f"{live.url}/sparql", data={"query": query}, timeout=30,
                         headers={"Accept": "application/sparql-results+json"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return [{k: v["value"] for k, v in b.items()} for b in resp.json()["results"]["bindings"]]


def count(live: Served) -> int:
    return int(sparql(live, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")[0]["n"])


def ask(live: Served, name: str, **params: str) -> list[dict[str, str]]:
    resp = requests.get(f"{live.url}/api/v1/questions/{name}", params=params, timeout=30)
    assert resp.status_code == 200, resp.text
    return [{k: v["value"] for k, v in b.items()} for b in resp.json()["results"]["bindings"]]


def test_mlflow_dumps(live: LiveServer) -> None:
    before = count(live)
    done = load(live, "mlflow", str(MLFLOW))
    # the model description names no version: said, exit status 1; everything else landed
    assert done.exit_code == 1
    assert "imported 8 MLflow runs (" in done.output and "2 model versions" in done.output
    assert "not imported: 1" in done.output and "mlflow_model.json" in done.output
    n = count(live)
    assert n > before
    # the model registered as sklearn_wine version 6, of the run its dump carries
    (model,) = sparql(
        live,
        """SELECT DISTINCT ?m WHERE { ?m prov:qualifiedGeneration ?g .
        ?g provml:name "sklearn_wine" ; provml:version "6" }""",
    )
    hyper = {(r["name"], r["value"]) for r in ask(live, "hyperparameters", model=model["m"])}
    assert hyper == {("max_depth", "4"), ("max_leaf_nodes", "32")}
    reproduce = ask(live, "reproduce", model=model["m"])
    assert {r["gitCommit"] for r in reproduce} == {"931960a27c12055417abffa04200ed9fb4afaa6f"}
    # runs are named after the experiment their dump holds, else by its id
    workflows = {r["workflow"] for r in ask(live, "runs")}
    assert {"sklearn_wine", "mlflow experiment 2", "mlflow experiment 3"} <= workflows
    runs = {r["run"] for r in ask(live, "experiment-runs", workflow="sklearn_wine")}
    assert len(runs) == 4  # two of experiment 1, one of 2.4.0's, one of model_version.json
    # the dataset input of the MLflow 2.4 run, with its digest, trained its model only
    data = sparql(
        live,
        """SELECT ?m ?version WHERE { ?m a provml:Model ; prov:wasGeneratedBy ?t .
        ?t prov:qualifiedUsage ?u . ?u provml:version ?version }""",
    )
    assert {r["version"] for r in data} == {"217f4949"}
    # again: nothing added; a source that is none: a clear message, nothing added
    assert load(live, "mlflow", str(MLFLOW)).exit_code == 1 and count(live) == n
    bad = load(live, "mlflow", str(MLFLOW / "nothing-here"))
    assert bad.exit_code == 1 and "no tracking URI" in bad.output and count(live) == n


def test_flowcept_messages(live: LiveServer) -> None:
    before = count(live)
    done = load(live, "flowcept", str(FLOWCEPT / "sample_data.json"),
                str(FLOWCEPT / "sample_data_with_telemetry_and_rai.json"))  # fmt: skip
    assert done.exit_code == 1  # 17 tasks say not when they ran: said, not imported
    assert "imported 199 Flowcept tasks from 274 messages" in done.output
    assert "not imported: 17" in done.output
    assert done.output.count("no message of it says when it ran") == 17
    n = count(live)
    # the task of the MLflow adapter: its parameters and what it generated
    rows = sparql(
        live,
        """SELECT ?t ?name ?value WHERE { ?t provml:name "mlflow" ;
        prov:startedAtTime "2023-01-24T23:32:20.215Z"^^xsd:dateTime ; prov:used ?p .
        ?p provml:name ?name ; prov:value ?value }""",
    )
    assert {(r["name"], r["value"]) for r in rows} == {("batch_size", "64"),
                                                       ("number_epochs", "10")}  # fmt: skip
    loss = sparql(
        live,
        f"""SELECT ?v WHERE {{ ?d prov:wasGeneratedBy <{rows[0]["t"]}> ;
        prov:value ?v }}""",
    )
    assert [r["v"] for r in loss] == ["0.04"]
    # the Dask workflow: nine tasks, part of one run
    wf = sparql(
        live,
        """SELECT ?w (COUNT(?t) AS ?n) WHERE { ?w provml:metadata ?m .
        FILTER(CONTAINS(STR(?m), "wf_1df28552-c34e-4ee8-8fba-3b3d57b71839"))
        ?t provml:partOf ?w } GROUP BY ?w""",
    )
    assert [r["n"] for r in wf] == ["9"]
    failed = sparql(
        live,
        """SELECT ?t WHERE { ?t provml:name "forced_error_func" ;
        provml:status "failed" }""",
    )
    assert len(failed) == 3
    # nothing unrelated is joined: no Flowcept task used data another one generated, no
    # derivation, and each task without a workflow is a run of its own
    assert not sparql(
        live,
        """SELECT ?d WHERE { ?t prov:used ?d . ?d a provml:Data .
        ?t provml:partOf/provml:metadata ?m . FILTER(CONTAINS(STR(?m), "flowcept")) }""",
    )
    shared = sparql(
        live,
        """SELECT ?w (COUNT(?t) AS ?n) WHERE { ?t provml:partOf ?w .
        ?w provml:metadata ?m . FILTER(CONTAINS(STR(?m), "flowcept_task_id")) }
        GROUP BY ?w HAVING (COUNT(?t) > 1)""",
    )
    assert not shared
    assert n > before
    # again: nothing added
    again = load(live, "flowcept", str(FLOWCEPT / "sample_data.json"),
                 str(FLOWCEPT / "sample_data_with_telemetry_and_rai.json"))  # fmt: skip
    assert again.exit_code == 1 and count(live) == n
    # not a file of messages: a clear message, nothing added
    bad = load(live, "flowcept", str(FLOWCEPT))
    assert bad.exit_code == 1 and "not a file of Flowcept task messages" in bad.output
    assert count(live) == n


def test_other_formats_still_take_files_only(live: LiveServer, tmp_path: Path) -> None:
    result = load(live, "provn", str(tmp_path))
    assert result.exit_code == 2 and "a directory" in result.output
    result = load(live, "auto", str(tmp_path / "none.provn"))
    assert result.exit_code == 2 and "no such file" in result.output
