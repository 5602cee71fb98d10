"""Values over the wire format's size limit, kept by digest so the rest of a run lands.

The tracker refuses a batch holding a value (one entry of ``params``, ``used`` or
``generated``) whose JSON is over :data:`provml.core.wire.MAX_VALUE_BYTES`, and a batch over
:data:`provml.core.wire.MAX_BATCH_BYTES`. Rather than lose the whole batch, the worker replaces
such a value with a reference to its SHA-256 — the node ``cl.digest(value)`` names — that
says it was kept by digest only::

    {"@data": "value", "sha256": "…", "size": 31457282, "digest_only": true}

and splits a batch over the batch limit into smaller ones.
"""

from __future__ import annotations

from typing import Any

import orjson

from capture_lib.records import VALUE_FIELDS
from provml.core.ids import value_sha256

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """JSON as the worker writes it (a value that is not JSON as its ``str()``)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return orjson.dumps(value, default=str, option=_OPTIONS)


def digest_only(value: Any, limit: int) -> dict[str, Any] | None:
    """The digest reference standing for ``value`` if its JSON is over ``limit`` bytes,
    else None. An entity reference is an IRI, never over it; a data reference over it
    keeps naming its data, with its sizeable members kept by digest (:func:`_trimmed`)."""
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, str) and len(value) * 6 + 2 <= limit:  # \\uXXXX at worst
        return None
    if isinstance(value, dict) and "@entity" in value:
        return None
    data = dumps(value)
    if len(data) <= limit:
        return None
    if isinstance(value, dict) and "@data" in value:
        return _trimmed(value, limit)
    # the digest of the value as the tracker would have read it, so the node is the one
    # the value itself (or cl.digest of it) names
    return {
        "@data": "value",
        "sha256": value_sha256(orjson.loads(data)),
        "size": len(data),
        "digest_only": True,
    }


#: members of a data reference that name it: never replaced
_NAMING = frozenset({"@data", "sha256", "size", "path", "host"})


def _trimmed(ref: dict[str, Any], limit: int) -> dict[str, Any]:
    """A data reference over ``limit`` (a 2 MiB description, a huge metadata member) with
    each sizeable member but its naming ones kept by digest: a string member as a short
    string saying so (the wire wants strings there), another as a digest reference. The
    data it names is unchanged."""
    out = dict(ref)
    share = max(256, limit // max(1, len(ref)))
    for key, member in ref.items():
        if key in _NAMING:
            continue
        data = dumps(member)
        if len(data) <= share:
            continue
        sha = value_sha256(orjson.loads(data))
        if isinstance(member, str):
            out[key] = f"(kept by digest: sha256 {sha}, {len(data)} bytes of JSON)"
        else:
            out[key] = {"@data": "value", "sha256": sha, "size": len(data), "digest_only": True}
    return out


def shrink(rec: tuple[Any, ...], limit: int) -> tuple[tuple[Any, ...], int]:
    """``rec`` with every value over ``limit`` bytes replaced by its digest reference,
    and how many were replaced (``rec`` itself when none was)."""
    out: list[Any] | None = None
    replaced = 0
    for i in VALUE_FIELDS.get(rec[0], ()):
        values = rec[i]
        if not values:
            continue
        new: dict[str, Any] | None = None
        for key, value in values.items():
            ref = digest_only(value, limit)
            if ref is not None:
                if new is None:
                    new = dict(values)  # never modify the caller's dictionary
                new[key] = ref
                replaced += 1
        if new is not None:
            if out is None:
                out = list(rec)
            out[i] = new
    return (rec if out is None else tuple(out)), replaced


#: orjson's refusal of an integer it cannot write (past 64 bits)
BIG_INTEGER = "Integer exceeds 64-bit range"
_I64, _U64 = -(2**63), 2**64


def exact(value: Any) -> Any:
    """``value`` with every integer past 64 bits (which JSON here cannot carry as a number)
    written as its decimal digits, a string: exact, and the rest of the batch lands. A
    copy: the caller's dictionaries are never modified."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _I64 <= value < _U64 else str(value)
    if isinstance(value, dict):
        return {exact(k): exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(exact(v) for v in value)
    return value
