"""Search as the browser's box does it: the body of ``GET /api/v1/search`` (docs/web.md).

``q`` is tried as each thing a user may type: an IRI, a run's id (or the start of one), a
hash prefix, a workflow's name, a user's, the name of a task or of data, a path. Each
kind of match is one query with a ``LIMIT``; the text is written into it only as an
escaped literal.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from provml.core.errors import ValidationError
from provml.core.ids import ref_iri
from provml.core.vocab import ID_BASE
from query.web.common import EXEC, iri, local, run_id, select, text, url
from query.web.lineage import type_of

DEFAULT_LIMIT, MAX_LIMIT = 20, 200
#: the shortest hash prefix searched for (a prefix that short matches many: a list)
MIN_HASH = 6
_HEX = re.compile(rf"(?:sha256:)?([0-9a-fA-F]{{{MIN_HASH},64}})")
_RUN_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{0,27}")

#: a node's type (query.web.lineage) → its kind in a result
_KIND = {
    "model": "model",
    "prediction": "prediction",
    "run": "run",
    "task": "task",
    "section": "task",
    "person": "person",
    "activity": "activity",
    "agent": "agent",
    "entity": "entity",
    "": "entity",
}

_IRI = "SELECT ?n ?t WHERE {{ VALUES ?n {{ {node} }} ?n ?p ?o . BIND({type} AS ?t) }} LIMIT 1"
_RUNS = """
SELECT ?n ?workflow ?started WHERE {{
  ?n a provml:WorkflowExecution ; provml:name ?workflow .
  FILTER(STRSTARTS(STR(?n), {prefix}))
  OPTIONAL {{ ?n prov:startedAtTime ?started }}
}} LIMIT {limit}
"""
_HASH = """
SELECT DISTINCT ?n ?sha ?t WHERE {{
  ?n provml:sha256 ?sha .
  FILTER(STRSTARTS(?sha, {prefix}))
  BIND({type} AS ?t)
}} LIMIT {limit}
"""
_WORKFLOWS = """
SELECT ?workflow (COUNT(?run) AS ?runs) WHERE {{
  ?run a provml:WorkflowExecution ; provml:name ?workflow .
  FILTER(CONTAINS(LCASE(STR(?workflow)), {q}))
  FILTER(!STRSTARTS(STR(?run), {jobs}))
}} GROUP BY ?workflow ORDER BY ?workflow LIMIT {limit}
"""
_USERS = """
SELECT DISTINCT ?n ?name WHERE {{
  ?n a provml:Persona ; provml:name ?name .
  FILTER(CONTAINS(LCASE(STR(?name)), {q}))
}} ORDER BY ?name LIMIT {limit}
"""
#: tasks by name: the task of each workflow (its plan: one however often it ran)
_TASKS = """
SELECT ?plan ?name ?workflow WHERE {{
  ?flow provml:hasTransformation ?plan .
  ?plan provml:name ?name .
  FILTER(CONTAINS(LCASE(STR(?name)), {q}))
  ?flow provml:name ?workflow .
}} ORDER BY ?name ?workflow LIMIT {limit}
"""
#: data by what a run called it (its use or generation's name), or an imported node's label
_NAMED = """
SELECT DISTINCT ?n ?name ?t ?sha WHERE {{
  {{ ?event provml:name ?name . ?event prov:entity ?n }}
  UNION {{ ?event provml:name ?name . ?n prov:qualifiedGeneration ?event }}
  UNION {{ ?n <http://www.w3.org/2000/01/rdf-schema#label> ?name }}
  FILTER(CONTAINS(LCASE(STR(?name)), {q}))
  BIND({type} AS ?t)
  OPTIONAL {{ ?n provml:sha256 ?sha }}
}} LIMIT {limit}
"""
_PATHS = """
SELECT DISTINCT ?n ?path ?t ?sha WHERE {{
  ?event provml:path ?path .
  FILTER(CONTAINS(LCASE(STR(?path)), {q}))
  {{ ?event prov:entity ?n }} UNION {{ ?n prov:qualifiedGeneration ?event }}
  BIND({type} AS ?t)
  OPTIONAL {{ ?n provml:sha256 ?sha }}
}} LIMIT {limit}
"""


def search(store: Any, q: str | None, limit: Any = DEFAULT_LIMIT) -> dict[str, Any]:
    """The body of ``GET /api/v1/search``: at most ``limit`` nodes that ``q`` names."""
    q = (q or "").strip()
    if not q:
        raise ValidationError("give q: a name, a path, a hash prefix, a workflow, a user or an IRI")
    if len(q) > 500:
        raise ValidationError("q is too long (at most 500 characters)")
    raw = str(limit).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw[:40]!r}"
        )
    most = int(raw)
    found: dict[str, dict[str, Any]] = {}

    def add(
        node: str,
        kind: str,
        label: str,
        match: str,
        sha: str | None = None,
        link: str | None = None,
        **more: Any,
    ) -> None:
        if node not in found and len(found) < most:
            found[node] = {
                "id": node,
                "kind": kind,
                "label": label,
                "match": match,
                "sha256": sha,
                "url": link or url(node, _page_type(kind), sha),
                **more,
            }

    for step in (_by_iri, _by_run_id, _by_hash, _by_workflow, _by_user, _by_name, _by_path):
        if len(found) >= most:
            break
        step(store, q, most, add)
    return {"results": list(found.values())}


def _page_type(kind: str) -> str:
    return "data" if kind == "data" else kind


def _kind(type_: str) -> str:
    return _KIND.get(type_, "data")


def _by_iri(store: Any, q: str, most: int, add: Any) -> None:
    if "://" not in q and not q.startswith(("id:", "urn:")):
        return
    try:
        node = iri(ref_iri(q, data=False))
    except (ValueError, ValidationError):
        return
    for r in select(store, _IRI.format(node=node, type=type_of("?n"))):
        add(r["n"], _kind(r.get("t", "")), local(r["n"]), "iri")


def _by_run_id(store: Any, q: str, most: int, add: Any) -> None:
    if not _RUN_ID.fullmatch(q):
        return
    for r in select(store, _RUNS.format(prefix=text(EXEC + q.lower()), limit=most)):
        add(r["n"], "run", f"{r['workflow']} ({run_id(r['n'])})", "iri")


def _by_hash(store: Any, q: str, most: int, add: Any) -> None:
    match = _HEX.fullmatch(q)
    if match is None:
        return
    query = _HASH.format(prefix=text(match.group(1).lower()), type=type_of("?n"), limit=most)
    for r in select(store, query):
        add(r["n"], _kind(r.get("t", "")), r["sha"][:12], "hash", r["sha"])


def _by_workflow(store: Any, q: str, most: int, add: Any) -> None:
    jobs = text(ID_BASE + "run/")
    for r in select(store, _WORKFLOWS.format(q=text(q.lower()), jobs=jobs, limit=most)):
        name = r["workflow"]
        add(
            ID_BASE + "plan/" + quote(name, safe=""),
            "workflow",
            name,
            "workflow",
            link="/?workflow=" + quote(name, safe=""),
            runs=int(r["runs"]),
        )


def _by_user(store: Any, q: str, most: int, add: Any) -> None:
    for r in select(store, _USERS.format(q=text(q.lower()), limit=most)):
        add(r["n"], "person", r["name"], "user", link="/?user=" + quote(r["name"], safe=""))


def _by_name(store: Any, q: str, most: int, add: Any) -> None:
    for r in select(store, _TASKS.format(q=text(q.lower()), limit=most)):
        link = "/?workflow=" + quote(r["workflow"], safe="")
        add(r["plan"], "task", r["name"], "name", link=link, workflow=r["workflow"])
    for r in select(store, _NAMED.format(q=text(q.lower()), type=type_of("?n"), limit=most)):
        add(r["n"], _kind(r.get("t", "")), r["name"], "name", r.get("sha"))


def _by_path(store: Any, q: str, most: int, add: Any) -> None:
    for r in select(store, _PATHS.format(q=text(q.lower()), type=type_of("?n"), limit=most)):
        add(r["n"], _kind(r.get("t", "")), r["path"], "path", r.get("sha"))
