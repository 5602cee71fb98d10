"""Named lineage questions: SPARQL files under ``query/queries/`` with declared parameters.

A file starts with comment lines::

    # title: Which data trained a model?
    # param: model iri  The model (its IRI, or a SHA-256 of its file)

Parameters are validated and turned into RDF terms (pyoxigraph ``NamedNode`` and
``Literal``), then bound by a ``VALUES`` block at the head of the query's WHERE clause
(or wherever the query has a ``# @bind`` line),
written from the terms' own N-Triples serialisation (an IRI that would need escaping is
refused, a literal is escaped by pyoxigraph): a parameter can never change the query's
structure. A ``VALUES`` block rather than pyoxigraph's ``substitutions``: the query
planner starts from it, measured 10–2000× faster on lineage paths (bench/query.py).

Every question also takes ``limit`` and ``offset`` (:data:`PAGING`): a page of its rows,
in the question's own order (``LIMIT``/``OFFSET`` after the query's solution modifiers).

A query may also write a parameter as ``$name`` (in SPARQL the same variable as
``?name``, so the file stays valid as it is): there the term itself is written, from the
same N-Triples form. pyoxigraph cuts rows early with a constant in a FILTER but not with a
VALUES-bound variable: models-in-window took 5 s with ``?from``, 0.2 s with ``$from``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any

from pyoxigraph import Literal, NamedNode, Variable

from provml.core import lineage_index
from provml.core.errors import NotFound, ValidationError
from provml.core.ids import ref_iri
from provml.core.queryable import Queryable
from provml.core.vocab import XSD_NS

_WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)
#: a comment line a query puts where the VALUES block goes, in each group that needs it:
#: pyoxigraph evaluates a subquery before the outer bindings reach it, so a question
#: that aggregates one run's values binds the run inside its subqueries
BIND_MARKER = "# @bind"


#: parameters every question takes, besides its own: a page of the rows
PAGING = ("limit", "offset")
#: the most rows one page may ask for
MAX_LIMIT = 100_000


@dataclass
class Param:
    name: str
    kind: str  # iri | data (an IRI or a SHA-256) | string | datetime
    help: str


@dataclass
class Question:
    name: str
    title: str
    sparql: str
    params: list[Param] = field(default_factory=list)
    #: over the lineage index (``queries/indexed/``): which links its source must be raw
    #: over for it to answer (``# index:`` derived | any), and that version of this one
    index: str | None = None
    indexed: Question | None = None

    def bind(self, values: dict[str, str]) -> dict[Variable, Any]:
        unknown = set(values) - {p.name for p in self.params} - set(PAGING)
        if unknown:
            known = [p.name for p in self.params] + list(PAGING)
            raise ValidationError(
                f"{self.name}: unknown parameters {sorted(unknown)}; it takes {', '.join(known)}"
            )
        bound: dict[Variable, Any] = {}
        for p in self.params:
            if p.name not in values:
                raise ValidationError(f"{self.name}: parameter {p.name!r} is required ({p.help})")
            bound[Variable(p.name)] = bind_term(p, values[p.name])
        return bound

    def text(self, values: dict[str, str]) -> str:
        """The query with its parameters bound and its page cut (module docstring)."""
        limit, offset = page(values)
        paged = ("" if limit is None else f"\nLIMIT {limit}") + (
            f"\nOFFSET {offset}" if offset else ""
        )
        return self._bound(values) + paged

    def _bound(self, values: dict[str, str]) -> str:
        bound = self.bind(values)
        if not bound:
            return self.sparql
        # "$name": the term itself (module docstring), all in one pass, so a term written
        # in never has another parameter's "$name" replaced inside it
        inline = {var.value: str(term) for var, term in bound.items()}
        names_re = "|".join(re.escape(name) for name in inline)
        sparql = re.sub(rf"\$({names_re})\b", lambda m: inline[m.group(1)], self.sparql)
        names = " ".join(f"?{v.value}" for v in bound)
        terms = " ".join(str(t) for t in bound.values())
        block = f" VALUES ({names}) {{ ({terms}) }}"
        if BIND_MARKER in sparql:
            return sparql.replace(BIND_MARKER, block)
        match = _WHERE.search(sparql)
        if match is None:  # every question file has a WHERE clause; a test checks it
            raise ValidationError(f"{self.name}: no WHERE clause to bind parameters in")
        return sparql[: match.end()] + block + sparql[match.end() :]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": [{"name": p.name, "kind": p.kind, "help": p.help} for p in self.params],
            "paging": list(PAGING),
        }


def page(values: dict[str, str]) -> tuple[int | None, int]:
    """``limit`` (None: every row) and ``offset`` of ``values``, checked."""
    limit = _count(values, "limit", 1, MAX_LIMIT) if "limit" in values else None
    offset = _count(values, "offset", 0, None) if "offset" in values else 0
    return limit, offset


def _count(values: dict[str, str], name: str, low: int, high: int | None) -> int:
    raw = values[name].strip()
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        upto = f" up to {high:,}" if high is not None else ""
        raise ValidationError(f"{name} must be a whole number from {low}{upto}, got {raw[:40]!r}")
    return int(raw)


def bind_term(p: Param, raw: str) -> NamedNode | Literal:
    raw = raw.strip()
    if p.kind == "string":
        return Literal(raw)
    if p.kind == "datetime":
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            # year 1 at +01:00 is before year 1 in UTC: OverflowError
            text = when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        except (ValueError, OverflowError):
            raise ValidationError(
                f"parameter {p.name!r}: not an ISO 8601 date-time (UTC years 1-9999): {raw[:100]!r}"
            ) from None
        return Literal(text, datatype=NamedNode(XSD_NS + "dateTime"))
    try:
        return NamedNode(ref_iri(raw, data=p.kind == "data"))
    except ValueError as exc:
        raise ValidationError(f"parameter {p.name!r}: {exc}") from None


#: query dialects with their own versions of some questions (``queries/<dialect>/``)
DIALECTS = ("virtuoso",)


@cache
def questions(dialect: str | None = None) -> dict[str, Question]:
    """Every question, by name; with a dialect, its own versions where it has them."""
    root = resources.files("query").joinpath("queries")
    found: dict[str, Question] = {}
    folders = [root] + ([root.joinpath(dialect)] if dialect in DIALECTS else [])
    for folder in folders:
        for entry in sorted(folder.iterdir(), key=str):
            if entry.name.endswith(".rq"):
                q = _parse(entry.name[:-3], entry.read_text("utf-8"))
                found[q.name] = q
    if dialect not in DIALECTS:  # a dialect's own walks do not read the index
        _attach_indexed(found)
    return found


def _attach_indexed(found: dict[str, Question]) -> None:
    folder = resources.files("query").joinpath("queries").joinpath("indexed")
    for entry in sorted(folder.iterdir(), key=str):
        if entry.name.endswith(".rq"):
            alt = _parse(entry.name[:-3], entry.read_text("utf-8"))
            base = found[alt.name]
            if alt.index not in ("derived", "any") or alt.params != base.params:
                raise ValueError(
                    f"queries/indexed/{entry.name}: needs '# index: derived|any' "
                    "and the parameters of the question it stands for"
                )
            base.indexed = alt


def chosen(store: Queryable, question: Question, values: dict[str, str]) -> Question:
    """``question``'s version over the lineage index when it may answer for ``values``
    (the index is complete and the source raw: :func:`provml.core.lineage_index.guard`),
    else ``question`` itself; the same rows either way, the first without a walk."""
    alt = question.indexed
    if alt is None or alt.index is None or not getattr(store, "keeps_lineage_index", False):
        return question
    bound = alt.bind({k: v for k, v in values.items() if k not in PAGING})
    names = " ".join(f"?{v.value}" for v in bound)
    terms = " ".join(str(t) for t in bound.values())
    ask = f"ASK {{ VALUES ({names}) {{ ({terms}) }} {lineage_index.guard(alt.index)} }}"
    return alt if bool(store.query(ask)) else question


def get(name: str, dialect: str | None = None) -> Question:
    q = questions(dialect).get(name)
    if q is None:
        raise NotFound(f"no question named {name!r}; known: {sorted(questions())}")
    return q


def _parse(name: str, text: str) -> Question:
    title, params = name, []
    index: str | None = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        if key == "title":
            title = value.strip()
        elif key == "index":
            index = value.strip()
        elif key == "param":
            pname, kind, *rest = value.split(maxsplit=2)
            params.append(Param(pname, kind, rest[0] if rest else ""))
    return Question(name, title, text, params, index)
