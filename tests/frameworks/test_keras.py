"""Keras 3 (torch backend) with ProvmlCallback and autolog: the graph answers
training-data, hyperparameters, run-metrics and prediction-trace (a tiny MLP, CPU)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # the backend installed: before keras

import capture_lib as cl
from capture_lib.integrations import _keras_run, digest
from tests.frameworks.conftest import Captured, ask, framework

np = framework("numpy")
keras = framework("keras")

from capture_lib.integrations import keras as provml_keras  # noqa: E402
from capture_lib.integrations.keras import ProvmlCallback  # noqa: E402

# Keras 3.15's variables with numpy 2 and torch's pytree: their warnings, not ours
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
]


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(64, 4)).astype("float32"),
            rng.normal(size=(64, 1)).astype("float32"))  # fmt: skip


def _model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_callback_records_training_and_the_saved_model(
    captured: Captured, tmp_path: Path
) -> None:
    x, y = _data()
    model = _model()
    callback = ProvmlCallback((x, y), log_batches=True, save_path=tmp_path / "m.keras")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_data=(x, y),
              callbacks=[callback])  # fmt: skip
    model.predict(x[:3], verbose=0, callbacks=[callback])
    store = captured.store()
    file_sha = _sha(tmp_path / "m.keras")

    rows = ask(store, "training-data", model=file_sha)
    data = {r["role"]: r["sha256"] for r in rows}
    assert data == {"x": digest.data_reference(x, 1 << 30)["sha256"],
                    "y": digest.data_reference(y, 1 << 30)["sha256"]}  # fmt: skip
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=file_sha)}
    assert hp["optimizer"] == "Adam" and float(hp["optimizer.learning_rate"]) == pytest.approx(0.01)
    assert hp["loss"] == "mse" and hp["epochs"] == "2" and hp["parameters"] == "49"
    assert json.loads(hp["model_config"])["layers"][1]["config"]["units"] == 8

    (training,) = {r["training"] for r in rows}
    metrics = ask(store, "run-metrics", training=training)
    per_epoch = {(r["metric"], int(r["index"])) for r in metrics}
    assert {("loss", 0), ("loss", 1), ("val_mae", 1), ("batch_loss", 0)} <= per_epoch
    assert sum(r["metric"] == "batch_loss" for r in metrics) == 8  # 4 batches x 2 epochs

    (row,) = ask(store, "predictions", model=_keras_run.weights_reference(model)["sha256"])
    (trace,) = ask(store, "prediction-trace", prediction=row["prediction"])
    assert set(trace["trainingData"].split()) == set(data.values())


def test_autolog_fit_predict_save(captured: Captured, tmp_path: Path) -> None:
    x, y = _data()
    model = _model()
    assert cl.autolog(exclude=["sklearn", "lightning"])["keras"] == "enabled"
    mine: list[Any] = []
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=mine)
    assert mine == []  # the caller's list is not changed
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # goes on: previous_model
    labels = model.predict(x[:2], verbose=0)
    model.save(tmp_path / "m.keras")
    store = captured.store()
    sha = _keras_run.weights_reference(model)["sha256"]

    roles = {r["role"]: r["sha256"] for r in ask(store, "training-data", model=sha)}
    assert set(roles) == {"x", "y", "previous_model"}
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["batch_size"] == "32"
    (row,) = ask(store, "predictions", model=sha)
    assert json.loads(row["value"])["values"] == labels.tolist()
    (trace,) = ask(store, "prediction-trace", prediction=row["prediction"])
    assert trace["modelSha256"] == sha
    assert roles["x"] in trace["trainingData"].split()
    (saved,) = ask(store, "derived-from", model=_sha(tmp_path / "m.keras"))
    assert saved["base"].endswith(sha)


def test_autolog_evaluate_is_an_evaluation_of_the_trained_model(captured: Captured) -> None:
    x, y = _data()
    model = _model()
    cl.autolog(exclude=["sklearn", "lightning"])
    model.fit(x[:48], y[:48], epochs=2, verbose=0, validation_data=(x[48:], y[48:]))
    loss, mae = model.evaluate(x[48:], y[48:], verbose=0)
    as_dict = model.evaluate(x[:16], y[:16], verbose=0, return_dict=True)
    store = captured.store()
    sha = _keras_run.weights_reference(model)["sha256"]

    rows = ask(store, "model-evaluations", model=sha)
    by_task: dict[str, dict[str, float]] = {}
    for r in rows:
        by_task.setdefault(r["evaluation"], {})[r["metric"]] = float(r["value"])
    assert sorted(by_task.values(), key=lambda m: m["loss"] != loss) == [
        {"loss": loss, "mae": mae}, {k: float(v) for k, v in as_dict.items()}]  # fmt: skip
    names = [t["plan"][-1] for t in captured.tasks()]
    assert names.count("Sequential.evaluate") == 2  # fit's validation is not one
    weights = np.ones((16,), dtype="float32")
    model.evaluate(x[:16], y[:16], 16, 0, weights)  # sample_weight by position
    assert captured.tasks("evaluation")[-1]["used"]["sample_weight"]["sha256"] == (
        digest.data_reference(weights, 1 << 30)["sha256"])  # fmt: skip
    evaluation = captured.tasks("evaluation")[0]
    assert evaluation["used"]["x"]["sha256"] == digest.data_reference(x[48:], 1 << 30)["sha256"]
    assert evaluation["used"]["y"]["sha256"] == digest.data_reference(y[48:], 1 << 30)["sha256"]
    assert not cl.stats()["lost"]


def test_an_evaluate_a_callback_calls_during_fit_is_recorded(captured: Captured) -> None:
    x, y = _data()
    model = _model()
    cl.autolog(exclude=["sklearn", "lightning"])

    class Holdout(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.model.evaluate(x[48:], y[48:], verbose=0)

    model.fit(x[:48], y[:48], epochs=2, verbose=0, validation_data=(x[48:], y[48:]),
              callbacks=[Holdout()])  # fmt: skip
    names = [t["plan"][-1] for t in captured.tasks()]
    assert names.count("Sequential.evaluate") == 2  # the callback's, not the validation's


def test_results_are_the_same_with_and_without_capture(captured: Captured) -> None:
    x, y = _data()
    plain = _model()
    plain_history = plain.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    logged = _model()
    cl.autolog(exclude=["sklearn", "lightning"])
    logged_history = logged.fit(x, y, epochs=2, batch_size=16, verbose=0,
                                callbacks=[ProvmlCallback(log_batches=True)]).history  # fmt: skip
    assert plain_history == logged_history
    assert np.array_equal(plain.predict(x, verbose=0), logged.predict(x, verbose=0))
    for a, b in zip(plain.get_weights(), logged.get_weights(), strict=True):
        assert np.array_equal(a, b)


def test_failures_end_the_task_failed_and_never_reach_the_training(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = _data()
    cl.autolog(exclude=["sklearn", "lightning"])

    class Boom(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        _model().fit(x, y, epochs=2, verbose=0, callbacks=[Boom()])
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"]
    assert end["status"] == "failed" and "diverged" in end["error"]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("capture is broken")

    monkeypatch.setattr(_keras_run, "weights_reference", broken)
    monkeypatch.setattr(_keras_run, "data_references", broken)
    model = _model()
    history = model.fit(x, y, epochs=1, verbose=0).history
    model.predict(x, verbose=0)
    assert model.evaluate(x, y, verbose=0)  # its result, though capture fails
    assert history["loss"] and cl.stats()["lost"]["integration_error"] >= 3


def test_disable_puts_keras_back(captured: Captured) -> None:
    before = {n: keras.Model.__dict__.get(n) for n in ("fit", "predict", "evaluate", "save")}
    cl.autolog(exclude=["sklearn", "lightning"])
    assert provml_keras.enabled() and keras.Model.fit is not before["fit"]
    cl.autolog(disable=True)
    assert {n: keras.Model.__dict__.get(n) for n in before} == before


def test_importing_the_integration_does_not_import_keras() -> None:
    code = "import sys, capture_lib.integrations.keras; assert 'keras' not in sys.modules"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   cwd=Path(__file__).parents[2])  # fmt: skip
