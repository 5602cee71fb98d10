"""What provml reads of MLflow, whichever way it was read (the tracking client or JSON
dumps): plain data, no MLflow object, so that the conversion is pure and both readers
give it the same shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: the name of an experiment a dump names by its id only (provml.interop.mlflow.dumps)
UNNAMED = "mlflow experiment "


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric: MLflow keeps every one (its metric history)."""

    key: str
    value: float
    timestamp: int  # Unix milliseconds
    step: int


@dataclass
class DatasetInput:
    """A dataset a run logged as an input (``mlflow.log_input``)."""

    name: str
    digest: str
    source_type: str
    source: Any  # the parsed JSON of MLflow's source (a URI, a table name …)
    schema: Any = None
    profile: Any = None
    context: str | None = None  # the ``mlflow.data.context`` tag: training, eval …


@dataclass
class LoggedModel:
    """A model a run logged: an MLflow 3 logged model (``model_id``), or an entry of an
    MLflow 2 run's ``mlflow.log-model.history`` tag (``artifact_path``)."""

    name: str
    model_id: str | None = None
    artifact_path: str | None = None
    location: str | None = None  # where its files are (artifact location or URI)
    flavors: dict[str, Any] = field(default_factory=dict)
    model_uuid: str | None = None


@dataclass
class ModelVersion:
    """A version of a registered model, with the run whose model it registered."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    model_id: str | None = None
    created: int | None = None  # Unix milliseconds
    stage: str | None = None
    description: str | None = None
    aliases: list[str] = field(default_factory=list)
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    run_id: str
    experiment_id: str
    experiment: str  # the experiment's name
    start_time: int | None  # Unix milliseconds
    end_time: int | None
    status: str  # RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
    user: str | None = None
    run_name: str | None = None
    artifact_uri: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    datasets: list[DatasetInput] = field(default_factory=list)
    models: list[LoggedModel] = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything read from one or more MLflow sources, and what could not be read."""

    runs: list[Run] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def merge(self, other: Snapshot) -> None:
        self.runs.extend(other.runs)
        self.versions.extend(other.versions)
        self.problems.extend(other.problems)


def parse_json(value: Any) -> Any:
    """MLflow keeps some JSON as text (a dataset's source, schema and profile, the
    model history tag); dumps have it parsed. Either way, the parsed value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def history_models(
    run_id: str, tags: dict[str, Any], artifact_uri: str | None
) -> list[LoggedModel]:
    """The models of an MLflow 2 run, from its ``mlflow.log-model.history`` tag."""
    history = parse_json(tags.get("mlflow.log-model.history"))
    if not isinstance(history, list):
        return []
    models: dict[str, LoggedModel] = {}
    for entry in history:
        if not isinstance(entry, dict) or not isinstance(entry.get("artifact_path"), str):
            continue
        if entry.get("run_id", run_id) != run_id:
            continue
        path = entry["artifact_path"]
        flavors: dict[str, Any] = entry["flavors"] if isinstance(entry.get("flavors"), dict) else {}
        location = (
            f"{artifact_uri.rstrip('/')}/{path}" if artifact_uri else f"runs:/{run_id}/{path}"
        )
        models[path] = LoggedModel(  # logged twice at one path: the later one is there
            name=path,
            artifact_path=path,
            location=location,
            flavors=flavors,
            model_uuid=entry.get("model_uuid")
            if isinstance(entry.get("model_uuid"), str)
            else None,
        )
    return list(models.values())
