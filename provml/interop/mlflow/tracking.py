"""Reading an MLflow tracking store with MLflow's own client (``mlflow.MlflowClient``,
imported here only, when a store is read): experiments, their active runs with every
metric's history, dataset inputs and logged models, and the model registry."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from provml.interop.mlflow.source import (
    DatasetInput,
    LoggedModel,
    MetricPoint,
    ModelVersion,
    Run,
    Snapshot,
    history_models,
    parse_json,
)

#: URI schemes MLflow's client reads a tracking store from
SCHEMES = ("file:", "sqlite:", "postgresql", "mysql", "mssql", "http:", "https:", "databricks")


#: MLflow's HTTP settings while reading, unless set: two tries, 2 s apart, 60 s each
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


def is_tracking_uri(text: str) -> bool:
    return text.startswith(SCHEMES)


def is_mlruns(path: str) -> bool:
    """A directory MLflow's file store wrote: experiments as folders with a meta.yaml."""
    p = Path(path)
    return p.is_dir() and any(
        (child / "meta.yaml").is_file() for child in p.iterdir() if child.is_dir()
    )


def uri_of(path_or_uri: str) -> str:
    return path_or_uri if is_tracking_uri(path_or_uri) else Path(path_or_uri).resolve().as_uri()


@contextlib.contextmanager
def _environment(uri: str) -> Iterator[None]:
    """While reading: MLflow 3 refuses its file store unless told it may read one (we
    only read), its file registry opens a client of the *default* tracking URI (a new
    ``mlflow.db`` in the working directory) unless the variable names ours, and its HTTP
    client retries for minutes."""
    wanted = {"MLFLOW_TRACKING_URI": uri}
    if uri.startswith("file:"):
        wanted["MLFLOW_ALLOW_FILE_STORE"] = "true"
    # a tracking server that does not answer: said in seconds, not after MLflow's minutes
    # of retries (unless these are set)
    for name, value in HTTP_DEFAULTS.items():
        if name not in os.environ:
            wanted[name] = value
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, old in before.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _pages(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(*args, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def read_tracking(path_or_uri: str) -> Snapshot:
    """Everything of a tracking store (a URI, or an mlruns directory). Raise
    :class:`OSError` (with MLflow's message) if the store cannot be opened at all;
    what cannot be read of one experiment or of the registry is in ``problems``."""
    uri = uri_of(path_or_uri)
    local = _local_path(uri)
    if local is not None and not os.path.exists(local):
        # MLflow would make an empty store there: an import never writes
        raise OSError(f"cannot read the MLflow tracking store {uri}: {local} does not exist")
    with _environment(uri):
        try:
            from mlflow import MlflowClient
            from mlflow.entities import ViewType

            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            experiments = list(_pages(client.search_experiments, view_type=ViewType.ACTIVE_ONLY))
        except ImportError as exc:
            raise OSError(f"the mlflow package is needed to read {uri}: {exc}") from None
        except Exception as exc:  # MLflow raises its own and the drivers' exceptions
            raise OSError(f"cannot read the MLflow tracking store {uri}: {_short(exc)}") from None
        snapshot = Snapshot()
        for exp in experiments:
            try:
                _experiment(client, exp, snapshot, ViewType.ACTIVE_ONLY)
            except Exception as exc:
                snapshot.problems.append(
                    f"experiment {exp.experiment_id} ({exp.name}): not read: {_short(exc)}"
                )
        try:
            for v in _pages(client.search_model_versions):
                snapshot.versions.append(_version(v))
        except Exception as exc:
            snapshot.problems.append(f"model registry of {uri}: not read: {_short(exc)}")
    return snapshot


def _local_path(uri: str) -> str | None:
    """The file or directory of a SQLite or file store."""
    from urllib.parse import unquote, urlparse

    if uri.startswith("sqlite:///"):
        return (
            unquote(uri[len("sqlite:///") :].split("?", 1)[0])
            if uri != "sqlite:///:memory:"
            else None
        )
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def _experiment(client: Any, exp: Any, snapshot: Snapshot, active: Any) -> None:
    logged: dict[str, list[LoggedModel]] = {}
    with contextlib.suppress(Exception):  # a store without logged models (MLflow 2)
        for m in _pages(client.search_logged_models, [exp.experiment_id]):
            if not m.source_run_id:
                snapshot.problems.append(
                    f"logged model {m.model_id} ({m.name}): not imported: "
                    "it was logged outside a run"
                )
                continue
            logged.setdefault(m.source_run_id, []).append(
                LoggedModel(
                    name=m.name,
                    model_id=m.model_id,
                    location=m.artifact_location,
                    flavors=_flavors(m),
                )
            )
    for r in _pages(client.search_runs, [exp.experiment_id], run_view_type=active):
        info, data = r.info, r.data
        run = Run(
            run_id=info.run_id,
            experiment_id=str(exp.experiment_id),
            experiment=exp.name,
            start_time=info.start_time,
            end_time=info.end_time,
            status=info.status,
            user=info.user_id or None,
            run_name=info.run_name,
            artifact_uri=info.artifact_uri,
            params=dict(data.params),
            tags=dict(data.tags),
        )
        for key in sorted(data.metrics):
            run.metrics[key] = [
                MetricPoint(key, m.value, m.timestamp, m.step or 0)
                for m in client.get_metric_history(info.run_id, key)
            ]
        for d in getattr(r.inputs, "dataset_inputs", None) or []:
            ds = d.dataset
            tags = {t.key: t.value for t in d.tags or []}
            run.datasets.append(
                DatasetInput(
                    name=ds.name,
                    digest=ds.digest,
                    source_type=ds.source_type,
                    source=parse_json(ds.source),
                    schema=parse_json(ds.schema),
                    profile=parse_json(ds.profile),
                    context=tags.get("mlflow.data.context"),
                )
            )
        run.models = logged.get(info.run_id, []) + history_models(
            info.run_id, run.tags, info.artifact_uri
        )
        snapshot.runs.append(run)


def _flavors(model: Any) -> dict[str, Any]:
    """A logged model's flavors, from its MLmodel file when it is on this machine (files
    elsewhere are not fetched: no download for an import)."""
    location = model.artifact_location or ""
    if not location.startswith("file:"):
        return {}
    from urllib.parse import unquote, urlparse

    with contextlib.suppress(Exception):
        from mlflow.models import Model

        return dict(Model.load(unquote(urlparse(location).path)).flavors)
    return {}


def _version(v: Any) -> ModelVersion:
    return ModelVersion(
        name=v.name,
        version=str(v.version),
        run_id=v.run_id or None,
        source=v.source or None,
        model_id=getattr(v, "model_id", None) or None,
        created=v.creation_timestamp,
        stage=v.current_stage,
        description=v.description or None,
        aliases=list(v.aliases or []),
        status=v.status,
        tags=dict(v.tags or {}),
    )
