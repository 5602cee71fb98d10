"""Checks shared by test_xgboost.py and test_lightgbm.py (not a test module)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import capture_lib as cl
from capture_lib.integrations import _boosting as boosting
from capture_lib.integrations import digest
from tests.frameworks.conftest import Captured, ask


def data() -> tuple[Any, Any]:
    """300 rows, 5 features, a binary label."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)


def sha_of(value: Any) -> str:
    """The digest the integrations name ``value`` by (hashed whole)."""
    return str(digest.data_reference(value, 1 << 30)["sha256"])


def native_graph(store: Any, sha: str, x: Any, y: Any, saved: Path) -> str:
    """The graph of a native training (on ``x[:200]``, validated on ``x[200:]`` named
    ``val``), a prediction and a saved file answers; returns the training's IRI."""
    rows = ask(store, "training-data", model=sha)
    assert {r["role"]: r["sha256"] for r in rows} == {
        "X": sha_of(x[:200]), "y": sha_of(y[:200]), "val_X": sha_of(x[200:]),
        "val_y": sha_of(y[200:]),
    }  # fmt: skip
    (prediction,) = ask(store, "predictions", model=sha)
    (trace,) = ask(store, "prediction-trace", prediction=prediction["prediction"])
    assert trace["modelSha256"] == sha and sha_of(x[:200]) in trace["trainingData"].split()
    file_sha = hashlib.sha256(saved.read_bytes()).hexdigest()
    (row,) = ask(store, "derived-from", model=file_sha)
    assert row["base"].endswith("/data/sha256/" + sha)
    (training,) = {r["training"] for r in rows}
    return training


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else bool(a == b)


def identical_with_and_without(captured: Captured, run: Callable[[], dict[str, Any]]) -> None:
    """``run()`` (a native training and a wrapper's fit) gives the same with autolog."""
    without = run()
    cl.autolog()
    with_autolog = run()
    assert len(captured.tasks("training")) == 2
    assert without.keys() == with_autolog.keys()
    for key, value in without.items():
        assert same(value, with_autolog[key]), key


def never_raises(captured: Captured, monkeypatch: Any, train: Callable[[], Any]) -> None:
    """``train()`` (returning the model serialised) is unchanged while capture fails."""
    cl.autolog()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("capture is broken")

    reference = train()
    monkeypatch.setattr(boosting, "round_metrics", broken)
    monkeypatch.setattr(boosting.calls, "_register", broken)
    assert same(train(), reference)
    assert cl.stats()["lost"]["integration_error"] >= 2
    monkeypatch.setattr(boosting.calls, "_workflow", broken)
    assert same(train(), reference)
