"""The ProvLake client's JSON: a bag of records (a request body or an offline log line),
and the checks its parts share."""

from __future__ import annotations

import json
import math
from typing import Any, TypeGuard

import orjson

from provml.core.errors import ValidationError
from provml.core.wire import json_type

#: problems listed in a refusal at most
MAX_PROBLEMS = 50


def loads(body: bytes | str) -> Any:
    """JSON as the ProvLake client writes it. Its offline log is written by Python's
    ``json.dumps``, which writes ``NaN`` and ``Infinity``; those become the strings
    ``"NaN"``, ``"INF"`` and ``"-INF"`` (JSON has no such numbers)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return _finite(json.loads(body))
    except (ValueError, RecursionError):
        raise ValidationError(f"body is not valid JSON (UTF-8): {first}") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("INF" if value > 0 else "-INF")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def parse_bag(body: bytes | str) -> list[Any]:
    """A request body or log line: a JSON array of ProvLake records."""
    bag = loads(body)
    if not isinstance(bag, list):
        raise ValidationError(
            "a ProvLake retrospective-provenance body is a JSON array of records",
            details=[f"got {json_type(bag)}"],
        )
    return bag


def is_name(v: Any) -> TypeGuard[str]:
    return isinstance(v, str) and 0 < len(v) <= 256


def among(v: Any, options: frozenset[str]) -> bool:
    return isinstance(v, str) and v in options
