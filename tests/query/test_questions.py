"""Every named question, answered exactly on a realistic multi-workflow scenario."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyoxigraph
import pytest

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from query import questions
from tests.query.scenario import Scenario, build


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scenario, OxigraphStore]]:
    """The scenario's disk-only logs, written through the manager (mapping, then the
    derivation update) into an in-memory store."""
    scenario = build(tmp_path_factory.mktemp("scenario"))
    store = OxigraphStore(None)
    manager = Manager(store)
    for f in expand([str(scenario.logs)]):
        for line in read_lines(f):
            assert line.error is None
            manager.apply(resolve_batch(parse_batch(line.body)))
    yield scenario, store


def ask(store: OxigraphStore, name: str, **params: str) -> list[dict[str, str]]:
    q = questions.get(name)
    result = store.query(q.text(params))
    assert isinstance(result, pyoxigraph.QuerySolutions)
    names = result.variables
    return [{v.value: row[v].value for v in names if row[v] is not None} for row in result]


def test_1_training_data(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "training-data", model=s.sha["m2"])
    assert {(r["role"], r["sha256"], r.get("version")) for r in rows} == {
        ("data", s.sha["v2"], "2"),
        ("features", s.sha["features-1"], None),
    }


def test_2_data_derivation(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "data-derivation", model=s.sha["m2"])
    steps = {r["stepName"] for r in rows}
    assert steps == {"train", "merge"}
    raw = {r["inputSha256"]: r.get("source") for r in rows if r.get("raw") == "true"}
    assert raw == {
        s.sha["raw-a"]: "bank-export",
        s.sha["raw-b"]: "partner-survey",
        s.sha["features-1"]: None,
    }
    params = {r["stepName"]: json.loads(r["parameters"]) for r in rows}
    assert params == {
        "merge": {"drop_na": True, "join": "id"},
        "train": {"lr": 0.1, "epochs": 3, "seed": 7},
    }
    inputs = {(r["stepName"], r["input"]) for r in rows}
    assert inputs == {
        ("merge", s.iri["raw-a"]),
        ("merge", s.iri["raw-b"]),
        ("train", s.iri["v2"]),
        ("train", s.iri["features-1"]),
    }


def test_3_reproduce(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "reproduce", model=s.sha["m2"])
    assert {(r["name"], r["value"]) for r in rows} == {
        ("lr", "0.1"),
        ("epochs", "3"),
        ("seed", "7"),
    }
    env = rows[0]
    assert env["run"] == s.iri["m2-run"]
    assert env["python"] and env["hostname"] and env["cpuCount"] and env["packagesSha256"]
    assert len(env.get("gitCommit", "x" * 40)) == 40  # the test suite runs in a git checkout


def test_4_was_used(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "was-used", source=s.sha["raw-b"])
    assert {(r["model"], r["via"]) for r in rows} == {
        (s.iri["m2"], s.iri["v2"]),
        (s.iri["m3"], s.iri["v2"]),
        (s.iri["m4"], s.iri["v2"]),
        (s.iri["m4"], s.iri["m2"]),  # fine-tuned from a model that used it
    }
    assert {r["model"] for r in ask(store, "was-used", source=s.sha["raw-a"])} == {
        s.iri[m] for m in ("m1", "m2", "m3", "m4")
    }


def test_5_downstream(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "downstream", source=s.sha["raw-b"])
    by_kind: dict[str, set[str]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], set()).add(r["entity"])
    assert by_kind["model"] == {s.iri["m2"], s.iri["m3"], s.iri["m4"]}
    assert by_kind["data"] == {s.iri["v2"]}
    evaluations = {(r["name"], r["value"]) for r in rows if r["kind"] == "evaluation"}
    assert evaluations == {("accuracy", "0.86"), ("accuracy", "0.84")}
    assert s.iri["m1"] not in {r["entity"] for r in rows}
    # m2: two inference runs, its evaluation and the fine-tuning of m4; m3: its evaluation
    uses = {r["entity"]: r["uses"] for r in rows if r["kind"] == "model"}
    assert uses == {s.iri["m2"]: "4", s.iri["m3"]: "1", s.iri["m4"]: "1"}
    # the predictions themselves, one model at a time, composed models included
    p2 = ask(store, "predictions", model=s.sha["m2"])
    assert {r["prediction"] for r in p2} == {s.iri["p1"], s.iri["p2"]}
    assert {r["prediction"]: r.get("composedBy") for r in p2}[s.iri["p1"]] is not None
    assert [r["prediction"] for r in ask(store, "predictions", model=s.sha["m4"])] == [s.iri["p3"]]
    assert ask(store, "predictions", model=s.sha["m1"]) == []


def test_6_workflow_consumers(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "workflow-consumers", workflow="curation")
    assert {r["consumer"] for r in rows} == {"credit-model", "ensemble"}
    assert {r["data"] for r in rows} == {s.iri["v1"], s.iri["v2"]}


def test_7_prediction_trace(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    (row,) = ask(store, "prediction-trace", prediction=s.iri["p1"])
    assert row["model"] == s.iri["m2"] and row["training"] == s.iri["m2-train"]
    assert set(row["trainingData"].split()) == {s.sha["v2"], s.sha["features-1"]}
    assert json.loads(row["hyperparameters"]) == {"lr": 0.1, "epochs": 3, "seed": 7}
    (composed,) = ask(store, "prediction-trace", prediction=s.iri["p3"])
    assert composed["model"] == s.iri["m4"] and composed["upstreamPredictions"] == s.iri["p1"]


def test_8_models_in_window(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "models-in-window", **{"from": "2000-01-01T00:00:00Z", "to": "2100-01-01"})
    assert {(r["model"], r["predictions"]) for r in rows} == {
        (s.iri["m2"], "2"),
        (s.iri["m4"], "1"),
    }
    assert ask(store, "models-in-window", **{"from": "2000-01-01", "to": "2000-02-01"}) == []


def test_9_metrics_per_epoch_and_best_epoch(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "run-metrics", training=s.iri["m2-train"])
    loss = [(int(r["index"]), float(r["value"])) for r in rows if r["metric"] == "loss"]
    assert loss == [(0, 0.9), (1, 0.7), (2, 0.5)]
    best = {r["metric"]: r for r in ask(store, "best-epoch", training=s.iri["m2-train"])}
    assert (best["loss"]["lowestAt"], float(best["loss"]["lowest"])) == ("2", 0.5)
    assert (best["accuracy"]["highestAt"], float(best["accuracy"]["highest"])) == ("2", 0.7)


def test_10_stage_resources(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "stage-resources", run=s.iri["m2-run"])
    assert [(r["name"], r.get("stage")) for r in rows] == [
        ("train", "training"),
        ("evaluate", "evaluation"),
    ]
    assert all(r["duration"].startswith("PT") for r in rows)
    assert "cpuSeconds" in rows[0]  # the first run of a task name is always measured


def test_11_experiment_runs(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "experiment-runs", workflow="credit-model")
    accuracy = [(r["run"], float(r["value"])) for r in rows if r["metric"] == "accuracy"]
    assert accuracy == [(s.iri["m2-run"], 0.86), (s.iri["m3-run"], 0.84), (s.iri["m1-run"], 0.81)]
    best = rows[0]
    assert best["run"] == s.iri["m2-run"] and json.loads(best["hyperparameters"])["lr"] == 0.1
    assert best["datasetVersions"] == "2"


def test_12_dataset_versions(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "dataset-comparison", workflow="credit-model")
    # m1 (version 1) and m2 (version 2) have the same settings; m3 has another lr and the
    # failed run no evaluation: only the first two are compared
    assert {json.dumps(json.loads(r["hyperparameters"]), sort_keys=True) for r in rows} == {
        json.dumps({"epochs": 3, "lr": 0.1, "seed": 7}, sort_keys=True)
    }
    accuracy = [(r["datasetVersion"], r["run"], float(r["value"])) for r in rows]
    assert accuracy == [("1", s.iri["m1-run"], 0.81), ("2", s.iri["m2-run"], 0.86)]
    assert ask(store, "dataset-comparison", workflow="curation") == []


def test_13_runs_history(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "runs-history", workflow="credit-model")
    assert [r["user"] for r in rows] == ["alice", "bob", "bob", "bob"]
    failed = [r for r in rows if r.get("status") == "failed"]
    assert [r["run"] for r in failed] == [s.iri["m-failed-run"]]
    assert failed[0]["failedTasks"] == "1"


def test_14_commercial_use(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "commercial-use", model=s.sha["m4"])
    assert {(r["license"], r["data"], r["usedBy"]) for r in rows} == {
        ("CC-BY-NC-4.0", s.iri["raw-b"], "merge")
    }
    assert rows[0]["source"] == "partner-survey"
    assert ask(store, "commercial-use", model=s.sha["m1"]) == []


def test_15_feature_code(world: tuple[Scenario, OxigraphStore]) -> None:
    s, store = world
    rows = ask(store, "feature-code", model=s.sha["m2"])
    assert {(r["role"], r["servedWith"], r["changed"], r["inferences"]) for r in rows} == {
        ("features", s.sha["features-1"], "false", "1"),
        ("features", s.sha["features-2"], "true", "1"),
    }


def test_model_record(world: tuple[Scenario, OxigraphStore]) -> None:
    from query.records import model_record

    s, store = world
    record = model_record(store, s.sha["m4"])
    assert record["sha256"] == s.sha["m4"] and record["framework"] == "sklearn"
    assert record["version"] == "m4" and record["paths"][0].endswith("m4.pkl")
    (training,) = record["trainings"]
    assert training["workflow"] == "ensemble" and training["user"] == "carol"
    assert training["hyperparameters"] == {"lr": "0.001"}
    assert {d["role"] for d in training["data"]} == {"base", "data"}
    assert [d["base"] for d in record["derivedFrom"]] == [s.iri["m2"]]
    m2 = model_record(store, s.sha["m2"])
    assert [(e["metric"], e["value"]) for e in m2["evaluations"]] == [("accuracy", "0.86")]
    assert m2["trainings"][0]["hyperparameters"] == {"lr": "0.1", "epochs": "3", "seed": "7"}


def test_dataset_record(world: tuple[Scenario, OxigraphStore]) -> None:
    from query.records import dataset_record

    s, store = world
    record = dataset_record(store, s.sha["v2"])
    assert record["label"] == "2" and record["split"] == "train"
    assert [v["sha256"] for v in record["versions"]] == [s.sha["v1"], s.sha["v2"]]
    assert {d["source"] for d in record["derivedFrom"]} == {s.iri["raw-a"], s.iri["raw-b"]}
    assert {m["model"] for m in record["usedByModels"]} == {s.iri[m] for m in ("m2", "m3", "m4")}
    raw_b = dataset_record(store, s.sha["raw-b"])
    assert (raw_b["license"], raw_b["source"]) == ("CC-BY-NC-4.0", "partner-survey")


def test_questions_and_records_over_rest(world: tuple[Scenario, OxigraphStore]) -> None:
    from provml.server import build_app

    s, store = world
    client = build_app(["query"], store=store).test_client()
    resp = client.get("/api/v1/questions/was-used", query_string={"source": s.sha["raw-b"]})
    models = {b["model"]["value"] for b in resp.json["results"]["bindings"]}
    assert models == {s.iri["m2"], s.iri["m3"], s.iri["m4"]}
    resp = client.get(f"/api/v1/models/{s.sha['m4']}")
    assert resp.status_code == 200 and resp.json["derivedFrom"][0]["base"] == s.iri["m2"]
    resp = client.get(f"/api/v1/datasets/{s.sha['v2']}")
    assert resp.status_code == 200 and resp.json["label"] == "2"
    assert client.get("/api/v1/models/" + "0" * 64).status_code == 404
    resp = client.get("/api/v1/models/not-an-iri")
    assert resp.status_code == 400 and resp.json["error"] == "invalid_request"
    resp = client.get(
        "/api/v1/questions/models-in-window", query_string={"from": "yesterday", "to": "2026-01-01"}
    )
    assert resp.status_code == 400 and "ISO 8601" in resp.json["message"]


def test_references_as_tables_print_them(world: tuple[Scenario, OxigraphStore]) -> None:
    """What a table shows (``id:exec/…``, ``id:data/sha256/…``), ``sha256:<hex>`` and the
    bare hash name the same node as the full IRI; a shortened hash is refused, saying so."""
    s, store = world
    full = ask(store, "stage-resources", run=s.iri["m2-run"])
    short = "id:" + s.iri["m2-run"].removeprefix("https://provml.dev/id/")
    assert full and ask(store, "stage-resources", run=short) == full
    model = ask(store, "training-data", model=s.iri["m2"])
    for ref in (s.sha["m2"], "sha256:" + s.sha["m2"].upper(), "id:data/sha256/" + s.sha["m2"]):
        assert ask(store, "training-data", model=ref) == model
    from provml.server import build_app

    client = build_app(["query"], store=store).test_client()
    resp = client.get("/api/v1/questions/training-data", query_string={"model": s.sha["m2"][:6]})
    assert resp.status_code == 400 and "a unique prefix of at least 8" in resp.json["message"]
    assert client.get("/api/v1/models/sha256:" + s.sha["m4"]).status_code == 200
    resp = client.get("/api/v1/questions/stage-resources", query_string={"run": "sha256:ab"})
    assert resp.status_code == 400 and "give the IRI here" in resp.json["message"]


def test_every_question_binds_its_parameters(world: tuple[Scenario, OxigraphStore]) -> None:
    _, store = world
    for q in questions.questions().values():
        values = {p.name: {"string": "x", "datetime": "2026-01-01T00:00:00Z"}.get(
            p.kind, "https://provml.dev/id/none") for p in q.params}  # fmt: skip
        text = q.text(values)
        assert ("VALUES" in text) == bool(q.params)
        assert isinstance(store.query(text), pyoxigraph.QuerySolutions)


@pytest.mark.parametrize(
    "payload",
    ['x" } UNION { ?s ?p ?o } #', "x' . ?s ?p ?o", 'credit-model"@en', '\\" ) } DROP ALL'],
)
def test_string_parameters_cannot_change_the_query(
    world: tuple[Scenario, OxigraphStore], payload: str
) -> None:
    _, store = world
    assert ask(store, "workflow-consumers", workflow=payload) == []
    assert ask(store, "runs-history", workflow=payload) == []
