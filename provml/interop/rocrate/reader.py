"""A Workflow Run RO-Crate → validated provml wire batches (docs/ro-crate.md).

The run is the ``CreateAction`` whose ``instrument`` is the crate's ``mainEntity`` (the
workflow); its steps are the other ``CreateAction``\\s (with several runs in one crate:
those an ``OrganizeAction`` whose ``result`` is the run orchestrates, through its
``ControlAction``\\s). Each run becomes one batch: a ``workflow_start``/``workflow_end``
pair, a ``task_start``/``task_end`` pair per step, a ``metric`` per provml metric value.

Identity, so that importing a crate twice adds nothing and two crates never meet by
accident: an action whose ``@id`` is a provml execution IRI keeps it (a crate provml
wrote comes back as the same nodes); any other action is numbered from a digest of the
crate's key and its ``@id``, the crate's key being the run's ``@id`` when it holds a UUID
(nf-prov, runcrate and ``rocrate`` name runs so), else the SHA-256 of the metadata file.

Data: named by content when the crate gives a ``sha256`` (or names it by provml's content
IRI), or when its file or directory is in the crate (hashed here); then the same file
captured anywhere else is the same node. Otherwise it is the crate's own: a step's result
is named after that step, its use by a later step points at that node, and an input no
step made is named by the crate's key and its ``@id`` — never joined with anything
outside the crate.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from provml.core import ids
from provml.core.errors import ValidationError
from provml.core.vocab import ID_BASE, PROVML_NS
from provml.core.wire import MAX_NAME, STAGES, WIRE_VERSION, Batch, validate_batch
from provml.interop.rocrate.source import METADATA, CrateSource, local_path

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_SHA = re.compile(r"[0-9a-fA-F]{64}")
_CONTENT = ID_BASE + "data/sha256/"
STATUS = {"CompletedActionStatus": "finished", "FailedActionStatus": "failed",
          "ActiveActionStatus": "running", "PotentialActionStatus": "running"}  # fmt: skip
#: provml:… properties of a data entity → members of the data reference
REF_FIELDS = {"source": "source", "license": "license", "name": "name", "version": "version",
              "split": "split", "description": "description", "framework": "framework",
              "frameworkVersion": "framework_version", "algorithm": "algorithm",
              "hostname": "host"}  # fmt: skip
#: provml:… properties of the run's action → its ``env`` (docs/mapping.md#environment)
ENV_FIELDS = {"hostname": "hostname", "processId": "pid", "pythonVersion": "python",
              "platform": "platform", "commandLine": "argv"}  # fmt: skip
MAX_RECORDS = 40_000  # records per batch sent (the wire limit is 50,000)


@dataclass
class Imported:
    """What a crate became: its batches and what was counted on the way."""

    batches: list[Batch] = field(default_factory=list)
    runs: int = 0
    steps: int = 0
    params: int = 0
    metrics: int = 0
    data: Counter[str] = field(default_factory=Counter)  # how each datum was named
    untimed: int = 0  # actions that took a time from their run (no times of their own)
    skipped: list[str] = field(default_factory=list)  # what was not imported, and why

    def summary(self) -> str:
        named = ", ".join(f"{n} {how}" for how, n in sorted(self.data.items())) or "none"
        named = f"data uses: {named}"
        text = (f"{self.runs} run(s), {self.steps} step(s), {self.params} parameter(s), "
                f"{self.metrics} metric value(s); {named}")  # fmt: skip
        if self.untimed:
            text += f"; {self.untimed} action(s) without times of their own took their run's"
        if self.skipped:
            text += f"; not imported: {len(self.skipped)}"
        return text


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ids(value: Any) -> list[str]:
    return [v["@id"] for v in _list(value) if isinstance(v, dict) and isinstance(v.get("@id"), str)]


def _types(entity: dict[str, Any]) -> set[str]:
    return {t for t in _list(entity.get("@type")) if isinstance(t, str)}


def _term(value: Any) -> str:
    """A type or term as written (``provml:Model``, a full IRI, ``{"@id": …}``) → its
    local name when it is provml's or schema.org's."""
    if isinstance(value, dict):
        value = value.get("@id", "")
    text = str(value)
    for prefix in (PROVML_NS, "provml:", "http://schema.org/", "https://schema.org/"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _name(text: Any, fallback: str) -> str:
    value = text if isinstance(text, str) and text.strip() else fallback
    return value.strip()[:MAX_NAME] or "unnamed"


def _seconds(value: Any) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:  # a time without its zone: taken as UTC (docs/ro-crate.md)
        t = t.replace(tzinfo=timezone.utc)
    seconds = t.timestamp()
    return seconds if 0 <= seconds < 32503680000 else None


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\n".join(parts).encode()).digest()


class _Crate:
    def __init__(self, source: CrateSource, doc: dict[str, Any], out: Imported) -> None:
        self.source = source
        self.out = out
        self.entities: dict[str, dict[str, Any]] = {}
        for e in doc["@graph"]:
            if isinstance(e, dict) and isinstance(e.get("@id"), str):
                self.entities.setdefault(e["@id"], {}).update(e)
        descriptor = self.entities.get(METADATA) or self.entities.get("ro-crate-metadata.jsonld")
        if descriptor is None or not _ids(descriptor.get("about")):
            raise ValidationError(f"{source.where}: no metadata descriptor ({METADATA} about "
                                  "the root dataset) in the crate")  # fmt: skip
        self.root = self.entities.get(_ids(descriptor["about"])[0], {})
        main = _ids(self.root.get("mainEntity"))
        self.main: str | None = main[0] if main else None
        self.key = ""
        self.generator: dict[str, tuple[str, str]] = {}  # datum @id → (execution IRI, role)

    def get(self, ident: str) -> dict[str, Any]:
        return self.entities.get(ident) or {"@id": ident}

    def actions(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.entities.values() if kind in _types(e)]

    # ---- identities

    def identity(self, action: dict[str, Any], time: float | None) -> tuple[str, int]:
        try:
            return ids.parse_execution_iri(action["@id"])
        except ValueError:
            pass
        d = _digest("ro-crate", self.key, action["@id"])
        ms = int(time * 1000) if time is not None else int.from_bytes(d[10:16], "big")
        return ids.uuid7(ms, int.from_bytes(d[:10], "big") & ~ids.LOW32), 1

    # ---- values

    def kind(self, entity: dict[str, Any]) -> str:
        extra = {_term(t) for t in _list(entity.get("additionalType"))} | {
            _term(t) for t in _types(entity)
        }
        if "Model" in extra:
            return "model"
        if "LearningData" in extra:
            return "dataset"
        return "directory" if "Dataset" in extra else "file"

    def sha256(self, entity: dict[str, Any]) -> str | None:
        for value in (entity.get("sha256"), *_list(entity.get("identifier"))):
            if isinstance(value, dict) and _term(value.get("propertyID", value.get("name"))) \
                    in ("sha256", "SHA-256", "sha-256"):  # fmt: skip
                value = value.get("value")
            if isinstance(value, str):
                text = value.removeprefix("sha256:").strip()
                if _SHA.fullmatch(text):
                    return text.lower()
        ident = entity["@id"]
        if ident.startswith(_CONTENT) and _SHA.fullmatch(ident[len(_CONTENT) :]):
            return ident[len(_CONTENT) :].lower()
        return None

    def datum(self, entity: dict[str, Any], role: str, used: bool) -> Any:
        """The wire value of an object (``used``) or a result."""
        ident = entity["@id"]
        sha, how, size = self.sha256(entity), "by sha256 in the crate", None
        if sha is None:
            found = self.source.digest(ident)
            if found is not None:
                (sha, size), how = found, "hashed from the crate's files"
        if sha is not None:
            ref: dict[str, Any] = {"@data": self.kind(entity), "sha256": sha}
            path = entity.get("alternateName") or local_path(ident)
            if isinstance(path, str) and path:
                ref["path"] = path
            size = size if size is not None else entity.get("contentSize")
            if isinstance(size, str) and size.isdigit():
                size = int(size)
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                ref["size"] = size
            for prop, key in REF_FIELDS.items():
                value = entity.get("provml:" + prop, entity.get(PROVML_NS + prop))
                if isinstance(value, str):
                    ref[key] = value
            self.out.data[how] += 1
            return ref
        self.out.data["the crate's own (no content named)"] += 1
        if used and ident in self.generator:
            return {"@entity": ids.generated_value_iri(*self.generator[ident])}
        value = {"@id": ident}
        if isinstance(entity.get("name"), str):
            value["name"] = entity["name"]
        return value if not used else {"ro-crate": self.key, **value}

    def property_value(self, entity: dict[str, Any]) -> Any:
        value = entity.get("value")
        if entity.get("encodingFormat") == "application/json" and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def role(self, action: dict[str, Any], entity: dict[str, Any], taken: set[str]) -> str:
        works = [self.get(i) for i in _ids(entity.get("exampleOfWork"))]
        tool = self.get((_ids(action.get("instrument")) or [""])[0])
        mine = set(_ids(tool.get("input"))) | set(_ids(tool.get("output")))
        works.sort(key=lambda w: w["@id"] not in mine)
        base = entity["@id"].rstrip("/").rsplit("/", 1)[-1].lstrip("#")
        name = next((w["name"] for w in works if isinstance(w.get("name"), str)), None)
        name = _name(name or entity.get("name"), base or "value")
        role, k = name, 1
        while role in taken:
            k += 1
            role = f"{name[: MAX_NAME - 8]} ({k})"
        taken.add(role)
        return role

    # ---- the records of one action

    def split(self, action: dict[str, Any], exec_iri: str) -> dict[str, Any]:
        """An action's objects and results as params, used, generated and metrics."""
        out: dict[str, Any] = {"params": {}, "used": {}, "generated": {}, "metrics": []}
        taken: set[str] = set()
        for ident in _ids(action.get("object")):
            entity = self.get(ident)
            if "PropertyValue" in _types(entity):
                name = self.role(action, entity, taken)
                if ident.startswith(_CONTENT):  # a provml used value, by its digest
                    out["used"][name] = {"@data": "value", "sha256": ident[len(_CONTENT) :]}
                else:
                    out["params"][name] = self.property_value(entity)
                    self.out.params += 1
            elif not {"CreateAction", "ControlAction", "OrganizeAction"} & _types(entity):
                out["used"][self.role(action, entity, taken)] = entity
        taken = set()
        for ident in _ids(action.get("result")):
            entity = self.get(ident)
            extra = {_term(t) for t in _list(entity.get("additionalType"))}
            value = self.property_value(entity)
            if (
                "PropertyValue" in _types(entity)
                and "ModelEvaluation" in extra
                and (
                    (isinstance(value, int | float) and not isinstance(value, bool))
                    or value in ("NaN", "INF", "-INF")
                )
            ):
                out["metrics"].append(entity)
            elif "PropertyValue" in _types(entity):
                out["generated"][self.role(action, entity, taken)] = value
            else:
                role = self.role(action, entity, taken)
                self.generator.setdefault(ident, (exec_iri, role))
                out["generated"][role] = entity
        return out


