"""Printing SPARQL JSON results as a readable table."""

from __future__ import annotations

from typing import Any

from provml.core.ids import SHORT_FORMS
from provml.core.vocab import XSD_NS

#: (``prefix:``, namespace), in the order they are tried: the short forms ids read back
_SHORT = [(prefix + ":", base) for prefix, base in SHORT_FORMS.items()]


def shorten(iri: str) -> str:
    for prefix, base in _SHORT:
        if iri.startswith(base):
            return prefix + iri[len(base) :]
    return iri


def cell(term: dict[str, str] | None) -> str:
    if term is None:
        return ""
    value = term.get("value", "")
    if term.get("type") == "uri":
        return shorten(value)
    if term.get("type") == "bnode":
        return "_:" + value
    datatype = term.get("datatype", "")
    if datatype == XSD_NS + "dateTime":
        return value.replace("T", " ").rstrip("Z")[:23]
    return value


def _fit(value: str, width: int) -> str:
    """Cut a long cell in the middle: the end of a path or IRI says the most."""
    if len(value) <= width:
        return value
    head = (width - 1) // 3
    return value[:head] + "…" + value[len(value) - (width - 1 - head) :]


def render(
    results: dict[str, Any], *, max_width: int = 80, hide: frozenset[str] = frozenset()
) -> str:
    """A text table of a SPARQL JSON result (SELECT) or its boolean (ASK).

    ``hide``: columns to leave out (a named question's parameters, which every row echoes).
    """
    if "boolean" in results:
        return "yes" if results["boolean"] else "no"
    columns: list[str] = [c for c in results["head"]["vars"] if c not in hide]
    rows = [[cell(b.get(c)) for c in columns] for b in results["results"]["bindings"]]
    rows = [[_fit(v, max_width) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
