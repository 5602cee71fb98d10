"""MLflow runs → validated provml wire batches (docs/importers.md says what maps to what).

Every identifier is a function of MLflow's own: the run's workflow execution and its
task are ``n = 1`` and ``n = 2`` of a session derived from the run id; a step's section
has a session of its own (run id and step); a metric value is numbered by its step and
timestamp within a session of the run, the metric's key and the high bits of both. So
the same run imported twice, from the tracking store or from a dump, gives the same
records, and a metric value logged since the last import is a new record beside the old.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provml.core.errors import ValidationError
from provml.core.ids import canonical_json
from provml.core.wire import STAGES, Batch
from provml.interop.foreign import (
    Batches,
    Redact,
    content_sha256,
    derived_session,
    is_name,
    keep,
    metric_value,
    problem_text,
)
from provml.interop.mlflow.source import (
    UNNAMED,
    LoggedModel,
    MetricPoint,
    ModelVersion,
    Run,
    Snapshot,
)

#: MLflow run status → provml status of an ended run; other statuses (RUNNING,
#: SCHEDULED) have no end yet
END_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}
#: the tag that chooses a run's stage (default training); "none" for no stage
STAGE_TAG = "provml.stage"
SECTION = "step"

#: a metric value's number within its session: the low bits of its step and timestamp
#: (a batch holds the values of one metric within 4,096 steps and 262 s)
STEP_BITS, TIME_BITS = 12, 18
#: JSON bytes of a dataset's schema or profile kept as they are (larger: by digest)
MAX_DESCRIPTION = 64 << 10
#: a run's final value of a metric is numbered above every history value
FINAL = 1 << 31

#: tags that become properties of the workflow execution (env keys of docs/mapping.md)
ENV_TAGS = {
    "mlflow.source.git.commit": "git_commit",
    "mlflow.source.git.branch": "git_branch",
    "mlflow.source.git.repoURL": "git_remote",
    "mlflow.gitRepoURL": "git_remote",
    "mlflow.source.name": "mlflow_source_name",
    "mlflow.source.type": "mlflow_source_type",
    "mlflow.parentRunId": "mlflow_parent_run_id",
    "mlflow.runName": "mlflow_run_name",
}
#: tags read for something else, not kept as tags
USED_TAGS = frozenset({"mlflow.user", "mlflow.log-model.history", STAGE_TAG})


@dataclass
class Converted:
    """The batches, what they hold, and what could not be converted (one line each)."""

    batches: list[Batch] = field(default_factory=list)
    runs: int = 0
    metric_values: int = 0
    datasets: int = 0
    models: int = 0
    versions: int = 0
    running: int = 0  # runs that have not ended: imported so far, their end to come
    problems: list[str] = field(default_factory=list)


def to_batches(snapshot: Snapshot, redact: Redact = keep) -> Converted:
    """Convert what was read. A run whose records would not be valid is left out whole
    and named in ``problems``, as is each metric value or model version that cannot be
    placed; the rest is converted."""
    out = Converted(problems=list(snapshot.problems))
    runs = merge_runs(snapshot.runs)
    registered = _registered(snapshot.versions, runs, out.problems)
    for run in runs.values():
        problems: list[str] = []
        batches = Batches()
        counts = _run(run, registered.get(run.run_id, {}), redact, batches, problems)
        if problems and counts is None:
            out.problems.extend(problems)
            continue
        try:
            built = batches.build()
        except ValidationError as exc:
            out.problems.append(f"run {run.run_id}: not imported: {problem_text(exc)}")
            continue
        out.problems.extend(problems)
        out.batches.extend(built)
        out.runs += 1
        assert counts is not None
        out.metric_values += counts[0]
        out.datasets += counts[1]
        out.models += counts[2]
        out.versions += counts[3]
        out.running += run.status not in END_STATUS or run.end_time is None
    return out


def merge_runs(runs: list[Run]) -> dict[str, Run]:
    """One run per run id: dumps may hold the same run several times (a run dump, its
    experiment's, a registered model's); what any of them holds is kept."""
    merged: dict[str, Run] = {}
    for run in runs:
        have = merged.get(run.run_id)
        if have is None:
            merged[run.run_id] = Run(
                **{
                    **run.__dict__,
                    "models": list(run.models),
                    "datasets": list(run.datasets),
                    "metrics": {k: list(v) for k, v in run.metrics.items()},
                }
            )
            continue
        for key, points in run.metrics.items():
            have.metrics.setdefault(key, []).extend(points)
        have.params = {**run.params, **have.params}
        have.tags = {**run.tags, **have.tags}
        for model in run.models:
            if _find_model(have, model.model_id, model.artifact_path) is None:
                have.models.append(model)
        known = {(d.name, d.digest, d.context) for d in have.datasets}
        have.datasets += [d for d in run.datasets if (d.name, d.digest, d.context) not in known]
        if have.experiment.startswith(UNNAMED) and not run.experiment.startswith(UNNAMED):
            have.experiment = run.experiment
        if have.end_time is None and run.end_time is not None:
            have.status, have.end_time = run.status, run.end_time
    return merged


def _find_model(run: Run, model_id: str | None, path: str | None) -> LoggedModel | None:
    for model in run.models:
        if model_id is not None and model.model_id == model_id:
            return model
        if path is not None and model.model_id is None and model.artifact_path == path:
            return model
    return None


def _registered(
    versions: list[ModelVersion], runs: Mapping[str, Run], problems: list[str]
) -> dict[str, dict[int, list[ModelVersion]]]:
    """Model versions by their source run and the index of its model they registered
    (a model of the source run that no other record names is added to it)."""
    out: dict[str, dict[int, list[ModelVersion]]] = {}
    seen: set[tuple[str, str]] = set()
    for v in versions:
        if (v.name, v.version) in seen:
            continue
        seen.add((v.name, v.version))
        where = f"model version {v.name}/{v.version}"
        run = runs.get(v.run_id or "")
        if run is None:
            problems.append(
                f"{where}: not imported: its source run {v.run_id or '(none)'} "
                "was not read (give the run too)"
            )
            continue
        model_id = v.model_id
        source = v.source or ""
        if model_id is None and source.startswith("models:/m-"):
            model_id = source[len("models:/") :].split("/")[0]
        path = None if model_id else _artifact_path(run, source)
        if model_id is None and path is None:
            problems.append(
                f"{where}: not imported: its source {source!r} is no model of run "
                f"{run.run_id} that provml can tell"
            )
            continue
        model = _find_model(run, model_id, path)
        if model is None:
            model = LoggedModel(
                name=path or str(model_id),
                model_id=model_id,
                artifact_path=path,
                location=source or None,
            )
            run.models.append(model)
        out.setdefault(run.run_id, {}).setdefault(run.models.index(model), []).append(v)
    return out


def _artifact_path(run: Run, source: str) -> str | None:
    """The path inside the run's artifacts a version's source names, if it names one."""
    prefix = f"runs:/{run.run_id}/"
    if source.startswith(prefix):
        return source[len(prefix) :].strip("/") or None
    marker = f"/{run.run_id}/artifacts/"
    if run.artifact_uri and source.startswith(run.artifact_uri.rstrip("/") + "/"):
        return source[len(run.artifact_uri.rstrip("/")) + 1 :].strip("/") or None
    if marker in source:
        return source.split(marker, 1)[1].strip("/") or None
    return None


def run_session(run: Run) -> str:
    assert run.start_time is not None
    return derived_session(run.start_time, "mlflow-run", run.run_id)


def _stage(run: Run) -> str | None:
    stage = run.tags.get(STAGE_TAG, "training")
    return stage if stage in STAGES else None


def _run(
    run: Run,
    registered: dict[int, list[ModelVersion]],
    redact: Redact,
    batches: Batches,
    problems: list[str],
) -> tuple[int, int, int, int] | None:
    """Add the run's records; None (with the reason in ``problems``) if it cannot be."""
    where = f"run {run.run_id}"
    if run.start_time is None:
        problems.append(f"{where}: not imported: it has no start time (MLflow status {run.status})")
        return None
    if not is_name(run.experiment):
        problems.append(
            f"{where}: not imported: its experiment's name {run.experiment!r} is "
            "not 1 to 256 characters"
        )
        return None
    session = run_session(run)
    start = run.start_time / 1000
    ended = run.status in END_STATUS and run.end_time is not None
    end = (run.end_time or run.start_time) / 1000
    stage = _stage(run)
    task = "train" if stage == "training" else (stage or "run")
    plan = [run.experiment, task]
    status = END_STATUS.get(run.status, "running")
    error = f"MLflow status {run.status}" if run.status in ("FAILED", "KILLED") else None
    user = run.tags.get("mlflow.user") or run.user
    used = _datasets(run)
    records: list[dict[str, Any]] = [
        {
            "kind": "workflow_start",
            "n": 1,
            "name": run.experiment,
            "time": start,
            "env": redact(_env(run)),
            "user": user if is_name(user) else None,
        },
        {
            "kind": "task_start",
            "n": 2,
            "parent": 1,
            "plan": plan,
            "time": start,
            "stage": stage,
            "params": redact(dict(run.params)) or None,
            "used": used or None,
        },
    ]
    generated: dict[str, Any] = {}
    versions = 0
    if ended:
        generated = _models(run, registered)
        versions = sum(len(vs) for vs in registered.values())
        records += [
            {
                "kind": "task_end",
                "n": 2,
                "plan": plan,
                "time": end,
                "stage": stage,
                "status": status,
                "error": error,
                "generated": generated or None,
            },
            {
                "kind": "workflow_end",
                "n": 1,
                "name": run.experiment,
                "time": end,
                "status": status,
                "error": error,
            },
        ]
    elif registered:
        problems.append(
            f"{where}: {sum(len(v) for v in registered.values())} model version(s) "
            "and its models not imported: the run has not ended"
        )
    values = _metrics(run, session, ended, records, batches, problems)
    batches.add(session, records)
    return values, len(used), len(generated) - versions, versions


