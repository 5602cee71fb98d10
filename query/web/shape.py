"""What the pages show, shaped from the JSON the endpoints answer (:mod:`query.web.runs`,
:mod:`query.web.lineage`): a run's timeline, its metric series, runs compared. Pure
functions of those dicts, no store: the pages and the JSON cannot disagree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any


def when(text: str | None) -> datetime | None:
    """An ISO 8601 time as the store gives it (``Z`` or an offset), or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def seconds(value: Any) -> str:
    """A duration for people: ``850 ms``, ``12.5 s``, ``3 min 4 s``, ``2 h 5 min``."""
    if value is None or value == "":
        return ""
    s = float(value)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def moment(text: str | None) -> str:
    """A time for people, in UTC to the second (``2026-12-03 10:26:08``)."""
    at = when(text)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if at else (text or "")


def timeline(run: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each task's bar on the run's time axis: ``left`` and ``width`` in percent of the
    span from the earliest start to the latest end (a task still running ends now)."""
    rows = []
    now = datetime.now(timezone.utc)
    spans = []
    for task in tasks:
        start = when(task.get("started"))
        end = when(task.get("ended")) or (now if start else None)
        spans.append((task, start, end))
    known = [(s, e) for _, s, e in spans if s and e]
    if not known:
        return [{"task": t, "left": 0.0, "width": 0.0, "known": False} for t, _, _ in spans]
    first = min(s for s, _ in known)
    last = max(e for _, e in known)
    total = max((last - first).total_seconds(), 1e-6)
    for task, start, end in spans:
        if not (start and end):
            rows.append({"task": task, "left": 0.0, "width": 0.0, "known": False})
            continue
        left = (start - first).total_seconds() / total * 100
        width = max((end - start).total_seconds() / total * 100, 0.0)
        rows.append({"task": task, "left": round(left, 3), "width": round(width, 3), "known": True})
    return rows


def metric_series(
    metrics: Iterable[Mapping[str, Any]], names: Mapping[str, str]
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per-step metrics by metric name, then by task (``names``: a task's execution →
    what to call it): ``{"loss": {"train": [(0, 0.9), (1, 0.7)]}}``, steps ascending.
    A metric logged without a step is not a series: :func:`scalars` has it."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for m in metrics:
        step, value = m.get("step"), _number(m.get("value"))
        if step is None or value is None:
            continue
        who = _owner(m, names)
        out.setdefault(str(m["name"]), {}).setdefault(who, []).append((float(step), value))
    for per_task in out.values():
        for points in per_task.values():
            points.sort()
    return dict(sorted(out.items()))


def scalars(metrics: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The metrics logged once (no step): task, name, value."""
    return [{**m, "task": _owner(m, names)} for m in metrics if m.get("step") is None]


def _owner(metric: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """What logged a metric: its task's name (a section's metric is its task's), or
    ``run`` for the run's own."""
    task = metric.get("task")
    return names.get(str(task), str(task)) if task else "run"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def task_names(tasks: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Each task's execution → its name; a name two tasks share gets ``#2``, ``#3``…"""
    seen: dict[str, int] = {}
    out = {}
    for t in tasks:
        name = str(t.get("name") or t.get("id") or t.get("execution"))
        seen[name] = seen.get(name, 0) + 1
        out[str(t["execution"])] = name if seen[name] == 1 else f"{name} #{seen[name]}"
    return out


def compared(details: list[Mapping[str, Any]], baseline: int) -> dict[str, Any]:
    """Runs side by side (``details``: each run's JSON as ``/api/v1/runs/<id>`` answers):
    one row per parameter (``run`` for the run's own, else ``task.name``) and per final
    metric value (``task.metric``, its last step), each cell marked when it differs from
    the ``baseline`` run's."""
    columns: list[dict[tuple[str, str], str]] = []
    for d in details:
        names = task_names(d.get("tasks", []))
        values: dict[tuple[str, str], str] = {}
        for key, value in (d.get("parameters") or {}).items():
            values[("parameter", f"run · {key}")] = str(value)
        for t in d.get("tasks", []):
            for key, value in (t.get("parameters") or {}).items():
                values[("parameter", f"{names[str(t['execution'])]} · {key}")] = str(value)
        last: dict[str, tuple[float, str]] = {}
        for m in d.get("metrics", []):
            key = f"{_owner(m, names)} · {m['name']}"
            step = float(m["step"]) if m.get("step") is not None else float("inf")
            if key not in last or step >= last[key][0]:
                last[key] = (step, str(m.get("value")))
        for key, (_, value) in last.items():
            values[("metric", key)] = value
        columns.append(values)
    keys = sorted({k for c in columns for k in c}, key=lambda k: (k[0] != "parameter", k[1]))
    base: dict[tuple[str, str], str] = columns[baseline] if columns else {}
    rows = []
    for kind, name in keys:
        cells = [c.get((kind, name)) for c in columns]
        differs = [i != baseline and cells[i] != base.get((kind, name)) for i in range(len(cells))]
        rows.append({"kind": kind, "name": name, "cells": cells, "differs": differs,
                     "any": any(differs)})  # fmt: skip
    return {"rows": rows, "differing": sum(r["any"] for r in rows)}


def overlaid(details: list[Mapping[str, Any]], labels: list[str]) -> dict[str, Any]:
    """Per-step metric curves of several runs on one axis each: ``{"loss": {"steps":
    [...], "series": [{"label": "run a · train", "values": [...]}]}}`` (null where a
    run has no value at a step)."""
    curves: dict[str, dict[str, dict[float, float]]] = {}
    for d, label in zip(details, labels, strict=True):
        names = task_names(d.get("tasks", []))
        for metric, per_task in metric_series(d.get("metrics", []), names).items():
            for task, points in per_task.items():
                curves.setdefault(metric, {})[f"{label} · {task}"] = dict(points)
    out: dict[str, Any] = {}
    for metric, series in sorted(curves.items()):
        steps = sorted({s for points in series.values() for s in points})
        out[metric] = {
            "steps": steps,
            "series": [
                {"label": k, "values": [v.get(s) for s in steps]} for k, v in series.items()
            ],
        }
    return out
