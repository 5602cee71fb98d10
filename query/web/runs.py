"""The workflow runs as the browser lists and opens them: the bodies of ``GET
/api/v1/runs`` (:func:`runs`) and ``GET /api/v1/runs/<id>`` (:func:`run`), docs/web.md.

The list filters, sorts and pages in SPARQL (``LIMIT``/``OFFSET``): a page of a store of
10,000 runs reads that page, not every run. Parameters are validated strictly and written
into the query only as pyoxigraph terms (an IRI, an escaped literal, a number). A run's
page reuses the named questions where they answer (``stage-resources`` for its tasks'
times and resources) and reads the rest in a few queries bound to the one run.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import orjson

from provml.core.errors import NotFound, ValidationError
from provml.core.hashprefix import expand
from provml.core.ids import ref_iri
from query.records import rows
from query.web.common import (
    EXEC,
    iri,
    iris,
    moment,
    number,
    run_id,
    seconds,
    select,
    text,
)

#: the parameters of /api/v1/runs
PARAMS = (
    "q",
    "workflow",
    "user",
    "status",
    "since",
    "until",
    "param",
    "metric",
    "used",
    "sort",
    "limit",
    "offset",
)
#: may be given more than once (a run matches every range)
REPEATABLE = ("param", "metric")
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
#: sort key → (the ORDER BY expression, descending by default); ``-key`` reverses
SORTS: dict[str, tuple[str, bool]] = {
    "started": ("?started", True),
    "duration": ("?duration", True),
    "workflow": ("?workflow", False),
    "user": ("?user", False),
    "status": ("?status", False),
}

#: the patterns a run's value needs, in order (an OPTIONAL before the BIND that reads it)
_NEEDS = {
    "workflow": "?run provml:name ?workflow .",
    "started": "OPTIONAL { ?run prov:startedAtTime ?started }",
    "ended": "OPTIONAL { ?run prov:endedAtTime ?ended }",
    "duration": "BIND(?ended - ?started AS ?duration)",
    "endedStatus": "OPTIONAL { ?run provml:status ?endedStatus }",
    "status": 'BIND(COALESCE(?endedStatus, "running") AS ?status)',
    "user": "OPTIONAL { ?run prov:wasAssociatedWith/provml:name ?user }",
    "host": "OPTIONAL { ?run provml:hostname ?host }",
    "job": "OPTIONAL { ?run provml:jobId ?job }",
}
#: what each sort key needs besides the start, which every listed run has
_SORT_NEEDS = {
    "started": (),
    "duration": ("ended", "duration"),
    "workflow": ("workflow",),
    "user": ("user",),
    "status": ("endedStatus", "status"),
}
_ALL = tuple(_NEEDS)


def _patterns(needs: set[str] | tuple[str, ...]) -> str:
    return "\n  ".join(text for key, text in _NEEDS.items() if key in needs)


#: the runs listed: every workflow execution that started (a run every rank of one batch
#: job is part of, ``run/<key>/…``, has no start of its own: its ranks are listed)
_HEAD = "?run a provml:WorkflowExecution ; prov:startedAtTime ?started ."
#: a page of runs, with only what the sort and the filters read (10,000 runs are sorted
#: by one value each); :data:`_DETAILS` reads the rest for the page's rows alone
_PAGE = """
SELECT ?run WHERE {{
  {head}
  {inner}
  {filters}
}} ORDER BY {order} LIMIT {limit} OFFSET {offset}
"""
_DETAILS = """
SELECT ?run ?workflow ?user ?host ?job ?started ?ended ?status ?duration WHERE {{
  VALUES ?run {{ {runs} }}
  {fields}
}}
"""
_COUNT = """
SELECT (COUNT(?run) AS ?total) WHERE {{
  {head}
  {inner}
  {filters}
}}
"""
#: without filters: every workflow execution but the batch jobs' own runs (a type's
#: count reads one index range; a join with the starts, 20× as long, measured)
_COUNT_ALL = """
SELECT ?all ?jobs WHERE {
  { SELECT (COUNT(?run) AS ?all) WHERE { ?run a provml:WorkflowExecution } }
  { SELECT (COUNT(?job) AS ?jobs) WHERE {
      ?job provml:runKey ?key .
      FILTER NOT EXISTS { ?job prov:startedAtTime ?started }
      FILTER EXISTS { ?job a provml:WorkflowExecution } } }
}
"""

# Each of these narrows the runs by a subquery that starts from the constant it is about
# (a parameter's name, a metric's, a piece of data) and walks from what it finds to the
# runs: a FILTER EXISTS evaluates its whole pattern for each run (a parameter range took
# 40 s on 300 runs so, measured), a UNION is evaluated on its own before the join (1.8 s
# on 10,000 runs; the path, 0.4 s).
#: the runs with a parameter (their own, or one of their tasks') with a value in a range
_PARAM = """{{ SELECT DISTINCT ?run WHERE {{
    ?pv provml:name {name} ; prov:value ?px . {bounds}
    FILTER EXISTS {{ ?pv provml:valueOf ?pa }}
    ?pv ^prov:used/provml:partOf? ?run .
  }} }}"""
#: the runs that logged a metric (the run, one of its tasks or their sections) in a range
_METRIC = """{{ SELECT DISTINCT ?run WHERE {{
    ?mv provml:name {name} ; prov:value ?mx . {bounds}
    FILTER EXISTS {{ ?mv a provml:ModelEvaluation }}
    ?mv prov:wasGeneratedBy/provml:partOf* ?run .
  }} }}"""
#: the runs one of whose tasks used a piece of data
_USED = "{{ SELECT DISTINCT ?run WHERE {{ ?ut prov:used {data} ; provml:partOf ?run }} }}"


def runs(store: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The body of ``GET /api/v1/runs``: one page of the runs that match ``args`` (each
    value a string, or a list of strings for a repeatable parameter)."""
    values = _check(args)
    limit = _whole(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _whole(values, "offset", 0, 0, None)
    head, filters, needs = _where(store, values)
    sort = _one(values, "sort") or "started"
    order = _order(sort)
    inner = _patterns(needs | set(_SORT_NEEDS[sort.strip().lstrip("-")]))
    query = _PAGE.format(
        head=head, inner=inner, filters=filters, order=order, limit=limit + 1, offset=offset
    )
    page = [r["run"] for r in select(store, query)]
    details: dict[str, dict[str, str]] = {}
    if page:
        query = _DETAILS.format(runs=iris(page[:limit]), fields=_patterns(_ALL))
        details = {r["run"]: r for r in select(store, query)}
    if head == _HEAD and not filters:
        (count,) = select(store, _COUNT_ALL)
        total = int(count["all"]) - int(count["jobs"])
    else:
        query = _COUNT.format(head=head, inner=_patterns(needs), filters=filters)
        total = int(select(store, query)[0]["total"])
    return {
        "runs": [_row(details.get(run, {"run": run})) for run in page[:limit]],
        "limit": limit,
        "offset": offset,
        "more": len(page) > limit,
        "total": total,
    }


def _check(args: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in args.items():
        if key not in PARAMS:
            raise ValidationError(
                f"unknown parameter {key!r}; /api/v1/runs takes {', '.join(PARAMS)}"
            )
        given = [value] if isinstance(value, str) else list(value)
        if len(given) > 1 and key not in REPEATABLE:
            raise ValidationError(f"parameter {key!r} given {len(given)} times")
        out[key] = [str(v) for v in given]
    return out


def _one(values: dict[str, list[str]], key: str) -> str | None:
    given = values.get(key)
    return given[0] if given else None


def _whole(values: dict[str, list[str]], key: str, default: int, low: int, high: int | None) -> int:
    raw = _one(values, key)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        upto = f" to {high:,}" if high is not None else " or more"
        raise ValidationError(f"{key} must be a whole number from {low}{upto}, got {raw[:40]!r}")
    return int(raw)


def _where(store: Any, values: dict[str, list[str]]) -> tuple[str, str, set[str]]:
    """The head pattern of the runs, the filters, and the values (:data:`_NEEDS`) the
    filters read."""
    head = _HEAD
    filters: list[str] = []
    needs: set[str] = set()
    if (name := _one(values, "workflow")) is not None:
        # the constant in the pattern: the planner starts from that workflow's runs
        head = f"?run provml:name {text(name)} . {_HEAD}"
    if (q := _one(values, "q")) is not None and q.strip():
        needs.add("workflow")
        filters.append(f"FILTER(CONTAINS(LCASE(STR(?workflow)), LCASE({text(q.strip())})))")
    if (user := _one(values, "user")) is not None:
        filters.append(f"?run prov:wasAssociatedWith/provml:name {text(user)} .")
    if (status := _one(values, "status")) is not None:
        if status == "running":
            needs.add("endedStatus")
            filters.append("FILTER(!BOUND(?endedStatus))")
        else:
            filters.append(f"?run provml:status {text(status)} .")
    for key, op in (("since", ">="), ("until", "<")):
        if (raw := _one(values, key)) is not None:
            filters.append(f"FILTER(?started {op} {moment(_time(key, raw))})")
    for raw in values.get("param", []):
        name, bounds = _range("param", raw, "?px")
        filters.append(_PARAM.format(name=text(name), bounds=bounds))
    for raw in values.get("metric", []):
        name, bounds = _range("metric", raw, "?mx")
        filters.append(_METRIC.format(name=text(name), bounds=bounds))
    if (data := _one(values, "used")) is not None:
        try:
            node = ref_iri(expand(store, data), data=True)
        except ValueError as exc:
            raise ValidationError(f"used: {exc}") from None
        filters.append(_USED.format(data=iri(node)))
    if "sort" in values:
        _order(values["sort"][0])  # checked before any query
    return head, "\n  ".join(filters), needs


def _time(key: str, raw: str) -> datetime:
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValidationError(f"{key}: not an ISO 8601 date-time: {raw[:100]!r}") from None


def _range(key: str, raw: str, var: str) -> tuple[str, str]:
    """``NAME:LOW..HIGH`` (either bound may be left out) → the name, and the FILTERs on
    ``var`` (numbers compared as numbers; a value that is not one matches no range)."""
    name, colon, span = raw.strip().rpartition(":")
    low, dots, high = span.partition("..")
    if not colon or not dots or not name.strip():
        raise ValidationError(
            f"{key}: {raw[:100]!r} is not NAME:LOW..HIGH (e.g. lr:0.01..0.1, accuracy:0.9..)"
        )
    bounds = []
    found: list[float] = []
    for part, op in ((low, ">="), (high, "<=")):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValidationError(
                f"{key}: {part[:40]!r} is not a number (in {raw[:100]!r})"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"{key}: a bound must be a finite number, got {part[:40]!r}")
        found.append(value)
        bounds.append(f"FILTER(isNumeric({var}) && {var} {op} {number(value)})")
    if not bounds:
        raise ValidationError(f"{key}: {raw[:100]!r} gives neither bound (NAME:LOW..HIGH)")
    if len(found) == 2 and found[0] > found[1]:
        raise ValidationError(f"{key}: the low bound is over the high one in {raw[:100]!r}")
    return name.strip(), " ".join(bounds)


def _order(sort: str) -> str:
    key = sort.strip()
    flip = key.startswith("-")
    spec = SORTS.get(key.lstrip("-"))
    if spec is None or key.count("-") > 1:
        raise ValidationError(
            f"sort must be one of {', '.join(SORTS)} (or -key: the other way), got {sort[:40]!r}"
        )
    expr, descending = spec
    if descending != flip:
        # runs without the value (still running: no duration) last either way
        return f"DESC(BOUND({expr})) DESC({expr}) DESC(?started) ?run"
    return f"DESC(BOUND({expr})) {expr} DESC(?started) ?run"


def _row(r: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"run": r["run"], "id": run_id(r["run"])}
    for key in ("workflow", "user", "host", "job", "started", "ended"):
        if key in r:
            out[key] = r[key]
    if (duration := seconds(r.get("started"), r.get("ended"))) is not None:
        out["duration"] = duration
    out["status"] = r.get("status", "running")
    return out


# one run


_ONE = """
SELECT ?run ?workflow ?user ?host ?job ?started ?ended ?status ?error WHERE {{
  VALUES ?run {{ {run} }}
  ?run provml:name ?workflow .
  {fields}
  OPTIONAL {{ ?run provml:error ?error }}
}} LIMIT 1
"""
_PROPS = "SELECT ?p ?o WHERE {{ {run} ?p ?o . FILTER(isLiteral(?o)) }}"
#: a run's tasks beyond what stage-resources says of them
_TASKS = """
SELECT ?task ?ended ?error ?parameters WHERE {{
  VALUES ?task {{ {tasks} }}
  OPTIONAL {{ ?task prov:endedAtTime ?ended }}
  OPTIONAL {{ ?task provml:error ?error }}
  OPTIONAL {{ ?task provml:parameters ?parameters }}
}}
"""
#: what each task of a run used and generated (its qualified uses and generations)
_IO = """
SELECT ?task ?how ?data ?role ?path ?sha256 ?model ?prediction ?evaluation ?value WHERE {{
  VALUES ?task {{ {tasks} }}
  {{ ?task prov:qualifiedUsage ?event . ?event prov:entity ?data . BIND("used" AS ?how) }}
  UNION
  {{ ?event prov:activity ?task . ?data prov:qualifiedGeneration ?event .
     BIND("generated" AS ?how) }}
  OPTIONAL {{ ?event prov:hadRole/provml:name ?role }}
  OPTIONAL {{ ?event provml:path ?path }}
  OPTIONAL {{ ?data provml:sha256 ?sha256 }}
  BIND(EXISTS {{ ?data a provml:Model }} AS ?model)
  BIND(EXISTS {{ ?data a provml:Prediction }} AS ?prediction)
  BIND(EXISTS {{ ?data a provml:ModelEvaluation }} AS ?evaluation)
  BIND(EXISTS {{ ?data prov:value ?v }} AS ?value)
}}
ORDER BY ?task ?how ?role
"""
#: the metrics logged on the run, its tasks and their sections (epochs …)
#: at most this many tasks and metric values on a run's page (a serving run may have
#: tens of thousands: their lineage pages them)
MAX_TASKS, MAX_METRICS = 1000, 20_000
#: the sections (epochs …) of a run's listed tasks
_SECTIONS = """
SELECT ?section ?task WHERE {{
  VALUES ?task {{ {tasks} }}
  ?section provml:partOf ?task .
}}
"""
#: the metrics logged by the run, its listed tasks and their sections (the executions
#: bound first: a UNION of the three is joined after it is evaluated on its own, i.e. with
#: every metric of the store, 21 s on 10,000 runs, measured)
_METRICS = """
SELECT ?execution ?name ?step ?index ?value ?time WHERE {{
  VALUES ?execution {{ {executions} }}
  ?m prov:wasGeneratedBy ?execution ;
     provml:name ?name ;
     prov:value ?value .
  FILTER EXISTS {{ ?m a provml:ModelEvaluation }}
  OPTIONAL {{ ?m provml:step ?step }}
  OPTIONAL {{ ?execution provml:index ?index }}
  OPTIONAL {{ ?m prov:generatedAtTime ?time }}
}}
ORDER BY ?name ?execution ?time
LIMIT {limit}
"""
_BY_PREFIX = """
SELECT ?run WHERE {{
  ?run a provml:WorkflowExecution .
  FILTER(STRSTARTS(STR(?run), {prefix}))
}} LIMIT 11
"""

#: a run's literal properties → the keys of ``environment`` (docs/mapping.md,
#: "Environment"); job and MPI facts go under ``job`` and ``mpi``
ENVIRONMENT = {
    "hostname": "host",
    "processId": "pid",
    "pythonVersion": "python",
    "platform": "platform",
    "operatingSystem": "os",
    "cpuCount": "cpuCount",
    "commandLine": "commandLine",
    "executable": "executable",
    "gitCommit": "gitCommit",
    "gitBranch": "gitBranch",
    "gitDirty": "gitDirty",
    "gitRemote": "gitRemote",
    "packagesSha256": "packagesSha256",
    "containerId": "containerId",
    "containerRuntime": "container",
}
JOB = {
    "batchSystem": "system",
    "jobId": "id",
    "jobStep": "step",
    "jobNodes": "nodes",
    "jobArrayId": "arrayId",
    "jobArrayTask": "arrayTask",
    "cluster": "cluster",
    "runKey": "runKey",
}
MPI = {"mpiRank": "rank", "mpiSize": "size"}
_PROVML = "https://provml.dev/ns#"


def resolve(store: Any, ref: str) -> str:
    """The IRI of the run ``ref`` names: its IRI, its UUID or a unique prefix of it."""
    raw = ref.strip()
    if not raw:
        raise ValidationError("give a run: its UUID, a unique prefix of it, or its IRI")
    if ":" in raw:
        try:
            candidate = ref_iri(raw, data=False)
        except ValueError as exc:
            raise ValidationError(f"run: {exc}") from None
        found = [candidate] if _is_run(store, candidate) else []
    else:
        if not re.fullmatch(r"[0-9a-fA-F-]{4,36}", raw):
            raise ValidationError(
                f"{raw[:80]!r} is not a run id: its UUID (at least 4 characters of it) or IRI"
            )
        whole = EXEC + raw.lower()
        if len(raw) == 36 and _is_run(store, whole):  # a whole UUID: no scan of the runs
            found = [whole]
        else:
            query = _BY_PREFIX.format(prefix=text(whole))
            found = [r["run"] for r in select(store, query)]
    if not found:
        raise NotFound(f"no workflow run {raw[:200]!r} (/api/v1/runs lists them)")
    if len(found) > 1:
        raise ValidationError(
            f"{raw!r} is ambiguous: {len(found[:10])}{' and more' if len(found) > 10 else ''} "
            "runs start with it; give more of the id",
            details=sorted(run_id(f) for f in found[:10]),
        )
    return found[0]


def _is_run(store: Any, node: str) -> bool:
    return bool(store.query(f"ASK {{ {iri(node)} a provml:WorkflowExecution }}"))


def run(store: Any, ref: str) -> dict[str, Any]:
    """The body of ``GET /api/v1/runs/<id>``: a run, its tasks, their DAG and metrics."""
    node = resolve(store, ref)
    term = iri(node)
    fields = _patterns(set(_ALL) - {"workflow", "duration"})
    (head,) = select(store, _ONE.format(run=term, fields=fields)) or [
        {"run": node, "status": "running"}
    ]
    out = _row(head)
    if "error" in head:
        out["error"] = head["error"]
    props = select(store, _PROPS.format(run=term))
    out["environment"] = environment(props)
    parameters = next((p["o"] for p in props if p["p"] == _PROVML + "parameters"), None)
    tasks, more_tasks = _tasks(store, node)
    used_by: dict[str, list[str]] = {}
    made_by: dict[str, list[str]] = {}
    for t in tasks:
        for d in t["used"]:
            used_by.setdefault(d["data"], []).append(t["execution"])
        for d in t["generated"]:
            made_by.setdefault(d["data"], []).append(t["execution"])
    edges = sorted(
        (
            {"from": src, "to": dst, "data": data}
            for data, makers in made_by.items()
            for src in makers
            for dst in used_by.get(data, [])
            if src != dst
        ),
        key=lambda e: (e["from"], e["to"], e["data"]),
    )
    return {
        "run": out,
        "parameters": _json(parameters) or {},
        "tasks": tasks,
        "moreTasks": more_tasks,
        "edges": edges,
        "metrics": _metrics(store, node, [t["execution"] for t in tasks]),
    }


def environment(props: list[dict[str, str]]) -> dict[str, Any]:
    """A run's environment from its literal properties (docs/mapping.md, "Environment")."""
    env: dict[str, Any] = {}
    job: dict[str, Any] = {}
    mpi: dict[str, Any] = {}
    for p in props:
        if not p["p"].startswith(_PROVML):
            continue
        name, value = p["p"][len(_PROVML) :], p["o"]
        if name in ENVIRONMENT:
            env[ENVIRONMENT[name]] = _scalar(name, value)
        elif name in JOB:
            job[JOB[name]] = value
        elif name in MPI:
            mpi[MPI[name]] = _scalar(name, value)
        elif name == "packages":
            env["packages"] = dict(
                line.partition("==")[::2] for line in value.splitlines() if line.strip()
            )
        elif name == "gpus":
            env["gpus"] = [line for line in value.splitlines() if line.strip()]
        elif name == "metadata":
            env["other"] = _json(value)
    if job:
        env["job"] = job
    if mpi:
        env["mpi"] = mpi
    return env


#: the environment's numbers and flags (the rest are texts)
_INTEGERS = ("processId", "cpuCount", "mpiRank", "mpiSize")


def _scalar(name: str, value: str) -> Any:
    if name == "gitDirty":
        return value == "true"
    if name in _INTEGERS and re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    return value


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _tasks(store: Any, node: str) -> tuple[list[dict[str, Any]], bool]:
    """The run's first :data:`MAX_TASKS` tasks in start order, and whether it has more."""
    timing = rows(store, "stage-resources", run=node, limit=str(MAX_TASKS + 1))
    more_tasks = len(timing) > MAX_TASKS
    timing = timing[:MAX_TASKS]
    if not timing:
        return [], False
    listed = iris(r["task"] for r in timing)
    extra = {r["task"]: r for r in select(store, _TASKS.format(tasks=listed))}
    io: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in select(store, _IO.format(tasks=listed)):
        kind = next(
            (k for k in ("model", "prediction", "evaluation", "value") if r.get(k) == "true"),
            "data",
        )
        item = {
            "data": r["data"],
            "sha256": r.get("sha256"),
            "role": r.get("role"),
            "path": r.get("path"),
            "kind": kind,
        }
        io.setdefault(r["task"], {"used": [], "generated": []})[r["how"]].append(item)
    tasks = []
    for r in timing:
        task = r["task"]
        more = extra.get(task, {})
        resources = {k: _number(r[k]) for k in ("cpuSeconds", "maxRssBytes") if k in r}
        tasks.append(
            {
                "execution": task,
                "id": run_id(task),
                "name": r.get("name"),
                "stage": r.get("stage"),
                "parent": node,
                "started": r.get("started"),
                "ended": more.get("ended"),
                "duration": seconds(r.get("started"), more.get("ended")),
                "status": r.get("status", "running"),
                "error": more.get("error"),
                "parameters": _json(more.get("parameters")) or {},
                "resources": resources,
                "used": io.get(task, {}).get("used", []),
                "generated": io.get(task, {}).get("generated", []),
            }
        )
    return tasks, more_tasks


def _number(value: str) -> float | int:
    number_ = float(value)
    return (
        int(number_)
        if number_.is_integer() and "." not in value and "e" not in value.lower()
        else number_
    )


def _metrics(store: Any, node: str, tasks: list[str]) -> list[dict[str, Any]]:
    owner: dict[str, str | None] = {node: None} | {t: t for t in tasks}
    sections: set[str] = set()
    if tasks:
        for r in select(store, _SECTIONS.format(tasks=iris(tasks))):
            owner[r["section"]] = r["task"]
            sections.add(r["section"])
    query = _METRICS.format(executions=iris(owner), limit=MAX_METRICS)
    out = []
    for r in select(store, query):
        step = r.get("step", r.get("index"))
        item: dict[str, Any] = {
            "execution": r["execution"],
            "task": owner.get(r["execution"]),
            "name": r["name"],
            "step": int(step) if step is not None else None,
            "value": _float(r["value"]),
            "time": r.get("time"),
        }
        if r["execution"] in sections:
            item["section"] = r["execution"]
        out.append(item)
    return out


def _float(value: str) -> float | str:
    """A metric's value; NaN and the infinities as their xsd:double texts (JSON has no
    number for them)."""
    try:
        number_ = float(value)
    except ValueError:
        return value
    return number_ if number_ - number_ == 0 else value