def _env(run: Run) -> dict[str, Any]:
    env: dict[str, Any] = {"mlflow_run_id": run.run_id, "mlflow_experiment_id": run.experiment_id}
    if run.run_name:
        env["mlflow_run_name"] = run.run_name
    for tag, value in sorted(run.tags.items()):
        if tag in ENV_TAGS:
            env[ENV_TAGS[tag]] = value
        elif tag not in USED_TAGS and not tag.startswith("mlflow.log-model"):
            env[f"tag:{tag}"] = value
    return env


def _datasets(run: Run) -> dict[str, Any]:
    used: dict[str, Any] = {}
    for d in sorted(run.datasets, key=lambda d: (d.context or "", d.name, d.digest)):
        key = {
            "mlflow_dataset": {
                "name": d.name,
                "digest": d.digest,
                "source_type": d.source_type,
                "source": d.source,
            }
        }
        ref: dict[str, Any] = {
            "@data": "dataset",
            "sha256": content_sha256(key),
            "name": d.name,
            "version": d.digest,
            "sha256_of": "the MLflow dataset's name, digest and source",
            "mlflow_digest": d.digest,
            "source_type": d.source_type,
        }
        source = _source_text(d.source)
        if source:
            ref["source"] = source
        if d.context:
            ref["split"] = d.context
        for name in ("schema", "profile"):
            if getattr(d, name) is not None:
                ref[name] = _kept(getattr(d, name))
        role = f"{d.context}/{d.name}" if d.context else d.name
        while role in used:
            role += "+"
        used[role] = ref
    return used


