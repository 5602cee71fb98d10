"""One workflow run of the graph → a Workflow Run RO-Crate (Provenance Run Crate profile).

Input: the quads of the export's ``run`` scope (:func:`provml.interop.export.collect`),
read here with SPARQL over an in-memory store. Output: the ``ro-crate-metadata.json``
document (:func:`write_metadata`), and :func:`write_crate` puts it in a directory or a zip
file. Data files are referenced, not copied: a file is a web-based data entity named by
provml's IRI of its content (``https://provml.dev/id/data/sha256/<hex>``) with its
``sha256``; where the run saw it is its ``alternateName``. docs/ro-crate.md has the
mapping.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
from pyoxigraph import Literal, NamedNode, Quad

from provml.core.errors import NotFound
from provml.core.vocab import PREFIXES, PROVML_NS, RDF_NS, XSD_NS
from provml.interop.rocrate.source import METADATA

CONTEXT: list[Any] = [
    "https://w3id.org/ro/crate/1.1/context",
    "https://w3id.org/ro/terms/workflow-run/context",
    {"provml": PROVML_NS},
]
PROFILES = {  # the profiles the crate conforms to: @id → (name, version)
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
STATUS = {
    "finished": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "running": "http://schema.org/ActiveActionStatus",
}
ENGINE = "https://provml.dev/#provml"
#: what a run called the data it used or made (provml:… of the usage or generation), kept
#: as provml:… of the File; its path as alternateName
USE_FIELDS = ("path", "name", "version", "split", "description", "framework",
              "frameworkVersion", "algorithm", "hostname")  # fmt: skip
#: where the run ran (provml:… of the workflow execution), kept as provml:… of its action
ENV_PROPERTIES = ("hostname", "processId", "pythonVersion", "platform", "commandLine")
FORMAL_PARAMETER = "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"
LANGUAGE = "https://provml.dev/#python"
#: provml classes a data node can have that the crate keeps, as ``additionalType``
DATA_KINDS = ("Model", "LearningData", "Prediction")

_PREFIX = "\n".join(f"PREFIX {k}: <{v}>" for k, v in PREFIXES.items())


def _json(term: Any) -> Any:
    """A literal as JSON: numbers as numbers, JSON literals parsed, the rest as text."""
    if not isinstance(term, Literal):
        return getattr(term, "value", str(term))
    dt = term.datatype.value
    if dt in (XSD_NS + "integer", XSD_NS + "int", XSD_NS + "long"):
        return int(term.value)
    if dt in (XSD_NS + "double", XSD_NS + "float", XSD_NS + "decimal"):
        value = float(term.value)
        return value if math.isfinite(value) else term.value  # NaN, INF as text
    if dt == XSD_NS + "boolean":
        return term.value == "true"
    if dt == RDF_NS + "JSON":
        return json.loads(term.value)
    return term.value


def _value(value: Any) -> dict[str, Any]:
    """A PropertyValue's ``value``: scalars as they are, the rest as JSON text."""
    if isinstance(value, str | int | float | bool):
        return {"value": value}
    return {"value": json.dumps(value, sort_keys=True), "encodingFormat": "application/json"}


def _time(term: Any) -> str | None:
    return term.value if isinstance(term, Literal) else None


class _Graph:
    def __init__(self, quads: Iterable[Quad]) -> None:
        self.store = ox.Store()
        self.store.extend(list(quads))

    def rows(self, sparql: str, **bound: NamedNode) -> list[dict[str, Any]]:
        if bound:
            names = " ".join(f"?{k}" for k in bound)
            values = " ".join(str(v) for v in bound.values())
            sparql = sparql.replace("WHERE {", f"WHERE {{ VALUES ({names}) {{ ({values}) }}", 1)
        result = self.store.query(f"{_PREFIX}\n{sparql}")
        variables = [v.value for v in result.variables]  # type: ignore[union-attr]
        return [
            {n: s[n] for n in variables if s[n] is not None}
            for s in result  # type: ignore[union-attr]
        ]


