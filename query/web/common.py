"""What the browser's JSON bodies share: reading rows, writing terms into SPARQL, node
references, and the page URL of a node (docs/web.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pyoxigraph import Literal, NamedNode

from provml.core.errors import NotFound, ValidationError
from provml.core.hashprefix import expand
from provml.core.ids import ref_iri
from provml.core.vocab import ID_BASE, PROV_NS, PROVML_NS, XSD_NS

EXEC = ID_BASE + "exec/"
DATA = ID_BASE + "data/sha256/"
_UUIDISH = re.compile(r"[0-9a-fA-F-]{4,36}")


def select(store: Any, text: str) -> list[dict[str, str]]:
    """The rows of a SELECT as plain strings (absent values left out)."""
    result = store.query(text)
    names = [v.value for v in result.variables]
    return [
        {n: t.value for n, t in zip(names, row, strict=True) if t is not None} for row in result
    ]


def iri(value: str) -> str:
    """``value`` as an IRI term for a query (refused when it is not one)."""
    try:
        return str(NamedNode(value))
    except ValueError:
        raise ValidationError(f"{value[:200]!r} is not an IRI") from None


def iris(values: Iterable[str]) -> str:
    return " ".join(iri(v) for v in values)


def text(value: str) -> str:
    """``value`` as a string literal for a query (escaped by pyoxigraph)."""
    return str(Literal(value))


def number(value: float) -> str:
    return str(Literal(repr(float(value)), datatype=NamedNode(XSD_NS + "double")))


def moment(value: datetime) -> str:
    stamp = value.isoformat().replace("+00:00", "Z")
    return str(Literal(stamp, datatype=NamedNode(XSD_NS + "dateTime")))


def local(iri_text: str) -> str:
    """The last part of an IRI (after the last ``#`` or ``/``)."""
    cut = max(iri_text.rfind("#"), iri_text.rstrip("/").rfind("/"))
    return iri_text[cut + 1 :].rstrip("/") or iri_text


def relation_name(predicate: str) -> str:
    for ns in (PROV_NS, PROVML_NS):
        if predicate.startswith(ns):
            return predicate[len(ns) :]
    return predicate


def node_iri(store: Any, raw: str, what: str = "node") -> str:
    """The IRI a user means by ``raw`` (an IRI, a SHA-256 or a unique prefix of one, a
    short form, a run's UUID), which must name something in the graph."""
    raw = raw.strip()
    if not raw:
        raise ValidationError(f"give the {what}: an IRI, a SHA-256 or a unique prefix of one")
    if _UUIDISH.fullmatch(raw) and "-" in raw:
        value = EXEC + raw.lower()
    else:
        try:
            value = ref_iri(expand(store, raw), data=True)
        except ValueError as exc:
            raise ValidationError(f"{what}: {exc}") from None
    node = iri(value)
    if not bool(store.query(f"ASK {{ {{ {node} ?p ?o }} UNION {{ ?s ?p {node} }} }}")):
        raise NotFound(f"{what} {raw[:200]!r} names nothing in the graph")
    return value


def seconds(started: str | None, ended: str | None) -> float | None:
    """The seconds from ``started`` to ``ended`` (xsd:dateTime texts), None without both."""
    if not started or not ended:
        return None
    try:
        delta = _when(ended) - _when(started)
    except ValueError:
        return None
    return round(delta.total_seconds(), 6)


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_id(run: str) -> str:
    """A run's id: its UUID (the last part of its IRI)."""
    return run[len(EXEC) :] if run.startswith(EXEC) else local(run)


def url(node: str, type_: str, sha256: str | None = None) -> str:
    """The page of a node (docs/web.md): a run's, a model's, a dataset's, a prediction's,
    else its lineage."""
    if type_ == "run" and node.startswith(EXEC):
        return "/runs/" + quote(run_id(node), safe="")
    if type_ == "model" and sha256:
        return "/models/" + sha256
    if type_ == "prediction":
        return "/predictions/" + quote(node, safe="")
    if type_ == "data" and sha256:
        return "/datasets/" + sha256
    return "/lineage?node=" + quote(node, safe="")
