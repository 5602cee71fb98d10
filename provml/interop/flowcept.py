"""Flowcept task messages → validated provml wire batches (docs/importers.md says what
maps to what).

Flowcept (ORNL) captures the tasks of Dask, MLflow, TensorBoard … runs as *task
messages* (``task_id``, ``workflow_id``, ``activity_id``, ``used``, ``generated``,
``started_at``, ``ended_at``, ``status``, telemetry …), kept in MongoDB and exported as
MongoDB extended JSON. Flowcept keys a task by its ``task_id`` (its database updates the
task's document), so the messages of one ``task_id`` are one task execution here too.
Every identifier is a function of Flowcept's ids: the same messages imported twice add
nothing."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from provml.core.errors import ValidationError
from provml.core.wire import Batch
from provml.interop.foreign import (
    Batches,
    Redact,
    derived_session,
    digest,
    is_name,
    keep,
    problem_text,
)

#: Flowcept status → provml status of an ended task
END_STATUS = {"FINISHED": "finished", "ERROR": "failed"}
TIME_FIELDS = ("started_at", "ended_at")
#: a Dask task key: the function's name, a dash, a hex token
_DASK_KEY = re.compile(r"^(.+)-[0-9a-f]{32}$")
#: message fields kept as properties of a task's own run (when it names no workflow)
_RUN_ENV = ("campaign_id", "adapter_id", "plugin_id", "sys_name", "login_name", "flowcept_version")


@dataclass
class Converted:
    batches: list[Batch] = field(default_factory=list)
    messages: int = 0
    tasks: int = 0
    workflows: int = 0
    untimed: int = 0  # tasks without started_at, placed at the first time Flowcept recorded
    problems: list[str] = field(default_factory=list)


def loads(data: bytes) -> list[Any]:
    """The messages of a file: a JSON array, one JSON object, or JSON Lines."""
    text = data.decode("utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


def plain(value: Any) -> Any:
    """MongoDB extended JSON → plain JSON values (``$oid`` → its hex, ``$numberLong`` →
    an integer, ``$date`` → seconds since the epoch); NaN and infinities as strings."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$oid":
                return str(inner)
            if key in ("$numberLong", "$numberInt"):
                return int(inner)
            if key == "$numberDouble":
                return plain(float(inner))
            if key == "$date":
                return _date(plain(inner))
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("INF" if value > 0 else "-INF")
    return value


def _date(value: Any) -> float | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value / 1000 if isinstance(value, int | float) else None


