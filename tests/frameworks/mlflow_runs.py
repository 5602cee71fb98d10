"""Runs made with the real MLflow client in a tracking store, for the importer's tests
(``make(uri, "first"|"more")``, or ``python mlflow_runs.py URI first|more ARTIFACTS`` printing what
it made as one JSON line).

first: experiment "wine": run A (hyperparameters, a secret among them, a dataset input,
a loss over three steps and a final accuracy, a scikit-learn model registered as
"wine-model" version 1), run B (other hyperparameters, another dataset, its own model),
and a run C still running. more: run A gets a fourth loss value and run D is new."""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.linear_model import Ridge


def frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=20)
    return pd.DataFrame({"x": x, "y": 2 * x + rng.normal(scale=0.1, size=20)})


def train(name: str, alpha: float, data: pd.DataFrame, source: str, register: bool) -> Any:
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"alpha": alpha, "api_key": "sk-secret", "solver": "auto"})
        mlflow.set_tag("mlflow.source.git.commit", "c6201fcbf3a50b93667ba6d6063932ec55a44afa")
        mlflow.log_input(mlflow.data.from_pandas(data, source=source, name=name + "-data"),
                         context="training")  # fmt: skip
        for step in range(3):
            mlflow.log_metric("loss", round(1.0 / (step + 1) + alpha, 4), step=step)
        model = Ridge(alpha=alpha).fit(data[["x"]], data["y"])
        mlflow.log_metric("acc", round(model.score(data[["x"]], data["y"]), 4))
        # no pip requirements: inferring them runs the model in a subprocess (seconds)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
        if register:
            mlflow.register_model(info.model_uri, "wine-model")
    return {"run": run.info.run_id, "model": info.model_id}


def make(uri: str, what: str, artifacts: str) -> dict[str, Any]:
    """Runs in the store at ``uri``, their artifacts under ``artifacts`` (a SQLite store
    would put them in ./mlruns of the working directory)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        try:
            return _make(uri, what, artifacts)
        finally:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def _make(uri: str, what: str, artifacts: str) -> dict[str, Any]:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name("wine") is None:
        mlflow.create_experiment("wine", artifact_location=artifacts)
    mlflow.set_experiment("wine")
    client = MlflowClient()
    made: dict[str, Any] = {}
    if what == "first":
        made["A"] = train("A", 0.5, frame(1), "s3://bucket/wine-a.csv", register=True)
        made["B"] = train("B", 2.0, frame(2), "s3://bucket/wine-b.csv", register=False)
        run = client.create_run(mlflow.get_experiment_by_name("wine").experiment_id)
        client.log_param(run.info.run_id, "alpha", "9")
        made["C"] = {"run": run.info.run_id}
    else:
        (a,) = client.search_runs(
            [mlflow.get_experiment_by_name("wine").experiment_id], "attributes.run_name = 'A'"
        )
        client.log_metric(a.info.run_id, "loss", 0.25, step=3)
        made["D"] = train("D", 1.0, frame(3), "s3://bucket/wine-d.csv", register=False)
    return made


if __name__ == "__main__":
    print(json.dumps(make(sys.argv[1], sys.argv[2], sys.argv[3])))