def _kept(value: Any) -> Any:
    """A dataset's schema or profile, or past 64 KiB of JSON (a table of thousands of
    columns) its digest: one value of a record is at most 1 MiB."""
    size = len(canonical_json(value))
    if size <= MAX_DESCRIPTION:
        return value
    return {"kept_by_digest": content_sha256(value), "bytes": size}


def _source_text(source: Any) -> str | None:
    if isinstance(source, dict):
        for key in ("uri", "url", "path", "table_name", "file_path"):
            if isinstance(source.get(key), str):
                return str(source[key])
        return None
    return source if isinstance(source, str) and source else None


def _models(run: Run, registered: dict[int, list[ModelVersion]]) -> dict[str, Any]:
    generated: dict[str, Any] = {}
    for i, model in enumerate(run.models):
        key = (
            {"mlflow_logged_model": model.model_id}
            if model.model_id
            else {"mlflow_run": run.run_id, "artifact_path": model.artifact_path}
        )
        ref: dict[str, Any] = {
            "@data": "model",
            "sha256": content_sha256(key),
            "sha256_of": "the MLflow model's id",
            "mlflow_model": key,
        }
        if model.location:
            ref["path"] = model.location
        framework = next((f for f in sorted(model.flavors) if f != "python_function"), None)
        if framework:
            ref["framework"] = framework
            flavor = model.flavors.get(framework)
            version = flavor.get(f"{framework}_version") if isinstance(flavor, dict) else None
            if isinstance(version, str):
                ref["framework_version"] = version
        if model.model_uuid:
            ref["mlflow_model_uuid"] = model.model_uuid
        role = model.name if is_name(model.name) else "model"
        while role in generated:
            role += "+"
        generated[role] = ref
        for v in registered.get(i, []):
            generated[f"registered/{v.name}/{v.version}"[:256]] = _version_ref(ref, v)
    return generated


