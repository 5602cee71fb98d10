"""LightGBM captured by cl.autolog() (native lightgbm.train, Booster.predict, save_model; the
LGBMClassifier/LGBMRegressor wrappers through the scikit-learn integration) and by the
explicit ProvmlCallback: the graph answers the named questions; results are unchanged."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np

import capture_lib as cl
from capture_lib.integrations import sklearn as sk
from tests.frameworks import _boosting_checks as checks
from tests.frameworks.conftest import Captured, ask, framework

lgb = framework("lightgbm")

PARAMS = {"objective": "binary", "num_leaves": 4, "learning_rate": 0.3, "seed": 0,
          "num_threads": 1, "verbose": -1, "password": "hunter2"}  # fmt: skip


_data, _sha = checks.data, checks.sha_of


def _native(x: Any, y: Any, rounds: int = 8, callbacks: Any = ()) -> Any:
    train = lgb.Dataset(x[:200], label=y[:200])
    valid = lgb.Dataset(x[200:], label=y[200:], reference=train)
    return lgb.train(PARAMS, train, rounds, valid_sets=[valid], valid_names=["val"],
                     callbacks=list(callbacks))  # fmt: skip


def test_native_training_answers_the_questions(captured: Captured, tmp_path: Path) -> None:
    x, y = _data()
    assert cl.autolog()["lightgbm"] == "enabled"
    log: dict[str, Any] = {}
    booster = _native(x, y, 40, [lgb.record_evaluation(log), lgb.early_stopping(3, verbose=False)])
    rounds = len(log["val"]["binary_logloss"])
    assert rounds < 40  # early stopping: the task still ends, with the returned Booster
    booster.predict(x[:3])
    booster.save_model(tmp_path / "model.txt")
    sha = sk.model_reference(booster)["sha256"]
    assert sha == hashlib.sha256(pickle.dumps(booster)).hexdigest()
    store = captured.store()

    training = checks.native_graph(store, sha, x, y, tmp_path / "model.txt")
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["num_leaves"] == "4" and hp["num_boost_round"] == "40"
    assert hp["password"] == "***"
    metrics = ask(store, "run-metrics", training=training)
    curve = [(int(r["index"]), float(r["value"])) for r in metrics]
    assert curve == list(enumerate(log["val"]["binary_logloss"]))  # spread over 40: all kept
    assert cl.stats()["lost"] == {}


def test_sklearn_wrappers_are_captured_as_estimators(captured: Captured) -> None:
    x, y = _data()
    cl.autolog()
    model = lgb.LGBMClassifier(n_estimators=6, num_leaves=4, n_jobs=1, verbose=-1)
    model.fit(x[:200], y[:200], eval_X=x[200:], eval_y=y[200:])
    accuracy = model.score(x[200:], y[200:])
    model.predict(x[:2])
    sha = sk.model_reference(model)["sha256"]
    store = captured.store()

    roles = {r["role"]: r["sha256"] for r in ask(store, "training-data", model=sha)}
    assert roles == {"X": _sha(x[:200]), "y": _sha(y[:200]), "eval_set_0_X": _sha(x[200:]),
                     "eval_set_0_y": _sha(y[200:])}  # fmt: skip
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["n_estimators"] == "6" and hp["num_leaves"] == "4"
    (evaluation,) = ask(store, "model-evaluations", model=sha)
    assert float(evaluation["value"]) == accuracy
    (training,) = {r["training"] for r in ask(store, "training-data", model=sha)}
    curve = [float(r["value"]) for r in ask(store, "run-metrics", training=training)]
    assert curve == model.evals_result_["valid_0"]["binary_logloss"]
    (prediction,) = ask(store, "predictions", model=sha)
    (trace,) = ask(store, "prediction-trace", prediction=prediction["prediction"])
    assert trace["modelSha256"] == sha
    # the wrapper's label encoder is a helper, not a section; its Booster.predict is quiet
    assert [r for r in captured.records() if r["kind"] == "section_start"
            and r["plan"][-1] != "iteration"] == []  # fmt: skip
    assert [t["plan"][-1] for t in captured.tasks()] == [
        "LGBMClassifier.fit",
        "LGBMClassifier.score",
        "LGBMClassifier.predict",
    ]


def _everything(x: Any, y: Any) -> dict[str, Any]:
    booster = _native(x, y)
    model = lgb.LGBMRegressor(n_estimators=5, n_jobs=1, verbose=-1).fit(x, x[:, 0])
    return {"model": booster.model_to_string(), "predict": booster.predict(x),
            "regress": model.predict(x), "wrapper": model.booster_.model_to_string()}  # fmt: skip


def test_identical_results_with_and_without_capture(captured: Captured) -> None:
    x, y = _data()
    checks.identical_with_and_without(captured, lambda: _everything(x, y))


def test_explicit_callback_without_autolog(captured: Captured) -> None:
    from capture_lib.integrations.lightgbm import ProvmlCallback

    x, y = _data()
    booster = _native(x, y, 4, [ProvmlCallback()])
    booster.predict(x[:2])  # not patched: no task
    (task,) = captured.tasks()
    assert task["params"]["num_leaves"] == 4 and task["params"]["num_boost_round"] == 4
    assert task["used"]["X"]["@data"] == "missing"  # freed by LightGBM, built before autolog
    assert task["used"]["y"]["sha256"] == _sha(y[:200].astype(np.float32))
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"]  # at the last round
    assert end["generated"]["model"]["@data"] == "model"
    sections = [r["index"] for r in captured.records() if r["kind"] == "section_start"]
    assert sections == [0, 1, 2, 3]
    assert cl.stats()["lost"] == {"unhashable_input": 2}  # the training and validation X


def test_explicit_callback_ends_after_early_stopping(captured: Captured) -> None:
    from capture_lib.integrations.lightgbm import ProvmlCallback

    x, y = _data()
    booster = _native(x, y, 40, [lgb.early_stopping(2, verbose=False), ProvmlCallback()])
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"]  # the callback released
    assert "status" not in end and booster.best_iteration < 40
    assert end["generated"]["model"]["sha256"] == sk.model_reference(booster)["sha256"]


def test_never_raises_into_training(captured: Captured, monkeypatch: Any) -> None:
    x, y = _data()
    checks.never_raises(captured, monkeypatch, lambda: _native(x, y).model_to_string())


def test_disable_puts_everything_back(captured: Captured) -> None:
    before = (lgb.train, lgb.engine.train, lgb.Booster.predict, lgb.Dataset.__init__)
    cl.autolog()
    assert lgb.train is not before[0]
    cl.autolog(disable=True)
    assert (lgb.train, lgb.engine.train, lgb.Booster.predict, lgb.Dataset.__init__) == before
