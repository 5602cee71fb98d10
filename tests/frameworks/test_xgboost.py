"""XGBoost captured by cl.autolog() (native xgboost.train, Booster.predict, save_model; the
XGBClassifier/XGBRegressor wrappers through the scikit-learn integration) and by the
explicit ProvmlCallback: the graph answers the named questions; results are unchanged."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

import capture_lib as cl
from capture_lib.integrations import _boosting as boosting
from capture_lib.integrations import sklearn as sk
from tests.frameworks import _boosting_checks as checks
from tests.frameworks.conftest import Captured, ask, framework

xgb = framework("xgboost")

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "seed": 0,
          "nthread": 1, "verbosity": 0, "api_token": "s3cret"}  # fmt: skip


_data, _sha = checks.data, checks.sha_of


def _native(x: Any, y: Any, log: dict[str, Any] | None = None, **kw: Any) -> Any:
    dtrain, dval = xgb.DMatrix(x[:200], label=y[:200]), xgb.DMatrix(x[200:], label=y[200:])
    evals = [(dtrain, "train"), (dval, "val")]
    return xgb.train(PARAMS, dtrain, 8, evals=evals, verbose_eval=False, evals_result=log, **kw)


def test_native_training_answers_the_questions(captured: Captured, tmp_path: Path) -> None:
    x, y = _data()
    assert cl.autolog()["xgboost"] == "enabled"
    log: dict[str, Any] = {}
    booster = _native(x, y, log)
    booster.predict(xgb.DMatrix(x[:3]))
    booster.save_model(tmp_path / "model.json")
    sha = sk.model_reference(booster)["sha256"]
    assert sha == hashlib.sha256(pickle.dumps(booster)).hexdigest()  # a pickle is the node
    store = captured.store()

    training = checks.native_graph(store, sha, x, y, tmp_path / "model.json")
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["max_depth"] == "2" and hp["num_boost_round"] == "8"
    assert hp["api_token"] == "***"  # the redactor's
    metrics = ask(store, "run-metrics", training=training)
    curve = [(int(r["index"]), float(r["value"])) for r in metrics if r["metric"] == "val-logloss"]
    assert curve == list(enumerate(log["val"]["logloss"]))
    steps = [r for r in captured.records() if r["kind"] == "metric" and r.get("step") == 7]
    assert {r["name"] for r in steps} == {"train-logloss", "val-logloss"}  # on the task too
    assert cl.stats()["lost"] == {}


def test_sklearn_wrappers_are_captured_as_estimators(captured: Captured, tmp_path: Path) -> None:
    x, y = _data()
    cl.autolog()
    model = xgb.XGBClassifier(n_estimators=6, max_depth=2, n_jobs=1, random_state=0)
    model.fit(x[:200], y[:200], eval_set=[(x[200:], y[200:])], verbose=False)
    accuracy = model.score(x[200:], y[200:])
    model.predict_proba(x[:2])
    regressor = xgb.XGBRegressor(n_estimators=4, n_jobs=1).fit(x, x[:, 0])
    regressor.predict(x[:2])
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    sha = hashlib.sha256((tmp_path / "model.pkl").read_bytes()).hexdigest()
    store = captured.store()

    roles = {r["role"]: r["sha256"] for r in ask(store, "training-data", model=sha)}
    assert roles == {"X": _sha(x[:200]), "y": _sha(y[:200]), "eval_set_0_X": _sha(x[200:]),
                     "eval_set_0_y": _sha(y[200:])}  # fmt: skip
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["n_estimators"] == "6" and hp["max_depth"] == "2"
    (evaluation,) = ask(store, "model-evaluations", model=sha)
    assert evaluation["metric"] == "accuracy" and float(evaluation["value"]) == accuracy
    (training,) = {r["training"] for r in ask(store, "training-data", model=sha)}
    curve = [float(r["value"]) for r in ask(store, "run-metrics", training=training)]
    assert curve == model.evals_result()["validation_0"]["logloss"]
    (prediction,) = ask(store, "predictions", model=sha)
    (trace,) = ask(store, "prediction-trace", prediction=prediction["prediction"])
    assert trace["modelSha256"] == sha
    names = [t["plan"][-1] for t in captured.tasks()]
    assert names == ["XGBClassifier.fit", "XGBClassifier.score", "XGBClassifier.predict_proba",
                     "XGBRegressor.fit", "XGBRegressor.predict"]  # fmt: skip
    assert ask(store, "model-evaluations", model=sk.model_reference(regressor)["sha256"]) == []


def test_inplace_predict_traces_to_the_model_and_its_input(captured: Captured) -> None:
    x, y = _data()
    cl.autolog()
    booster = _native(x, y)
    big = np.random.default_rng(1).normal(size=(4000, 5))  # 160 kB: named on the worker
    out = booster.inplace_predict(big)
    booster.inplace_predict(x[:3])
    big[:] = 0.0  # named as it was passed
    sha = sk.model_reference(booster)["sha256"]
    tasks = [t for t in captured.tasks("inference")]
    assert [t["plan"][-1] for t in tasks] == ["Booster.inplace_predict"] * 2
    assert tasks[0]["used"]["X"]["sha256"] != tasks[1]["used"]["X"]["sha256"]
    assert tasks[1]["used"]["X"]["sha256"] == _sha(x[:3])
    store = captured.store()
    predictions = ask(store, "predictions", model=sha)
    assert len(predictions) == 2
    shas = {p["prediction"] for p in predictions}
    for prediction in shas:
        (trace,) = ask(store, "prediction-trace", prediction=prediction)
        assert trace["modelSha256"] == sha
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"
              and r.get("generated", {}).get("prediction", {}).get("shape") == [4000]]  # fmt: skip
    assert end["generated"]["prediction"]["sha256"] == _sha(out)
    model = xgb.XGBClassifier(n_estimators=3, n_jobs=1, random_state=0).fit(x, y)
    model.predict(x[:2])  # calls inplace_predict inside: one task, the wrapper's
    assert [t["plan"][-1] for t in captured.tasks("inference")][2:] == ["XGBClassifier.predict"]
    assert not cl.stats()["lost"]


def _everything(x: Any, y: Any) -> dict[str, Any]:
    booster = _native(x, y)
    model = xgb.XGBClassifier(n_estimators=5, n_jobs=1, random_state=0).fit(x, y)
    raw = bytes(model.get_booster().save_raw())
    return {"raw": bytes(booster.save_raw()), "predict": booster.predict(xgb.DMatrix(x)),
            "proba": model.predict_proba(x), "wrapper": raw}  # fmt: skip


def test_identical_results_with_and_without_capture(captured: Captured) -> None:
    x, y = _data()
    checks.identical_with_and_without(captured, lambda: _everything(x, y))


def test_explicit_callback_without_autolog(captured: Captured) -> None:
    from capture_lib.integrations.xgboost import ProvmlCallback

    x, y = _data()
    dtrain = xgb.DMatrix(x, label=y)
    booster = xgb.train(PARAMS, dtrain, 3, callbacks=[ProvmlCallback(PARAMS, dtrain)])
    booster.predict(dtrain)  # not patched: no task
    (task,) = captured.tasks()
    assert task["plan"][-1] == "xgboost.train" and task["params"]["max_depth"] == 2
    assert task["used"]["X"]["source"] == "DMatrix.get_data()"  # built before autolog
    assert task["used"]["y"]["sha256"] == _sha(y.astype(np.float32))
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"]
    assert end["generated"]["model"]["sha256"] == hashlib.sha256(pickle.dumps(booster)).hexdigest()
    bare = xgb.train({"max_depth": 2}, dtrain, 2, callbacks=[ProvmlCallback()])
    assert bare is not None
    assert captured.tasks()[-1]["params"]["max_depth"] == "2"  # the Booster's own config


def test_a_large_label_read_back_from_a_dmatrix_is_named(captured: Captured) -> None:
    """A DMatrix built before autolog: its label is read back (20,000 float32, over the
    size that is copied and named on the capture worker) and named, not missing."""
    from capture_lib.integrations.xgboost import ProvmlCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    dtrain = xgb.DMatrix(x, label=y)
    xgb.train(PARAMS, dtrain, 2, callbacks=[ProvmlCallback(PARAMS, dtrain)])
    (task,) = captured.tasks()
    assert task["used"]["y"]["sha256"] == _sha(y)
    assert task["used"]["y"]["source"] == "DMatrix.get_label()"
    assert not cl.stats()["lost"]


def test_never_raises_into_training(captured: Captured, monkeypatch: Any) -> None:
    x, y = _data()
    checks.never_raises(captured, monkeypatch, lambda: bytes(_native(x, y).save_raw()))


def test_disable_puts_everything_back(captured: Captured) -> None:
    def patched() -> tuple[Any, ...]:
        return (xgb.train, xgb.training.train, xgb.Booster.predict,
                xgb.Booster.inplace_predict, xgb.DMatrix.__init__)  # fmt: skip

    before = patched()
    cl.autolog()
    assert xgb.train is not before[0] and cl.autolog()["xgboost"] == "enabled"  # idempotent
    assert xgb.Booster.inplace_predict is not before[3]
    cl.autolog(disable=True)
    assert patched() == before


def test_rounds_kept_as_sections_are_bounded() -> None:
    known = boosting.Rounds(1000)
    assert sum(known.keep(i) for i in range(1000)) == boosting.MAX_SECTIONS
    unknown = boosting.Rounds(None, first=5)
    kept = [i for i in range(5, 100_005) if unknown.keep(i)]
    assert kept[:3] == [5, 6, 7] and len(kept) <= boosting.MAX_SECTIONS * 11


def test_frameworks_imported_after_autolog_are_captured(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, numpy as np, capture_lib as cl
        cl.init(mode="disk", path={str(tmp_path / "logs")!r})
        print(cl.autolog(), "xgboost" in sys.modules, "lightgbm" in sys.modules)
        import xgboost as xgb, lightgbm as lgb
        x = np.random.default_rng(0).normal(size=(100, 3)); y = (x[:, 0] > 0).astype(int)
        xgb.XGBClassifier(n_estimators=2).fit(x, y)
        lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(x, x[:, 0])
        xgb.train({{}}, xgb.DMatrix(x, label=y), 2)
        lgb.train({{"verbose": -1}}, lgb.Dataset(x, label=y), 2)
        cl.shutdown()
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    assert out.strip().endswith("False False")  # autolog imported neither
    names = [t["plan"][-1] for t in Captured(tmp_path / "logs").tasks()]
    assert names == ["XGBClassifier.fit", "LGBMRegressor.fit", "xgboost.train", "lightgbm.train"]
