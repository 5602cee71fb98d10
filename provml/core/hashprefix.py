"""References as people type them: a unique prefix of a content hash, as git takes.

Tables print data by their SHA-256; typing all 64 digits is not how anyone works. Any
parameter that names data (a ``data`` parameter of a question, a model or dataset
record, a lineage export) also takes ``sha256:`` and at least :data:`MIN_PREFIX` leading
hexadecimal digits: one match is that data, none is a 404, several are refused with the
candidates listed. A prefix is looked up among every ``provml:sha256`` in the store: a
scan of those values, so a full hash (or the IRI) stays the fast way.
"""

from __future__ import annotations

import re
from typing import Any

from provml.core.errors import NotFound, ValidationError
from provml.core.queryable import Queryable

MIN_PREFIX = 8
#: candidates listed when a prefix is ambiguous
SHOWN = 10
_PREFIX = re.compile(rf"(?:sha256:)?([0-9a-fA-F]{{{MIN_PREFIX},63}})", re.IGNORECASE)


def expand(store: Queryable, raw: str) -> str:
    """``raw`` with a unique hash prefix replaced by the whole hash; anything else as
    given (a whole hash, an IRI, a short form: :func:`provml.core.ids.ref_iri` reads those)."""
    match = _PREFIX.fullmatch(raw.strip())
    if match is None:
        return raw
    prefix = match.group(1).lower()
    found = [
        row[0].value
        for row in store.query(
            "SELECT DISTINCT ?h WHERE { ?x provml:sha256 ?h . "
            f'FILTER(STRSTARTS(STR(?h), "{prefix}")) }} LIMIT {SHOWN + 1}'
        )
    ]
    if not found:
        raise NotFound(
            f"no data in the graph has a SHA-256 starting with {prefix} (hashes are in the "
            "sha256 column of training-data, models and the records; `provml ask runs` "
            "lists the runs)"
        )
    if len(found) > 1:
        more = " and more" if len(found) > SHOWN else ""
        raise ValidationError(
            f"{prefix} is ambiguous: {len(found[:SHOWN])}{more} data have a SHA-256 starting "
            "with it; give more digits",
            details=sorted(found[:SHOWN]),
        )
    return str(found[0])


def expand_params(store: Queryable, question: Any, values: dict[str, str]) -> dict[str, str]:
    """A question's parameters with the hash prefixes of its data parameters expanded."""
    kinds = {p.name: p.kind for p in question.params}
    return {k: expand(store, v) if kinds.get(k) == "data" else v for k, v in values.items()}
