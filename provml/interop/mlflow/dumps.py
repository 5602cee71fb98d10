"""Reading MLflow JSON dumps: what ``mlflow-tools`` (``dump-run``, ``dump-experiment``,
``dump-registered-model``, ``dump-model-version``) writes, in the MLflow REST API's
shapes. A dump has each metric's latest value only (no history), and a run dump names
its experiment by id only: a run is named after its experiment when the same dump holds
the experiment (an experiment's dump, a model version's), else "mlflow experiment <id>"
(ids of different servers, or of one server at different times, name different
experiments: the corpus' dumps have two ``sklearn_wine`` experiments, ids 1 and 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provml.interop.mlflow.source import (
    UNNAMED,
    DatasetInput,
    MetricPoint,
    ModelVersion,
    Run,
    Snapshot,
    history_models,
    parse_json,
)


def dump_files(paths: list[str]) -> list[str]:
    """The ``*.json`` files of ``paths`` (a directory: every one below it, in name order)."""
    out: list[str] = []
    for path in paths:
        p = Path(path)
        out += sorted(str(f) for f in p.rglob("*.json")) if p.is_dir() else [str(p)]
    return out


def read_dumps(files: list[str]) -> Snapshot:
    snapshot = Snapshot()
    for path in files:
        try:
            with open(path, "rb") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            snapshot.problems.append(f"{path}: not read: {exc}")
            continue
        if not isinstance(doc, dict):
            snapshot.problems.append(f"{path}: not an MLflow dump (not a JSON object)")
            continue
        experiments: dict[str, str] = {}  # id → name, of this dump
        run_docs: list[dict[str, Any]] = []
        try:
            _document(path, doc, experiments, run_docs, snapshot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            snapshot.problems.append(f"{path}: not an MLflow dump that provml reads ({exc!r})")
        for item in run_docs:
            try:
                snapshot.runs.append(_run(item, experiments))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                snapshot.problems.append(f"{path}: a run that provml cannot read ({exc!r})")
    return snapshot


def _document(
    path: str,
    doc: dict[str, Any],
    experiments: dict[str, str],
    run_docs: list[dict[str, Any]],
    snapshot: Snapshot,
) -> None:
    """What a dump holds: a dump of one thing carries others (a model version's dump
    has its registered model, its run and the run's experiment), so every part is read."""
    found = False
    if isinstance(doc.get("experiment"), dict):
        exp = doc["experiment"]
        experiments[str(exp["experiment_id"])] = exp["name"]
        found = True
    for item in doc.get("runs") or []:  # an experiment's
        run_docs.append(_run_doc(item))
    if isinstance(doc.get("run"), dict):
        run_docs.append(_run_doc(doc["run"]))
        found = True
    for item in doc.get("version_runs") or []:  # a registered model's
        run_docs.append(_run_doc(item["run"]))
    aliases = _aliases(doc.get("registered_model") or {})
    if isinstance(doc.get("model_version"), dict):
        snapshot.versions.append(_version(doc["model_version"], aliases))
        found = True
    elif isinstance(doc.get("registered_model"), dict):
        for v in doc["registered_model"].get("latest_versions") or []:
            snapshot.versions.append(_version(v, aliases))
        found = True
    if not found and isinstance(doc.get("model_info"), dict):
        info = doc["model_info"]
        snapshot.problems.append(
            f"{path}: the MLflow model {info.get('_model_uri')!r} (of run "
            f"{info.get('_run_id')}) not imported: a model description alone names no "
            "version of it; import its run or its model version"
        )
    elif not found:
        snapshot.problems.append(
            f"{path}: not an MLflow dump provml knows (a run, experiment, "
            "registered model or model version dump)"
        )


def _run_doc(item: dict[str, Any]) -> dict[str, Any]:
    """A run as ``{"info", "data", "inputs"}``, whether dumped alone or wrapped with its
    summary and artifacts."""
    return item if "info" in item else item["run"]


def _aliases(reg: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in reg.get("aliases") or []:
        out.setdefault(str(a.get("version")), []).append(str(a.get("alias")))
    return out


def _pairs(value: Any) -> dict[str, Any]:
    """``[{"key": k, "value": v}, …]`` (REST) or ``{k: v}`` (the client's dumps)."""
    if isinstance(value, dict):
        return dict(value)
    return {item["key"]: item["value"] for item in value or []}


def _run(doc: dict[str, Any], experiments: dict[str, str]) -> Run:
    info, data = doc["info"], doc.get("data") or {}
    run_id = info.get("run_id") or info["run_uuid"]
    exp_id = str(info["experiment_id"])
    tags = _pairs(data.get("tags"))
    run = Run(
        run_id=run_id,
        experiment_id=exp_id,
        experiment=experiments.get(exp_id, f"{UNNAMED}{exp_id}"),
        start_time=info.get("start_time"),
        end_time=info.get("end_time"),
        status=info.get("status") or "RUNNING",
        user=info.get("user_id") or None,
        run_name=info.get("run_name"),
        artifact_uri=info.get("artifact_uri"),
        params={k: str(v) for k, v in _pairs(data.get("params")).items()},
        tags={k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()},
    )
    metrics = data.get("metrics") or []
    if isinstance(metrics, dict):  # {key: value}: no step or timestamp to go by
        raise ValueError("metrics without their steps and timestamps")
    for m in metrics:
        run.metrics.setdefault(m["key"], []).append(
            MetricPoint(m["key"], m["value"], int(m["timestamp"]), int(m.get("step") or 0))
        )
    for d in (doc.get("inputs") or {}).get("dataset_inputs") or []:
        ds = d["dataset"]
        run.datasets.append(
            DatasetInput(
                name=ds["name"],
                digest=ds["digest"],
                source_type=ds.get("source_type") or "",
                source=parse_json(ds.get("source")),
                schema=parse_json(ds.get("schema")),
                profile=parse_json(ds.get("profile")),
                context=_pairs(d.get("tags")).get("mlflow.data.context"),
            )
        )
    run.models = history_models(run_id, tags, run.artifact_uri)
    return run


def _version(v: dict[str, Any], aliases: dict[str, list[str]]) -> ModelVersion:
    version = str(v["version"])
    return ModelVersion(
        name=v["name"],
        version=version,
        run_id=v.get("run_id") or None,
        source=v.get("source") or None,
        model_id=v.get("model_id") or None,
        created=v.get("creation_timestamp"),
        stage=v.get("current_stage"),
        description=v.get("description") or None,
        aliases=aliases.get(version, []),
        status=v.get("status"),
        tags=_pairs(v.get("tags")),
    )