def to_batches(source: CrateSource) -> Imported:
    """Read the crate in ``source`` into validated wire batches (one per workflow run).
    Raise :class:`ValidationError` naming what is wrong with a crate that cannot be read."""
    out = Imported()
    crate = _Crate(source, source.metadata(), out)
    creates = crate.actions("CreateAction")
    runs = [a for a in creates if crate.main and crate.main in _ids(a.get("instrument"))]
    if not runs:
        raise ValidationError(
            f"{source.where}: no CreateAction whose instrument is the crate's mainEntity "
            f"({crate.main or 'none given'}): not a Workflow Run Crate"
        )
    run_ids = {r["@id"] for r in runs}
    owner: dict[str, str] = {}
    for org in crate.actions("OrganizeAction"):
        for made in set(_ids(org.get("result"))) & run_ids:
            for control in _ids(org.get("object")):
                for step in _ids(crate.get(control).get("object")):
                    owner.setdefault(step, made)
    steps: dict[str, list[dict[str, Any]]] = {r["@id"]: [] for r in runs}
    for action in sorted(creates, key=lambda a: a["@id"]):
        if action["@id"] in run_ids:
            continue
        run_id = owner.get(action["@id"]) or (runs[0]["@id"] if len(runs) == 1 else None)
        if run_id is None:
            out.skipped.append(f"{action['@id']}: a step no OrganizeAction links to one of the "
                               f"crate's {len(runs)} runs")  # fmt: skip
            continue
        steps[run_id].append(action)
    for run in sorted(runs, key=lambda a: a["@id"]):
        uuid_in = _UUID.search(run["@id"]) or run["@id"].startswith(ID_BASE)
        crate.key = run["@id"] if uuid_in else hashlib.sha256(source.metadata_bytes).hexdigest()
        out.batches += _run_batches(crate, run, steps[run["@id"]], out)
    return out


