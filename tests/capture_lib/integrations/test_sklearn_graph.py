"""What scikit-learn did, captured by cl.autolog(), answers the named questions."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path

from capture_lib.integrations import digest
from capture_lib.integrations import sklearn as sk
from tests.capture_lib.integrations.conftest import Captured, ask


def test_training_data_hyperparameters_and_prediction_trace(
    captured: Captured, tmp_path: Path
) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5))])
    model.fit(x, y)
    accuracy = model.score(x, y)
    labels = model.predict(x[:2])
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    file_sha = hashlib.sha256((tmp_path / "model.pkl").read_bytes()).hexdigest()
    sha = sk.model_reference(model)["sha256"]
    assert file_sha == sha  # the pickle file is the model's node
    store = captured.store()

    rows = ask(store, "training-data", model=sha)
    assert {r["role"]: r["sha256"] for r in rows} == {
        "X": digest.data_reference(x, 1 << 30)["sha256"],
        "y": digest.data_reference(y, 1 << 30)["sha256"],
    }
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["clf__C"] == "0.5" and hp["clf"] == "LogisticRegression"
    assert json.loads(hp["steps"]) == [["scale", "StandardScaler"], ["clf", "LogisticRegression"]]

    (evaluation,) = ask(store, "model-evaluations", model=sha)
    assert evaluation["metric"] == "accuracy" and float(evaluation["value"]) == accuracy

    (prediction,) = ask(store, "predictions", model=sha)
    assert json.loads(prediction["value"])["values"] == labels.tolist()
    (trace,) = ask(store, "prediction-trace", prediction=prediction["prediction"])
    assert trace["modelSha256"] == sha
    assert set(trace["trainingData"].split()) == {r["sha256"] for r in rows}
    assert json.loads(trace["hyperparameters"])["clf__C"] == 0.5


def test_run_metrics_from_the_estimators_curve(captured: Captured) -> None:
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    x, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 12 iterations: on purpose
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=12, random_state=0).fit(x, y)
    store = captured.store()
    sha = sk.model_reference(model)["sha256"]
    (training,) = {r["training"] for r in ask(store, "training-data", model=sha)}
    metrics = ask(store, "run-metrics", training=training)
    loss = [(int(r["index"]), float(r["value"])) for r in metrics if r["metric"] == "loss"]
    assert loss == list(enumerate(model.loss_curve_))
    (n_iter,) = [r for r in captured.records() if r["kind"] == "metric" and r["name"] == "n_iter"]
    assert n_iter["value"] == 12


def test_fit_transform_output_joins_the_lineage_of_the_next_fit(captured: Captured) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    scaled = StandardScaler().fit_transform(x)
    model = LogisticRegression().fit(scaled, y)
    store = captured.store()
    sha = sk.model_reference(model)["sha256"]
    steps = {r["stepName"] for r in ask(store, "data-derivation", model=sha)}
    assert steps == {"LogisticRegression.fit", "StandardScaler.fit_transform"}


def test_joblib_dump_links_the_file_to_the_model(captured: Captured, tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    joblib.dump(model, tmp_path / "tree.joblib")
    file_sha = hashlib.sha256((tmp_path / "tree.joblib").read_bytes()).hexdigest()
    store = captured.store()
    (row,) = ask(store, "derived-from", model=file_sha)
    assert row["base"].endswith("/data/sha256/" + sk.model_reference(model)["sha256"])
    steps = {r["stepName"] for r in ask(store, "data-derivation", model=file_sha)}
    assert steps == {"save DecisionTreeClassifier", "DecisionTreeClassifier.fit"}