def _version_ref(model: dict[str, Any], v: ModelVersion) -> dict[str, Any]:
    """The same model node, generated under the registered name and version: the
    registry's labels are properties of that generation."""
    kept = ("@data", "sha256", "sha256_of", "mlflow_model", "framework", "framework_version")
    ref = {k: model[k] for k in kept if k in model}
    ref.update(name=v.name, version=v.version, registered_model=v.name)
    if v.source:
        ref["path"] = v.source
    if v.description:
        ref["description"] = v.description
    for key in ("stage", "status", "created"):
        if getattr(v, key) not in (None, "", "None"):
            ref[f"registry_{key}"] = getattr(v, key)
    if v.aliases:
        ref["aliases"] = sorted(v.aliases)
    if v.tags:
        ref["registry_tags"] = v.tags
    return ref


def _metrics(
    run: Run,
    session: str,
    ended: bool,
    records: list[dict[str, Any]],
    batches: Batches,
    problems: list[str],
) -> int:
    """Every value of every metric, in a section per step; an ended run's final value
    of each metric also on the task. Returns the number of values."""
    assert run.start_time is not None
    steps: dict[int, list[int]] = {}  # step → timestamps logged at it
    count = 0
    for key, history in sorted(run.metrics.items()):
        if not is_name(key):
            problems.append(
                f"run {run.run_id}: metric {key[:80]!r} not imported: its name is "
                "not 1 to 256 characters"
            )
            continue
        numbered: dict[tuple[str, int], list[MetricPoint]] = {}
        for point in sorted(set(history), key=_order):
            group = derived_session(
                run.start_time,
                "mlflow-metric",
                run.run_id,
                key,
                point.step >> STEP_BITS,
                point.timestamp >> TIME_BITS,
            )
            n = (
                (point.step & ((1 << STEP_BITS) - 1)) << TIME_BITS
                | (point.timestamp & ((1 << TIME_BITS) - 1))
            ) + 1
            numbered.setdefault((group, n), []).append(point)
        final: tuple[str, int] | None = None
        for (group, n), points in numbered.items():
            if len(points) > 1:  # one key, step and millisecond, several values
                problems.append(
                    f"run {run.run_id}: metric {key!r}: {len(points)} values at step "
                    f"{points[0].step} and timestamp {points[0].timestamp} not "
                    "imported: provml cannot tell them apart"
                )
                continue
            point = points[0]
            steps.setdefault(point.step, []).append(point.timestamp)
            batches.add(group, [_metric(point, n, 1, _step_session(run, point.step))])
            count += 1
            final = (group, n)
        if ended and final is not None:
            point = numbered[final][0]
            batches.add(final[0], [_metric(point, FINAL + final[1], 2, session)])
    section = [
        run.experiment,
        "train" if _stage(run) == "training" else (_stage(run) or "run"),
        SECTION,
    ]
    for step, times in sorted(steps.items()):
        own = _step_session(run, step)
        records.append(
            {
                "kind": "section_start",
                "n": 1,
                "session": own,
                "parent": 2,
                "parent_session": session,
                "plan": section,
                "time": min(times) / 1000,
                "index": step,
            }
        )
        if ended:
            records.append(
                {
                    "kind": "section_end",
                    "n": 1,
                    "session": own,
                    "plan": section,
                    "time": max(times) / 1000,
                }
            )
    return count


def _order(point: MetricPoint) -> tuple[int, int, float]:
    value = point.value if point.value == point.value else float("-inf")
    return point.step, point.timestamp, value


def _step_session(run: Run, step: int) -> str:
    assert run.start_time is not None
    return derived_session(run.start_time, "mlflow-step", run.run_id, step)


def _metric(point: MetricPoint, n: int, parent: int, parent_session: str) -> dict[str, Any]:
    return {
        "kind": "metric",
        "n": n,
        "parent": parent,
        "parent_session": parent_session,
        "name": point.key,
        "value": metric_value(point.value),
        "time": point.timestamp / 1000,
        "step": point.step,
    }