def _run_batches(crate: _Crate, run: dict[str, Any], steps: list[dict[str, Any]],
                 out: Imported) -> list[Batch]:  # fmt: skip
    workflow = crate.get((_ids(run.get("instrument")) or [""])[0])
    wf_name = _name(workflow.get("name"), workflow["@id"].rstrip("/").rsplit("/", 1)[-1])
    start, end = _seconds(run.get("startTime")), _seconds(run.get("endTime"))
    step_times = [
        t
        for s in steps
        for t in (_seconds(s.get("startTime")), _seconds(s.get("endTime")))
        if t is not None
    ]
    if start is None:
        start = min(step_times + ([end] if end is not None else []), default=None)
        out.untimed += 1
    if start is None:
        raise ValidationError(f"{run['@id']}: the run and its steps have no startTime or "
                              "endTime: provml places every execution in time")  # fmt: skip
    session, n = crate.identity(run, start)
    run_exec = ids.execution_iri(session, n)
    records: list[dict[str, Any]] = []
    # results first: a step's use of a datum another step made, with no content of its
    # own, points at that step's node
    planned = []
    for step in steps:
        s_start = _seconds(step.get("startTime"))
        s_end = _seconds(step.get("endTime"))
        if s_start is None:
            out.untimed += 1
        s_session, s_n = crate.identity(step, s_start if s_start is not None else start)
        planned.append((step, s_start, s_end, s_session, s_n))
    parts = {id(step): crate.split(step, ids.execution_iri(s, k)) for step, _, _, s, k in planned}
    run_parts = crate.split(run, run_exec)
    user = None
    for agent in _ids(run.get("agent")):
        user = _name(crate.get(agent).get("name"), agent)
    head: dict[str, Any] = {"kind": "workflow_start", "n": n, "name": wf_name, "time": start}
    if run_parts["params"]:
        head["params"] = run_parts["params"]
    if user:
        head["user"] = user
    env = {key: run[f"provml:{prop}"] for prop, key in ENV_FIELDS.items()
           if isinstance(run.get(f"provml:{prop}"), str | int)}  # fmt: skip
    try:
        extra = json.loads(run.get("provml:metadata") or "{}")
    except (TypeError, ValueError):
        extra = {}
    if isinstance(extra, dict):
        env.update(extra)
    if env:
        head["env"] = env
    records.append(head)
    next_n = max([n] + [k for _, _, _, s, k in planned if s == session]) + 1
    last = start
    for step, s_start, s_end, s_session, s_n in planned:
        tool = crate.get((_ids(step.get("instrument")) or [""])[0])
        tool_name = _name(tool.get("name") if tool.get("@type") else None,
                          tool["@id"].rstrip("/").rsplit("/", 1)[-1].split("#")[0]
                          or str(step.get("name") or "step"))  # fmt: skip
        t0 = s_start if s_start is not None else start
        t1 = s_end if s_end is not None else (end if end is not None else t0)
        last = max(last, t1)
        own = {"session": s_session} if s_session != session else {}
        stage = step.get("provml:stage", step.get(PROVML_NS + "stage"))
        staged = {"stage": stage} if stage in STAGES else {}
        p = parts[id(step)]
        used = {r: crate.datum(v, r, True) if isinstance(v, dict) and "@id" in v else v
                for r, v in p["used"].items()}  # fmt: skip
        made = {r: crate.datum(v, r, False) if isinstance(v, dict) and "@id" in v else v
                for r, v in p["generated"].items()}  # fmt: skip
        rec: dict[str, Any] = {"kind": "task_start", "n": s_n, **own, "parent": n,
                               "plan": [wf_name, tool_name], "time": t0, **staged}  # fmt: skip
        if p["params"]:
            rec["params"] = p["params"]
        if used:
            rec["used"] = used
        records.append(rec)
        status = STATUS.get(_term(step.get("actionStatus")), "finished")
        if status != "running" or made:
            end_rec: dict[str, Any] = {"kind": "task_end", "n": s_n, **own,
                                       "plan": [wf_name, tool_name], "time": max(t1, t0),
                                       **staged, "status": status}  # fmt: skip
            if isinstance(step.get("error"), str) and step["error"]:
                end_rec["error"] = step["error"][:65536]
            if made:
                end_rec["generated"] = made
            records.append(end_rec)
        out.steps += 1
        sections: dict[str, tuple[str, int]] = {}
        for metric in p["metrics"]:
            parent = (s_session, s_n)
            ref = _ids(metric.get("provml:section"))
            if ref:
                if ref[0] not in sections:
                    sections[ref[0]] = _section(
                        crate, crate.get(ref[0]), (s_session, s_n), [wf_name, tool_name],
                        (t0, t1), records, session,
                    )  # fmt: skip
                parent = sections[ref[0]]
            records.append(_metric(metric, session, next_n, parent, t1))
            next_n = max(next_n, records[-1]["n"]) + 1
            out.metrics += 1
    ended = STATUS.get(_term(run.get("actionStatus")), "finished" if end is not None else "")
    if ended and ended != "running":
        if end is None:
            out.untimed += 1
        tail: dict[str, Any] = {"kind": "workflow_end", "n": n, "name": wf_name,
                                "time": max(end if end is not None else last, start),
                                "status": ended}  # fmt: skip
        if isinstance(run.get("error"), str) and run["error"]:
            tail["error"] = run["error"][:65536]
        records.append(tail)
    out.runs += 1
    return _batches(session, records)