def seconds(value: Any) -> float | None:
    """A Flowcept time: seconds, or milliseconds (its MLflow adapter's), since the epoch."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value / 1000 if value > 1e11 else float(value)


@dataclass
class _Task:
    task_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def first(self, name: str) -> Any:
        return next((m[name] for m in self.messages if m.get(name) not in (None, "")), None)

    def merged(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.messages:
            if isinstance(m.get(name), dict):
                out.update(m[name])
        return out

    def times(self, *names: str) -> list[float]:
        found = [seconds(m.get(n)) for m in self.messages for n in names]
        return [t for t in found if t is not None]

    def recorded(self) -> list[float]:
        """When Flowcept recorded the task, most trustworthy first: its messages' MongoDB
        times (``timestamp``, then the ObjectIds'), then ``submitted_at`` and
        ``utc_timestamp`` (local times written as UTC by some Flowcept versions: the
        corpus' files have them hours off ``started_at``)."""
        oids = [
            float(int(m["_id"][:8], 16))
            for m in self.messages
            if m.get("_oid") and re.fullmatch(r"[0-9a-f]{24}", str(m.get("_id")))
        ]
        for found in (
            self.times("timestamp"),
            oids,
            self.times("submitted_at", "registered_at", "utc_timestamp"),
        ):
            if found:
                return found
        return []

    def status(self) -> str | None:
        final = [m["status"] for m in self.messages if m.get("status") in END_STATUS]
        return final[-1] if final else None


def to_batches(messages: list[Any], redact: Redact = keep, where: str = "") -> Converted:
    out = Converted(messages=len(messages))
    tasks: dict[str, _Task] = {}
    workflows: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(messages):
        if not isinstance(raw, dict):
            out.problems.append(f"{where}[{i}]: not imported: not a JSON object")
            continue
        try:
            msg = plain(raw)
        except (ValueError, TypeError, OverflowError) as exc:  # {"$date": "garbage"} …
            out.problems.append(f"{where}[{i}]: not imported: not MongoDB extended JSON: {exc}")
            continue
        if isinstance(raw.get("_id"), dict) and "$oid" in raw["_id"]:
            msg["_oid"] = True
        if msg.get("type") == "workflow" and isinstance(msg.get("workflow_id"), str):
            workflows.setdefault(msg["workflow_id"], {}).update(msg)
            continue
        task_id = msg.get("task_id")
        if not (isinstance(task_id, str) and task_id):
            out.problems.append(
                f"{where}[{i}]: not imported: a message without a task_id (nor a workflow message)"
            )
            continue
        tasks.setdefault(task_id, _Task(task_id)).messages.append(msg)
    runs: dict[str | None, list[tuple[_Task, float]]] = {}
    for task in tasks.values():
        times = task.times("started_at") or task.recorded()
        if not times:
            out.problems.append(
                f"{where}: task {task.task_id}: not imported: no message of it "
                "says when it ran or was recorded"
            )
            continue
        if not task.times("started_at"):
            out.untimed += 1
        wf = task.first("workflow_id")
        runs.setdefault(wf if isinstance(wf, str) else None, []).append((task, min(times)))
    units: list[tuple[str, Callable[[Batches], None], int]] = []
    for wf_id, members in runs.items():
        if wf_id is None:
            units += [
                (f"task {t.task_id}", partial(_own_run, t, start, redact), 1)
                for t, start in members
            ]
        else:
            info = workflows.get(wf_id, {})
            units.append(
                (
                    f"workflow {wf_id}",
                    partial(_workflow, wf_id, info, members, redact),
                    len(members),
                )
            )
    for wf_id, info in workflows.items():  # workflow messages without a task here
        if wf_id not in runs:
            units.append((f"workflow {wf_id}", partial(_workflow, wf_id, info, [], redact), 0))
    for what, add, count in units:
        batches = Batches()
        try:
            add(batches)
            built = batches.build()
        except ValidationError as exc:
            out.problems.append(f"{where}: {what}: not imported: {problem_text(exc)}")
            continue
        out.batches += built
        out.workflows += 1
        out.tasks += count
    return out


def _name(value: Any, fallback: str) -> str:
    return value if is_name(value) else fallback


def _plan_name(task: _Task) -> str:
    activity = task.first("activity_id")
    if is_name(activity):
        return str(activity)
    key = _DASK_KEY.match(task.task_id)
    if key and is_name(key.group(1)):
        return key.group(1)
    return _name(task.first("adapter_id") or task.first("plugin_id"), "task")


def _workflow_name(info: dict[str, Any], task: _Task | None) -> str:
    name = info.get("name") or info.get("campaign_id")
    if task is not None:
        name = name or task.first("campaign_id")
    return _name(name, "flowcept")


def _session(*parts: Any) -> str:
    d = digest("flowcept", *parts)
    return derived_session(int.from_bytes(d[6:12], "big") >> 8, "flowcept", *parts)


def _own_run(task: _Task, start: float, redact: Redact, batches: Batches) -> None:
    """A task whose messages name no workflow: a workflow run of its own, so that it is
    joined to no other task."""
    session = _session("task-run", task.task_id)
    name = _workflow_name({}, task)
    env: dict[str, Any] = {"flowcept_task_id": task.task_id}
    host = task.first("hostname") or task.first("node_name")
    if isinstance(host, str):
        env["hostname"] = host
    for key in _RUN_ENV:
        value = task.first(key)
        if isinstance(value, str | int | float | bool):
            env[key] = value
    records = [_workflow_start(name, start, redact(env), task.first("user"))]
    records += _task_records(task, start, 2, None, [name, _plan_name(task)], redact)
    if len(records) > 2:  # the task ended: so did its run
        end = records[-1]
        records.append(
            {
                "kind": "workflow_end",
                "n": 1,
                "name": name,
                "time": end["time"],
                "status": end["status"],
                "error": end.get("error"),
            }
        )
    batches.add(session, records)


def _workflow(
    wf_id: str,
    info: dict[str, Any],
    members: list[tuple[_Task, float]],
    redact: Redact,
    batches: Batches,
) -> None:
    session = _session("workflow", wf_id)
    name = _workflow_name(info, members[0][0] if members else None)
    times = [t for _, t in members] + [
        t for t in (seconds(info.get(k)) for k in (*TIME_FIELDS, "utc_timestamp")) if t is not None
    ]
    if not times:
        raise ValidationError(
            "its workflow message says not when it ran, and no task of it is here"
        )
    start = min(times)
    env: dict[str, Any] = {"flowcept_workflow_id": wf_id}
    for key in ("campaign_id", "adapter_id", "flowcept_version"):
        values = {task.first(key) for task, _ in members} | ({info[key]} if key in info else set())
        values.discard(None)
        if len(values) == 1 and isinstance(v := values.pop(), str | int | float | bool):
            env[key] = v
    user = info.get("user")
    users = {task.first("user") for task, _ in members}
    if user is None and len(users) == 1:
        user = users.pop()
    batches.add(session, [_workflow_start(name, start, redact(env), user)])
    for task, t0 in sorted(members, key=lambda m: m[0].task_id):
        own = _session("task", wf_id, task.task_id)
        recs = _task_records(task, t0, 1, session, [name, _plan_name(task)], redact)
        for rec in recs:
            rec["session"] = own
        batches.add(session, recs)


def _workflow_start(name: str, time: float, env: dict[str, Any], user: Any) -> dict[str, Any]:
    return {"kind": "workflow_start", "n": 1, "name": name, "time": time, "env": env,
            "user": user if is_name(user) else None}  # fmt: skip


def _task_records(
    task: _Task,
    start: float,
    n: int,
    parent_session: str | None,
    plan: list[str],
    redact: Redact,
) -> list[dict[str, Any]]:
    used = task.merged("used")
    generated = task.merged("generated")
    head: dict[str, Any] = {
        "kind": "task_start",
        "n": n,
        "parent": 1,
        "plan": plan,
        "time": start,
        "params": redact(used) or None,
    }
    if parent_session:
        head["parent_session"] = parent_session
    records = [head]
    status = task.status()
    ended_at = task.times("ended_at")
    finished = any(m.get("finished") is True for m in task.messages)
    if status or ended_at or finished or generated:
        end = max(ended_at or task.recorded() or [start])
        end_rec: dict[str, Any] = {
            "kind": "task_end",
            "n": n,
            "plan": plan,
            "time": max(end, start),
            "status": END_STATUS.get(status or "FINISHED", "finished"),
            "generated": redact(generated) or None,
        }
        if status == "ERROR":
            stderr = task.first("stderr") or task.first("exception")
            end_rec["error"] = str(stderr)[:4000] if stderr else "Flowcept status ERROR"
        records.append(end_rec)
    return records