def _ref(ident: str) -> dict[str, str]:
    return {"@id": ident}


def _execution(g: _Graph, node: NamedNode) -> dict[str, Any]:
    rows = g.rows(
        "SELECT ?name ?start ?end ?status ?error ?stage ?plan ?planName WHERE { "
        "OPTIONAL { ?x provml:name ?name } OPTIONAL { ?x prov:startedAtTime ?start } "
        "OPTIONAL { ?x prov:endedAtTime ?end } OPTIONAL { ?x provml:status ?status } "
        "OPTIONAL { ?x provml:error ?error } OPTIONAL { ?x provml:stage ?stage } "
        "OPTIONAL { ?x prov:qualifiedAssociation/prov:hadPlan ?plan . "
        "           OPTIONAL { ?plan provml:name ?planName } } } LIMIT 1",
        x=node,
    )
    row = rows[0] if rows else {}
    action: dict[str, Any] = {"@id": node.value, "@type": "CreateAction"}
    if "name" in row:
        action["name"] = row["name"].value
    if _time(row.get("start")):
        action["startTime"] = _time(row["start"])
    if _time(row.get("end")):
        action["endTime"] = _time(row["end"])
    status = row["status"].value if "status" in row else ("finished" if "end" in row else None)
    if status in STATUS:
        action["actionStatus"] = _ref(STATUS[status])
    if "error" in row:
        action["error"] = row["error"].value
    if "stage" in row:
        action["provml:stage"] = row["stage"].value
    action["_plan"] = row.get("plan")
    return action