def _section(crate: _Crate, entity: dict[str, Any], task: tuple[str, int], plan: list[str],
             times: tuple[float, float], records: list[dict[str, Any]],
             batch_session: str) -> tuple[str, int]:  # fmt: skip
    """The section (an epoch) a provml metric value was measured in, as provml wrote it."""
    t0 = _seconds(entity.get("startTime")) or times[0]
    t1 = _seconds(entity.get("endTime")) or times[1]
    session, n = crate.identity(entity, t0)
    own = {"session": session} if session != batch_session else {}
    parent = {"parent_session": task[0]} if task[0] != batch_session else {}
    name = _name(entity.get("name"), "section")
    rec: dict[str, Any] = {"kind": "section_start", "n": n, **own, "parent": task[1], **parent,
                           "plan": [*plan, name], "time": t0}  # fmt: skip
    index = entity.get("provml:index")
    if isinstance(index, int) and not isinstance(index, bool):
        rec["index"] = index
    records.append(rec)
    records.append({"kind": "section_end", "n": n, **own, "plan": [*plan, name],
                    "time": max(t0, t1),
                    "status": STATUS.get(_term(entity.get("actionStatus")),
                                         "finished")})  # fmt: skip
    return session, n


def _metric(entity: dict[str, Any], session: str, n: int, parent: tuple[str, int],
            fallback: float) -> dict[str, Any]:  # fmt: skip
    try:  # a provml metric value keeps its number when it is of this batch's session
        m_session, m_n = ids.parse_execution_iri(entity["@id"].replace("/metric/", "/exec/"))
        if m_session == session:
            n = m_n
    except ValueError:
        pass
    rec: dict[str, Any] = {"kind": "metric", "n": n, "parent": parent[1],
                           "name": _name(entity.get("name"), "metric"), "value": entity["value"],
                           "time": _seconds(entity.get("provml:time")) or fallback}  # fmt: skip
    if parent[0] != session:
        rec["parent_session"] = parent[0]
    step = entity.get("provml:step")
    if isinstance(step, int) and not isinstance(step, bool):
        rec["step"] = step
    return rec


def _batches(session: str, records: list[dict[str, Any]]) -> list[Batch]:
    out = []
    for i in range(0, len(records), MAX_RECORDS):
        chunk = records[i : i + MAX_RECORDS]
        digest = hashlib.sha256(ids.canonical_json([session, chunk])).hexdigest()[:32]
        obj = {"provml": WIRE_VERSION, "batch": digest, "session": session, "records": chunk}
        try:
            out.append(validate_batch(obj))
        except ValidationError as exc:
            raise ValidationError(f"the crate makes an invalid batch: {exc}",
                                  details=exc.details) from None  # fmt: skip
    return out
