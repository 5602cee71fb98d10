"""Prefixes for exported documents: PROV-N, PROV-JSON and PROV-XML name every IRI by a
qualified name, so an export declares a namespace for each IRI it holds — the ones
provml and the imported documents declared, else one per imported document's base and
one per web site, never one per path."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pyoxigraph import NamedNode, Quad

from provml.core.vocab import PREFIXES
from provml.interop.terms import DOCUMENT_BASE

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
#: a prefix name every syntax takes (Turtle's PN_PREFIX allows more)
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,40}")


def prefixes_for(
    quads: Iterable[Quad], declared: dict[str, str] | None, made: bool = True
) -> dict[str, str]:
    """A prefix for every namespace the quads use: provml's own names and those the
    documents declared, for the IRIs they cover; else (``made``) one per imported
    document's own base (``doc``, ``doc2`` …) and one per web site, named after it
    (``taverna`` for ``http://ns.taverna.org.uk/``) — ``prov`` names everything by
    qualified names. RDF syntaxes need none, and get only the known ones."""
    known = {iri: name for name, iri in (declared or {}).items() if _PREFIX.fullmatch(name)}
    known |= {iri: name for name, iri in PREFIXES.items()}
    # longest first: an IRI takes the most specific namespace that leaves it a local part
    spaces = sorted(known, key=len, reverse=True)
    reserved = set(known.values())
    out: dict[str, str] = {}
    for q in quads:
        for t in (q.subject, q.predicate, q.object, q.graph_name):
            if not isinstance(t, NamedNode):
                continue
            ns = next((n for n in spaces if t.value.startswith(n) and t.value != n), None)
            name = known.get(ns or "")
            if ns is None and made:
                ns, name = _made_namespace(t.value)
            if ns is None or name is None or ns in out.values():
                continue
            base, n = name, 1
            # a made name never takes a known one (provml: stays provml's own)
            while name in out or (known.get(ns) != name and name in reserved):
                n += 1
                name = f"{base}{n}"
            out[name] = ns
    return out


_DOCUMENT_NS = re.compile(re.escape(DOCUMENT_BASE) + r"[0-9a-f]{64}/")
#: parts of host names that say nothing of the site
_HOST_WORDS = {"www", "com", "org", "net", "edu", "gov", "ac", "co", "uk", "io", "dev", "de"}


def _made_namespace(iri: str) -> tuple[str | None, str | None]:
    """A namespace and its name for an IRI no declared namespace covers: an imported
    document's own base, else the IRI's site (scheme and host), else the IRI up to its
    last ``/``, ``#`` or ``:``."""
    found = _DOCUMENT_NS.match(iri)
    if found and iri != found[0]:
        return found[0], "doc"
    parts = urlsplit(iri)
    if parts.netloc and parts.path not in ("", "/"):
        words = [w for w in parts.hostname.split(".") if w not in _HOST_WORDS] if (
            parts.hostname) else []  # fmt: skip
        word = next((w for w in reversed(words) if _NAME.fullmatch(w)), "site")
        return f"{parts.scheme}://{parts.netloc}/", word[:20]
    cut = max(iri.rfind("#", 0, len(iri) - 1), iri.rfind("/", 0, len(iri) - 1),
              iri.rfind(":", 0, len(iri) - 1))  # fmt: skip
    if cut <= 0:
        return None, None
    return iri[: cut + 1], "ns"


__all__ = ["prefixes_for"]
