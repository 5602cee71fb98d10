"""`provml import --format mlflow` of tracking stores the real MLflow client wrote (a
SQLite store and a file store, in temporary directories), into a `provml serve` process:
the named questions answer what the runs did, importing again adds nothing, and what
was logged since is added. (MLflow makes the runs and the command reads them in this
process: importing mlflow takes seconds, once.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from tests.cli.test_importers import ask, count
from tests.cli.test_importers import load as load_into
from tests.conftest import Server
from tests.frameworks.conftest import framework

framework("mlflow")
framework("sklearn")
from tests.frameworks.mlflow_runs import make  # noqa: E402

# MLflow's own deprecation warnings are not this test's
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore")]


def load(server: Server, *sources: str) -> Result:
    return load_into(server, "mlflow", *sources)


def training_of(server: Server, run_id: str) -> tuple[str, str]:
    """(workflow run, training execution) of an MLflow run, found by its run id."""
    rows = server.sparql(f"""SELECT ?run ?training WHERE {{
        ?run a provml:WorkflowExecution ; provml:metadata ?m .
        FILTER(CONTAINS(STR(?m), '"mlflow_run_id":"{run_id}"'))
        ?training provml:partOf ?run ; a provml:TrainingExecution }}""")
    assert len(rows) == 1, rows
    return rows[0]["run"], rows[0]["training"]


def model_of(server: Server, training: str) -> str:
    rows = server.sparql(f"SELECT DISTINCT ?m WHERE {{ ?m prov:wasGeneratedBy <{training}> ; "
                         "a provml:Model }")  # fmt: skip
    assert len(rows) == 1, rows
    return rows[0]["m"]


def test_sqlite_store_questions_idempotence_and_increments(server: Server, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    made = make(uri, "first", (tmp_path / "artifacts").as_uri())
    first = load(server, uri)
    assert first.exit_code == 0, first.output
    assert "imported 3 MLflow runs (" in first.output and "1 model versions" in first.output
    n = count(server)

    run_a, train_a = training_of(server, made["A"]["run"])
    model_a = model_of(server, train_a)
    hyper = {(r["name"], r["value"]) for r in ask(server, "hyperparameters", model=model_a)}
    assert hyper == {("alpha", "0.5"), ("api_key", "***"), ("solver", "auto")}
    data = ask(server, "training-data", model=model_a)
    assert [(r["role"], r["split"], r["run"]) for r in data] == [("training/A-data", "training",
                                                                   run_a)]  # fmt: skip
    assert len(data[0]["version"]) == 8  # MLflow's digest of the data
    epochs = ask(server, "run-metrics", training=train_a)
    assert [(r["index"], float(r["value"])) for r in epochs if r["metric"] == "loss"] == [
        ("0", 1.5), ("1", 1.0), ("2", 0.8333)
    ]  # fmt: skip
    best = {r["metric"]: r for r in ask(server, "best-epoch", training=train_a)}
    assert best["loss"]["lowestAt"] == "2" and best["loss"]["highestAt"] == "0"
    models = ask(server, "models")
    assert {r["training"] for r in models} == {train_a, training_of(server, made["B"]["run"])[1]}
    experiment = ask(server, "experiment-runs", workflow="wine")
    assert {(r["run"], r["metric"]) for r in experiment} >= {(run_a, "acc"), (run_a, "loss")}
    reproduce = ask(server, "reproduce", model=model_a)
    assert {r["gitCommit"] for r in reproduce} == {"c6201fcbf3a50b93667ba6d6063932ec55a44afa"}
    # the registered version is the same model node, under its name and version
    registered = server.sparql(f"""SELECT ?name ?version WHERE {{ <{model_a}>
        prov:qualifiedGeneration ?g . ?g provml:name ?name ; provml:version ?version }}""")
    assert [(r["name"], r["version"]) for r in registered] == [("wine-model", "1")]
    # B trained on its own data only; the running run C has no end and no status yet
    _, train_b = training_of(server, made["B"]["run"])
    data_b = ask(server, "training-data", model=model_of(server, train_b))
    assert [r["role"] for r in data_b] == ["training/B-data"]
    assert data_b[0]["data"] != data[0]["data"]
    runs = {r["run"]: r for r in ask(server, "runs")}
    run_c, _ = training_of(server, made["C"]["run"])
    assert runs[run_c]["status"] == "running" and "ended" not in runs[run_c]
    assert runs[run_a]["status"] == "finished" and runs[run_a]["user"]

    # the same store again: nothing added
    again = load(server, uri)
    assert again.exit_code == 0, again.output
    assert count(server) == n

    # a value logged to A since, and a new run D: added, the rest unchanged
    more = make(uri, "more", (tmp_path / "artifacts").as_uri())
    third = load(server, uri)
    assert third.exit_code == 0 and "imported 4 MLflow runs" in third.output
    assert count(server) > n
    epochs = ask(server, "run-metrics", training=train_a)
    assert [r["index"] for r in epochs if r["metric"] == "loss"] == ["0", "1", "2", "3"]
    training_of(server, more["D"]["run"])
    n = count(server)
    assert load(server, uri).exit_code == 0 and count(server) == n


def test_file_store_directory_and_uri_are_one_import(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlruns = tmp_path / "mlruns"
    made = make(mlruns.as_uri(), "first", (tmp_path / "artifacts").as_uri())
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    done = load(server, str(mlruns))
    assert done.exit_code == 0, done.output
    assert not list(cwd.iterdir())  # reading wrote nothing (no mlflow.db) where it ran
    n = count(server)
    _, train_a = training_of(server, made["A"]["run"])
    assert ask(server, "hyperparameters", model=model_of(server, train_a))
    # the same store by its URI: the same identifiers, nothing added
    assert load(server, mlruns.as_uri()).exit_code == 0
    assert count(server) == n
    # a store that is not there: a clear message; none is made, nothing changed
    missing = load(server, f"sqlite:///{tmp_path}/no/mlflow.db")
    assert missing.exit_code == 1 and "cannot read the MLflow tracking store" in missing.output
    assert "does not exist" in missing.output and not (tmp_path / "no").exists()
    assert count(server) == n