class _Crate:
    def __init__(self, g: _Graph, run: NamedNode) -> None:
        self.g = g
        self.run = run
        self.entities: dict[str, dict[str, Any]] = {}
        self.parts: list[str] = []  # data entities, for the root's hasPart

    def add(self, entity: dict[str, Any]) -> dict[str, Any]:
        kept = self.entities.setdefault(entity["@id"], entity)
        for k, v in entity.items():
            kept.setdefault(k, v)
        return kept

    def formal(self, attr: NamedNode, name: str, kind: str) -> dict[str, str]:
        self.add({"@id": attr.value, "@type": "FormalParameter", "name": name,
                  "additionalType": kind, "conformsTo": _ref(FORMAL_PARAMETER)})  # fmt: skip
        return _ref(attr.value)

    def params(self, node: NamedNode, tool: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for row in self.g.rows(
            "SELECT ?v ?attr ?name ?value WHERE { ?x prov:used ?v . ?v provml:valueOf ?attr ; "
            "provml:name ?name ; prov:value ?value } ORDER BY ?name",
            x=node,
        ):
            value = _json(row["value"])
            kind = "Text" if isinstance(value, str) else (
                "Boolean" if isinstance(value, bool) else
                "Integer" if isinstance(value, int) else
                "Float" if isinstance(value, float) else "Text")  # fmt: skip
            fp = self.formal(row["attr"], row["name"].value, kind)
            tool.setdefault("input", []).append(fp)
            self.add({"@id": row["v"].value, "@type": "PropertyValue", "name": row["name"].value,
                      **_value(value), "exampleOfWork": fp})  # fmt: skip
            out.append(_ref(row["v"].value))
        return out

    def data(self, node: NamedNode, role_attr: NamedNode | None, role: str, direction: str,
             tool: dict[str, Any], where: dict[str, Any]) -> dict[str, str]:  # fmt: skip
        rows = self.g.rows(
            "SELECT ?sha ?size ?value ?source ?license ?dname ?named WHERE { "
            "OPTIONAL { ?d provml:sha256 ?sha } OPTIONAL { ?d provml:sizeBytes ?size } "
            "OPTIONAL { ?d prov:value ?value } OPTIONAL { ?d provml:source ?source } "
            "OPTIONAL { ?d provml:license ?license } OPTIONAL { ?d provml:name ?dname } "
            # an importer's name for data it had no bytes of (MLflow's dataset, ProvLake's
            # reference): a SHA-256 of a description, not of the file: no sha256 claimed
            "BIND(EXISTS { { ?q prov:entity ?d } UNION { ?d prov:qualifiedGeneration ?q } "
            "?q provml:metadata ?m FILTER(CONTAINS(STR(?m), '\"sha256_of\":')) } AS ?named) "
            "} LIMIT 1",
            d=node,
        )
        row = rows[0] if rows else {}
        kinds = [r["t"].value.removeprefix(PROVML_NS) for r in self.g.rows(
            "SELECT ?t WHERE { ?d a ?t }", d=node) if r["t"].value.removeprefix(PROVML_NS)
            in DATA_KINDS]  # fmt: skip
        fp = None
        if role_attr is not None:
            fp = self.formal(role_attr, role, "File" if "value" not in row else "Text")
            tool.setdefault("input" if direction == "in" else "output", []).append(fp)
        if "value" in row:  # an inline value: a PropertyValue
            entity = {
                "@id": node.value,
                "@type": "PropertyValue",
                "name": role,
                **_value(_json(row["value"])),
            }
        else:
            entity = {
                "@id": node.value,
                "@type": "File",
                "name": where.get("name") or (row["dname"].value if "dname" in row else role),
                **{f"provml:{p}": v for p, v in where.items() if p != "path"},
            }
            if "sha" in row and row["named"].value != "true":
                entity["sha256"] = row["sha"].value
            if "size" in row:
                entity["contentSize"] = str(row["size"].value)
            if where.get("path"):
                entity["alternateName"] = where["path"]
            if node.value not in self.entities:
                self.parts.append(node.value)
        for key in ("source", "license"):
            if key in row:
                entity["provml:" + key] = row[key].value
        if kinds:
            entity["additionalType"] = [f"provml:{k}" for k in sorted(kinds)]
        kept = self.add(entity)
        if fp is not None:
            works = kept.setdefault("exampleOfWork", [])
            if fp not in works:
                works.append(fp)
        return _ref(node.value)

    def uses(self, node: NamedNode, tool: dict[str, Any], direction: str) -> list[dict[str, str]]:
        fields = " ".join(f"OPTIONAL {{ ?q provml:{p} ?{p} }}" for p in USE_FIELDS)
        if direction == "in":
            head = "?x prov:qualifiedUsage ?q . ?q prov:entity ?d ."
        else:
            head = "?d prov:qualifiedGeneration ?q . ?q prov:activity ?x ."
        text = (f"SELECT * WHERE {{ {head} OPTIONAL {{ ?q prov:hadRole ?attr . "
                f"?attr provml:name ?role }} {fields} }} ORDER BY ?role ?d")  # fmt: skip
        out = []
        for row in self.g.rows(text, x=node):
            role = row["role"].value if "role" in row else row["d"].value.rsplit("/", 1)[-1]
            where: dict[str, Any] = {p: row[p].value for p in USE_FIELDS if p in row}
            out.append(self.data(row["d"], row.get("attr"), role, direction, tool, where))
        return out

    def section(self, node: NamedNode) -> dict[str, str]:
        """A section (an epoch) of a task, where metrics were measured: not a step of its
        own in the crate, but kept so that a crate provml reads comes back with it."""
        if node.value not in self.entities:
            section = _execution(self.g, node)
            section.pop("_plan", None)
            section["@type"] = "provml:LearningStageSectionExecution"
            for row in self.g.rows("SELECT ?i WHERE { ?x provml:index ?i }", x=node):
                section["provml:index"] = int(row["i"].value)
            self.add(section)
        return _ref(node.value)

    def metrics(self, node: NamedNode) -> list[dict[str, str]]:
        out = []
        for row in self.g.rows(
            "SELECT ?m ?name ?value ?step ?time ?s WHERE { "
            "{ ?m prov:wasGeneratedBy ?x } UNION "
            "{ ?s provml:partOf ?x . ?m prov:wasGeneratedBy ?s } "
            "?m a provml:ModelEvaluation ; provml:name ?name ; prov:value ?value . "
            "OPTIONAL { ?m provml:step ?step } OPTIONAL { ?m prov:generatedAtTime ?time } } "
            "ORDER BY ?name ?time ?m",
            x=node,
        ):
            entity = {"@id": row["m"].value, "@type": "PropertyValue",
                      "name": row["name"].value, "value": _json(row["value"]),
                      "additionalType": "provml:ModelEvaluation"}  # fmt: skip
            if "step" in row:
                entity["provml:step"] = int(row["step"].value)
            if "s" in row:
                entity["provml:section"] = self.section(row["s"])
            if _time(row.get("time")):
                entity["provml:time"] = _time(row["time"])
            self.add(entity)
            out.append(_ref(row["m"].value))
        return out


def write_metadata(quads: Iterable[Quad], run: str, now: datetime | None = None) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` of workflow run ``run`` (its IRI) from ``quads``."""
    g = _Graph(quads)
    node = NamedNode(run)
    if not g.rows("SELECT ?x WHERE { ?x a provml:WorkflowExecution }", x=node):
        raise NotFound(f"no workflow run {run} in the graph")
    crate = _Crate(g, node)
    run_action = _execution(g, node)
    plan = run_action.pop("_plan") or NamedNode(f"{run}#workflow")
    wf_name = run_action.get("name", "workflow")
    workflow: dict[str, Any] = {
        "@id": plan.value,
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
        "name": wf_name,
        "conformsTo": _ref("https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"),
        "programmingLanguage": _ref(LANGUAGE),
        "hasPart": [], "step": [], "input": [], "output": [],
    }  # fmt: skip
    crate.parts.append(plan.value)
    crate.add(workflow)
    run_action["instrument"] = _ref(plan.value)
    for row in g.rows("SELECT DISTINCT ?u ?name WHERE { { ?x prov:wasAssociatedWith ?u } UNION "
                      "{ ?x prov:qualifiedAssociation/prov:agent ?u } "
                      "OPTIONAL { ?u provml:name ?name } }", x=node):  # fmt: skip
        crate.add({"@id": row["u"].value, "@type": "Person",
                   "name": row["name"].value if "name" in row else row["u"].value})  # fmt: skip
        run_action["agent"] = _ref(row["u"].value)
    for row in g.rows("SELECT ?p ?v WHERE { ?x ?p ?v }", x=node):
        name = row["p"].value.removeprefix(PROVML_NS)
        if name in ENV_PROPERTIES:
            run_action[f"provml:{name}"] = _json(row["v"])
        elif name == "metadata":  # JSON text: an object here would be read as a reference
            run_action["provml:metadata"] = row["v"].value
    run_action["object"] = crate.params(node, workflow)
    crate.add(run_action)

    tasks = g.rows(
        "SELECT ?t ?start WHERE { ?t provml:partOf ?x . "
        "FILTER NOT EXISTS { ?t a provml:LearningStageSectionExecution } "
        "OPTIONAL { ?t prov:startedAtTime ?start } } ORDER BY ?start ?t",
        x=node,
    )
    controls = []
    used_by_steps: list[dict[str, str]] = []
    made_by_steps: list[dict[str, str]] = []
    for row in tasks:
        t = row["t"]
        action = _execution(g, t)
        tplan = action.pop("_plan") or NamedNode(f"{t.value}#tool")
        tool = crate.add({"@id": tplan.value, "@type": "SoftwareApplication",
                          "name": action.get("name", tplan.value.rsplit("/", 1)[-1])})  # fmt: skip
        if _ref(tplan.value) not in workflow["hasPart"]:
            workflow["hasPart"].append(_ref(tplan.value))
            step = crate.add({"@id": f"{tplan.value}#step", "@type": "HowToStep",
                              "position": str(len(workflow["step"])),
                              "workExample": _ref(tplan.value)})  # fmt: skip
            workflow["step"].append(_ref(step["@id"]))
        action["instrument"] = _ref(tplan.value)
        if "agent" in run_action:
            action["agent"] = run_action["agent"]
        used = crate.uses(t, tool, "in")
        made = crate.uses(t, tool, "out")
        action["object"] = used + crate.params(t, tool)
        action["result"] = made + crate.metrics(t)
        used_by_steps += used
        made_by_steps += made
        crate.add(action)
        control = crate.add({"@id": f"{t.value}#control", "@type": "ControlAction",
                             "name": f"orchestrate {action.get('name', t.value)}",
                             "instrument": _ref(f"{tplan.value}#step"),
                             "object": _ref(t.value)})  # fmt: skip
        controls.append(_ref(control["@id"]))
    for tool_ref in workflow["hasPart"]:  # a tool's parameters once each
        tool = crate.entities[tool_ref["@id"]]
        for key in ("input", "output"):
            if key in tool:
                tool[key] = list({fp["@id"]: fp for fp in tool[key]}.values())
    files = {r["@id"] for r in used_by_steps + made_by_steps
             if crate.entities[r["@id"]]["@type"] == "File"}  # fmt: skip
    made_ids = {r["@id"] for r in made_by_steps}
    run_action["object"] += [_ref(i) for i in sorted({r["@id"] for r in used_by_steps} - made_ids)
                             if i in files]  # fmt: skip
    run_action["result"] = [_ref(i) for i in sorted(made_ids) if i in files]
    crate.add({"@id": ENGINE, "@type": "SoftwareApplication", "name": "provml",
               "url": "https://provml.dev/"})  # fmt: skip
    crate.add({"@id": LANGUAGE, "@type": "ComputerLanguage", "name": "Python",
               "url": "https://www.python.org/"})  # fmt: skip
    organize = {"@id": f"{run}#organize", "@type": "OrganizeAction", "name": "provml capture",
                "instrument": _ref(ENGINE), "object": controls, "result": _ref(run)}  # fmt: skip
    for key in ("startTime", "endTime"):
        if key in run_action:
            organize[key] = run_action[key]
    crate.add(organize)
    for pid, (name, version) in PROFILES.items():
        crate.add({"@id": pid, "@type": "CreativeWork", "name": name, "version": version})
    published = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    actions = [run, *(r["t"].value for r in tasks)]
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"Workflow run of {wf_name} ({run.rsplit('/', 1)[-1]})",
        "description": f"Provenance of the provml workflow run {run}, exported by provml. "
        "Data files are referenced by the SHA-256 of their content, not copied.",
        "datePublished": published,
        "conformsTo": [_ref(p) for p in PROFILES if "workflowhub" not in p],
        "mainEntity": _ref(plan.value),
        "hasPart": [_ref(p) for p in dict.fromkeys(crate.parts)],
        "mentions": [_ref(a) for a in [*actions, f"{run}#organize"]],
    }
    descriptor = {
        "@id": METADATA,
        "@type": "CreativeWork",
        "about": _ref("./"),
        "conformsTo": [_ref("https://w3id.org/ro/crate/1.1"),
                       _ref("https://w3id.org/workflowhub/workflow-ro-crate/1.0")],
    }  # fmt: skip
    for entity in crate.entities.values():
        for key in [k for k, v in entity.items() if v in ([], None)]:
            del entity[key]
    graph = [descriptor, root, *crate.entities.values()]
    return {"@context": CONTEXT, "@graph": graph}


def write_crate(metadata: dict[str, Any], target: str) -> str:
    """Write the crate: ``target`` ending in ``.zip`` as a zip file, else a directory
    (made if needed) holding ``ro-crate-metadata.json``. The path written."""
    data = json.dumps(metadata, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    if target.endswith(".zip"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA, data)
        with open(target, "wb") as f:
            f.write(buf.getvalue())
        return target
    os.makedirs(target, exist_ok=True)
    path = os.path.join(target, METADATA)
    with open(path, "wb") as f:
        f.write(data)
    return path


def crate_dir_name(run: str) -> str:
    """The default directory for a run's crate: ``provml-crate-<run uuid>``."""
    return "provml-crate-" + quote(run.rstrip("/").rsplit("/", 1)[-1], safe="")
