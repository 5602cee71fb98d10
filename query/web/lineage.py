"""The lineage of any node as the browser draws it: the bodies of ``GET /api/v1/lineage``
(:func:`lineage`) and ``GET /api/v1/lineage/fold`` (:func:`fold_page`), docs/web.md.

A view is walked level by level: one query per level counts the neighbours of the whole
frontier (``VALUES``), one lists those that are few, and only for a node with more than
``fold`` neighbours by one relation are they counted by type (``COUNT``, never listed)
and those of a type with too many become one folded node. ``up`` follows the relations
from a node to what it came from, ``down`` the same relations backwards, ``both`` does
each walk from the root on its own: a walk never turns round, so a view never connects
two nodes the graph does not (a person who ran two workflows is not a path between
them). Every edge is a triple of the graph, drawn as PROV draws it (from the later to the
earlier); a view stops at :data:`MAX_NODES` nodes (``truncated``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provml.core.errors import ValidationError
from provml.core.vocab import PROV_NS, PROVML_NS, RDFS_NS
from query.web.common import iri, iris, local, node_iri, relation_name, select, text, url

MAX_NODES = 2000
MAX_DEPTH = 10
DEFAULT_FOLD = 25
MAX_FOLD = 2000
MAX_FOLD_PAGE = 1000
DIRECTIONS = ("up", "down", "both")

#: the relations a walk follows, as local names → (subject's kind, object's kind): what
#: a node of no class is, by where it stands (None: the relation does not say)
RELATIONS: dict[str, tuple[str | None, str | None]] = {
    "used": ("activity", "entity"),
    "wasGeneratedBy": ("entity", "activity"),
    "wasDerivedFrom": ("entity", "entity"),
    "wasRevisionOf": ("entity", "entity"),
    "wasQuotedFrom": ("entity", "entity"),
    "hadPrimarySource": ("entity", "entity"),
    "specializationOf": ("entity", "entity"),
    "alternateOf": ("entity", "entity"),
    "hadMember": ("entity", "entity"),
    "wasInformedBy": ("activity", "activity"),
    "wasStartedBy": ("activity", "entity"),
    "wasEndedBy": ("activity", "entity"),
    "wasAssociatedWith": ("activity", "agent"),
    "wasAttributedTo": ("entity", "agent"),
    "actedOnBehalfOf": ("agent", "agent"),
    "wasInfluencedBy": (None, None),
    "partOf": ("activity", "activity"),
}
_PREDICATE = {name: (PROVML_NS if name == "partOf" else PROV_NS) + name for name in RELATIONS}

#: provml's type of a node, first match wins → its PROV kind ("" when nothing says)
_TYPES: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    # (type, kind, any of these classes, and it has a prov:value)
    ("model", "entity", (PROVML_NS + "Model",), False),
    ("prediction", "entity", (PROVML_NS + "Prediction",), False),
    ("evaluation", "entity", (PROVML_NS + "ModelEvaluation",), False),
    ("value", "entity", (PROVML_NS + "AttributeValue",), False),
    ("plan", "entity", (PROV_NS + "Plan",), False),
    ("run", "activity", (PROVML_NS + "WorkflowExecution",), False),
    ("section", "activity", (PROVML_NS + "LearningStageSectionExecution",), False),
    ("task", "activity", (PROVML_NS + "DataTransformationExecution",), False),
    ("person", "agent", (PROVML_NS + "Persona", PROV_NS + "Person"), False),
    ("value", "entity", (PROVML_NS + "Data",), True),
    ("data", "entity", (PROVML_NS + "Data",), False),
    ("activity", "activity", (PROV_NS + "Activity",), False),
    ("agent", "agent", (PROV_NS + "Agent",), False),
    ("entity", "entity", (PROV_NS + "Entity",), False),
)
KIND = {name: kind for name, kind, _, _ in _TYPES}


def type_of(var: str) -> str:
    """The SPARQL expression of the type (:data:`_TYPES`) of the node in ``var``, by
    asking for each class in turn (for a few nodes: search results)."""
    return _type(var, lambda c: f"EXISTS {{ {var} a <{c}> }}")


def _type_by_classes(var: str) -> str:
    """The same from ``?classes``, the node's classes as one string (" a b … "): one read
    of its classes instead of a question per class (48,000 nodes: 6 s → ms)."""
    return _type(var, lambda c: f'CONTAINS(?classes, " {c} ")')


def _type(var: str, has: Callable[[str], str]) -> str:
    """The nested IF of :data:`_TYPES`, first match wins, ``has(class)`` testing a class."""
    expr = '""'
    for name, _, classes, valued in reversed(_TYPES):
        test = " || ".join(has(c) for c in classes)
        if valued:
            test = f"({test}) && EXISTS {{ {var} prov:value ?anyValue }}"
        expr = f'IF({test}, "{name}", {expr})'
    return expr


def _braced(text_: str) -> str:
    """``text_`` as it stays through ``str.format``."""
    return text_.replace("{", "{{").replace("}", "}}")


#: the neighbours (``?y``) of the pairs (``?x ?p``) with their classes and type (``?t``)
_TYPED = (
    """{{ SELECT ?x ?p ?y
      (CONCAT(" ", GROUP_CONCAT(DISTINCT STR(?c); separator=" "), " ") AS ?classes) WHERE {{
    VALUES (?x ?p) {{ {pairs} }}
    {pattern} FILTER(isIRI(?y))
    OPTIONAL {{ ?y a ?c }}
  }} GROUP BY ?x ?p ?y }}
  BIND("""
    + _braced(_type_by_classes("?y"))
    + """ AS ?t)"""
)


def _pattern(up: bool) -> str:
    return "?x ?p ?y ." if up else "?y ?p ?x ."


@dataclass
class View:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    truncated: bool = False

    def add(self, node: str, hint: str | None) -> bool:
        """``node`` in the view (``hint``: its kind by the relation that reached it);
        False when the view is full."""
        if node in self.nodes:
            return True
        if len(self.nodes) >= MAX_NODES:
            self.truncated = True
            return False
        self.nodes[node] = {"id": node, "hint": hint}
        return True


def lineage(
    store: Any, node: str, direction: str = "both", depth: Any = 2, fold: Any = DEFAULT_FOLD
) -> dict[str, Any]:
    """The body of ``GET /api/v1/lineage``: the view of ``node`` (an IRI, a SHA-256 or
    a unique prefix of one, a run's UUID) ``depth`` levels ``direction``."""
    if direction not in DIRECTIONS:
        raise ValidationError(f"direction must be up, down or both, got {str(direction)[:40]!r}")
    levels = _whole("depth", depth, 1, MAX_DEPTH)
    most = _whole("fold", fold, 1, MAX_FOLD)
    root = node_iri(store, node)
    view = View()
    view.add(root, None)
    for up in (True, False):
        if direction in ("both", "up" if up else "down"):
            _walk(store, view, root, up, levels, most)
    nodes = _describe(store, view)
    edges = [{"source": s, "target": t, "relation": r} for s, t, r in sorted(view.edges)]
    return {"root": root, "nodes": nodes, "edges": edges, "truncated": view.truncated}


def _whole(name: str, raw: Any, low: int, high: int) -> int:
    value = str(raw).strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValidationError(
            f"{name} must be a whole number from {low} to {high}, got {value[:40]!r}"
        )
    return int(value)


#: how many neighbours each node of the frontier has by each relation: only to choose
#: which to list and which to count by type (those count IRIs alone, as they list them);
#: the (node, relation) pairs bound together, and no test of each neighbour's term, make
#: it 46 ms for 48,000 neighbours instead of 800 (measured)
_COUNT = """
SELECT ?x ?p (COUNT(?y) AS ?n) WHERE {{
  {values}
  {pattern}
}} GROUP BY ?x ?p
"""
#: up to this many frontier nodes are bound as (node, relation) pairs; a wider frontier
#: (fewer neighbours each, usually) as two lists, to keep the query's text small
PAIRED = 50
_LIST = """
SELECT DISTINCT ?x ?p ?y WHERE {{
  VALUES (?x ?p) {{ {pairs} }}
  {pattern} FILTER(isIRI(?y))
}}
"""
_BY_TYPE = (
    """
SELECT ?x ?p ?t (COUNT(?y) AS ?n) WHERE {{
  """
    + _TYPED
    + """
}} GROUP BY ?x ?p ?t
"""
)
_LIST_TYPED = (
    """
SELECT ?x ?p ?y WHERE {{
  """
    + _TYPED
    + """
  VALUES (?x ?p ?t) {{ {triples} }}
}}
"""
)


def _walk(store: Any, view: View, root: str, up: bool, levels: int, most: int) -> None:
    """Add to ``view`` the nodes ``levels`` steps from ``root``, one way."""
    frontier, seen = [root], {root}
    relations = [iri(p) for p in _PREDICATE.values()]
    pattern = _pattern(up)
    for _ in range(levels):
        if not frontier or view.truncated:
            return
        if len(frontier) <= PAIRED:
            pairs = " ".join(f"({iri(x)} {p})" for x in frontier for p in relations)
            values = f"VALUES (?x ?p) {{ {pairs} }}"
        else:
            values = f"VALUES ?x {{ {iris(frontier)} }} VALUES ?p {{ {' '.join(relations)} }}"
        counts = select(store, _COUNT.format(values=values, pattern=pattern))
        small = [(c["x"], c["p"]) for c in counts if int(c["n"]) <= most]
        big = [(c["x"], c["p"]) for c in counts if int(c["n"]) > most]
        found: list[tuple[str, str, str]] = []
        if small:
            pairs = " ".join(f"({iri(x)} {iri(p)})" for x, p in small)
            found += [
                (r["x"], r["p"], r["y"])
                for r in select(store, _LIST.format(pairs=pairs, pattern=pattern))
            ]
        if big:
            found += _folded(store, view, big, up, most)
        following: list[str] = []
        for x, p, y in sorted(found):
            relation = relation_name(p)
            kinds = RELATIONS.get(relation, (None, None))
            if not view.add(y, kinds[1] if up else kinds[0]):
                continue
            view.edges.add((x, y, relation) if up else (y, x, relation))
            if y not in seen:
                seen.add(y)
                following.append(y)
        frontier = following


def _folded(
    store: Any, view: View, big: list[tuple[str, str]], up: bool, most: int
) -> list[tuple[str, str, str]]:
    """The neighbours of nodes with many: those of a type with few listed, the rest
    folded into one node per node, relation and type."""
    pairs = " ".join(f"({iri(x)} {iri(p)})" for x, p in big)
    pattern = _pattern(up)
    typed = select(store, _BY_TYPE.format(pairs=pairs, pattern=pattern))
    listed = []
    for r in typed:
        x, relation, type_, count = r["x"], relation_name(r["p"]), r["t"], int(r["n"])
        if count <= most:
            listed.append(f"({iri(x)} {iri(r['p'])} {text(type_)})")
            continue
        way = "up" if up else "down"
        fold_id = f"fold:{x}:{relation}:{type_ or 'node'}"
        kinds = RELATIONS.get(relation, (None, None))
        if not view.add(fold_id, kinds[1] if up else kinds[0]):
            continue
        view.nodes[fold_id].update(
            count=count,
            type=type_,
            fold={"node": x, "relation": relation, "type": type_, "direction": way},
        )
        view.edges.add((x, fold_id, relation) if up else (fold_id, x, relation))
    if not listed:
        return []
    rows = select(store, _LIST_TYPED.format(pairs=pairs, triples=" ".join(listed), pattern=pattern))
    return [(r["x"], r["p"], r["y"]) for r in rows]


#: the nodes' types (as the folds count them)
_NODE_TYPES = (
    """
SELECT ?n ?t WHERE {{
  {{ SELECT ?n (CONCAT(" ", GROUP_CONCAT(DISTINCT STR(?c); separator=" "), " ") AS ?classes)
     WHERE {{ VALUES ?n {{ {nodes} }} OPTIONAL {{ ?n a ?c }} }} GROUP BY ?n }}
  BIND("""
    + _braced(_type_by_classes("?n"))
    + """ AS ?t)
}}
"""
)
_DETAILS = """
SELECT ?n (SAMPLE(?name0) AS ?name) (SAMPLE(?sha0) AS ?sha256) (SAMPLE(?label0) AS ?label)
       (SAMPLE(?value0) AS ?value) WHERE {{
  VALUES ?n {{ {nodes} }}
  OPTIONAL {{ ?n provml:name ?name0 }}
  OPTIONAL {{ ?n provml:sha256 ?sha0 }}
  OPTIONAL {{ ?n <{rdfs}label> ?label0 }}
  OPTIONAL {{ ?n prov:value ?value0 }}
}} GROUP BY ?n
"""
#: where a piece of data was (and what a run called it), one of them: its label
_PLACES = """
SELECT ?n (SAMPLE(?name0) AS ?name) (SAMPLE(?path0) AS ?path) (SAMPLE(?role0) AS ?role)
WHERE {{
  VALUES ?n {{ {nodes} }}
  {event}
  OPTIONAL {{ ?event provml:name ?name0 }}
  OPTIONAL {{ ?event provml:path ?path0 }}
  OPTIONAL {{ ?event prov:hadRole/provml:name ?role0 }}
}} GROUP BY ?n
"""


#: the types whose label may come from where they were used or generated
_PLACED = ("data", "model", "prediction", "value", "entity", "")


def _describe(store: Any, view: View) -> list[dict[str, Any]]:
    """The view's nodes with their kind, type, label, hash and page."""
    real = [n for n in view.nodes if not n.startswith("fold:")]
    facts: dict[str, dict[str, str]] = {}
    places: dict[str, dict[str, str]] = {}
    for start in range(0, len(real), 500):
        chunk = iris(real[start : start + 500])
        for r in select(store, _DETAILS.format(nodes=chunk, rdfs=RDFS_NS)):
            facts[r["n"]] = r
        for r in select(store, _NODE_TYPES.format(nodes=chunk)):
            facts.setdefault(r["n"], {})["t"] = r.get("t", "")
        wanted = [n for n in real[start : start + 500] if facts.get(n, {}).get("t") in _PLACED]
        if wanted:
            # where it was made, else where it was read (a model read by 48,000 tasks:
            # 2 s to read every use, measured; its one generation, ms)
            made = "?n prov:qualifiedGeneration ?event ."
            for r in select(store, _PLACES.format(nodes=iris(wanted), event=made)):
                places[r["n"]] = r
            if unmade := [n for n in wanted if n not in places]:
                read = "?event prov:entity ?n ."
                for r in select(store, _PLACES.format(nodes=iris(unmade), event=read)):
                    places[r["n"]] = r
    out = []
    for node, item in view.nodes.items():
        hint = item.pop("hint")
        if "fold" in item:
            type_ = item["type"] or hint or "entity"
            item.update(
                type=type_,
                kind=KIND.get(type_, hint or "entity"),
                label=f"{item['count']:,} {_plural(type_)}",
            )
            out.append(
                {
                    "id": node,
                    "kind": item["kind"],
                    "type": type_,
                    "label": item["label"],
                    "count": item["count"],
                    "fold": item["fold"],
                }
            )
            continue
        f = facts.get(node, {})
        type_ = f.get("t") or hint or "entity"
        kind = KIND.get(type_, hint or "entity")
        sha = f.get("sha256")
        out.append(
            {
                "id": node,
                "kind": kind,
                "type": type_,
                "label": _label(node, type_, f, places.get(node, {})),
                "sha256": sha,
                "url": url(node, type_, sha),
            }
        )
    return out


def _plural(type_: str) -> str:
    return {
        "data": "data",
        "evaluation": "evaluations",
        "person": "people",
        "activity": "activities",
        "entity": "entities",
    }.get(type_, type_ + "s")


def _label(node: str, type_: str, f: dict[str, str], place: dict[str, str]) -> str:
    name, value = f.get("name"), f.get("value")
    if name and value is not None and type_ in ("value", "evaluation"):
        return _short(f"{name} = {value}")
    if name:
        return _short(name)
    if f.get("label"):
        return _short(f["label"])
    if place.get("name"):
        return _short(place["name"])
    if place.get("path"):
        return _short(place["path"].rstrip("/").rsplit("/", 1)[-1] or place["path"])
    if place.get("role"):
        return _short(place["role"] if value is None else f"{place['role']} = {value}")
    if value is not None:
        return _short(value)
    if f.get("sha256"):
        return f["sha256"][:12]
    return _short(local(node))


def _short(value: str, most: int = 80) -> str:
    return value if len(value) <= most else value[: most - 1] + "…"


#: a page of a fold's nodes, in the store's own order (no ORDER BY: the page streams,
#: typing only the rows up to it; sorting 48,000 typed neighbours took 9 s, measured)
_PAGE = (
    """
SELECT ?y WHERE {{
  VALUES (?x ?p) {{ {pairs} }}
  {pattern} FILTER(isIRI(?y))
  FILTER("""
    + _braced(type_of("?y"))
    + """ = {type})
}} LIMIT {limit} OFFSET {offset}
"""
)


def fold_page(
    store: Any,
    node: str,
    relation: str,
    type: str,
    direction: str,
    offset: Any = 0,
    limit: Any = 100,
) -> dict[str, Any]:
    """The body of ``GET /api/v1/lineage/fold``: a page of the nodes one folded node
    stands for (the neighbours of ``node`` by ``relation`` of ``type``, ``direction``
    as the view walked), with their edges to ``node``."""
    if relation not in RELATIONS:
        raise ValidationError(
            f"relation must be one of {', '.join(RELATIONS)}, got {relation[:60]!r}"
        )
    if direction not in ("up", "down"):
        raise ValidationError(f"direction must be up or down, got {direction[:40]!r}")
    if type not in KIND and type != "":
        raise ValidationError(f"type must be one of {', '.join(sorted(KIND))}, got {type[:40]!r}")
    start = _whole("offset", offset, 0, 10**12)
    size = _whole("limit", limit, 1, MAX_FOLD_PAGE)
    root = node_iri(store, node)
    up = direction == "up"
    rows = select(
        store,
        _PAGE.format(
            pairs=f"({iri(root)} {iri(_PREDICATE[relation])})",
            type=text(type),
            pattern=_pattern(up),
            limit=size + 1,
            offset=start,
        ),
    )
    view = View()
    kinds = RELATIONS[relation]
    for r in rows[:size]:
        view.add(r["y"], kinds[1] if up else kinds[0])
        view.edges.add((root, r["y"], relation) if up else (r["y"], root, relation))
    edges = [{"source": s, "target": t, "relation": rel} for s, t, rel in sorted(view.edges)]
    return {
        "nodes": _describe(store, view),
        "edges": edges,
        "offset": start,
        "limit": size,
        "more": len(rows) > size,
    }
