"""What the importers of other tools' records share (MLflow, Flowcept): identifiers
derived from the tool's own ids, so that importing the same thing twice gives the same
records, and the grouping of records into validated wire batches.

An importer turns what it read into wire records (:mod:`provml.core.wire`), each with the
session it belongs to; :class:`Batches` groups them by session, numbers the batches by
their content and validates each, so they go through the tracker like any client's."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from provml.core.errors import ValidationError
from provml.core.ids import canonical_json, uuid7
from provml.core.wire import WIRE_VERSION, Batch, validate_batch

#: records in one batch the importers send (the wire format allows 50,000; smaller
#: batches keep each request short)
RECORDS_PER_BATCH = 5_000

#: what a redactor does to a mapping (``capture_lib.redact.Redactor`` fits; the CLI
#: passes one, so that imported parameters hide secrets as captured ones do)
Redact = Callable[[dict[str, Any]], dict[str, Any]]


def keep(values: dict[str, Any]) -> dict[str, Any]:
    return values


def digest(*parts: Any) -> bytes:
    return hashlib.sha256(canonical_json(list(parts))).digest()


def derived_session(ms: int, *parts: Any) -> str:
    """A session id (a UUIDv7 whose lowest 32 bits are zero) of this timestamp and 42
    bits of the digest of ``parts``: the same parts always give the same session."""
    rand = int.from_bytes(digest(*parts)[:6], "big") & ((1 << 42) - 1)
    return uuid7(max(ms, 0), rand << 32)


def content_sha256(key: Any) -> str:
    """The SHA-256 a data node is named by when the tool names data by an identity of
    its own rather than by its bytes: that of the identity's canonical JSON."""
    return hashlib.sha256(canonical_json(key)).hexdigest()


def metric_value(value: Any) -> float | str:
    """A metric value as the wire format takes it (no NaN or infinities in JSON)."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "INF" if v > 0 else "-INF"
    return v


def is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 256


@dataclass
class Batches:
    """Wire records grouped by session, turned into validated batches."""

    groups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, session: str, records: Iterable[dict[str, Any]]) -> None:
        self.groups.setdefault(session, []).extend(records)

    def build(self) -> list[Batch]:
        """Validated batches; raise :class:`ValidationError` (every problem listed) if a
        record is not valid, so that a caller can refuse the whole unit it converted."""
        out: list[Batch] = []
        for session, records in self.groups.items():
            for start in range(0, len(records), RECORDS_PER_BATCH):
                chunk = records[start : start + RECORDS_PER_BATCH]
                body = {
                    "provml": WIRE_VERSION,
                    "batch": hashlib.sha256(canonical_json([session, chunk])).hexdigest()[:32],
                    "session": session,
                    "records": chunk,
                }
                out.append(validate_batch(body))
        return out


def problem_text(exc: ValidationError) -> str:
    details = "; ".join(str(d) for d in (exc.details or [])[:3])
    return f"{exc.message}" + (f" ({details})" if details and details != exc.message else "")
