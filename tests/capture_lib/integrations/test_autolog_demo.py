"""examples/sklearn_autolog_demo.py runs, and its graph answers for its model file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import capture_lib as cl
from tests.capture_lib.integrations.conftest import Captured, ask


def test_the_autolog_demo(tmp_path: Path) -> None:
    from examples import sklearn_autolog_demo

    cl.init(mode="disk", path=str(tmp_path / "logs"), user="demo")
    try:
        result = sklearn_autolog_demo.run(str(tmp_path / "demo"), predictions=2)
        assert result.accuracy > 0.9 and cl.stats()["lost"] == {}
        captured = Captured(tmp_path / "logs")
        store = captured.store()
    finally:
        cl.autolog(disable=True)
        cl.shutdown()
    sha = hashlib.sha256(Path(result.model_path).read_bytes()).hexdigest()
    assert {r["role"] for r in ask(store, "training-data", model=sha)} == {"X", "y"}
    hp = {r["name"]: r["value"] for r in ask(store, "hyperparameters", model=sha)}
    assert hp["estimator__clf__max_iter"] == "1000"
    predictions = ask(store, "predictions", model=sha)
    assert len(predictions) == 2
    (trace,) = ask(store, "prediction-trace", prediction=predictions[0]["prediction"])
    assert trace["modelSha256"] == sha
    runs = {r["workflow"] for r in ask(store, "runs")}
    assert runs == {sklearn_autolog_demo.WORKFLOW}  # no workflow of its own: the demo's
