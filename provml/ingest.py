"""Reading disk-only segment files (``provml ingest``).

Each line of a segment is one batch. A line that is not valid JSON — typically the last
line of a segment whose process was killed mid-write — is skipped and reported, never
fatal; so is a batch the tracker refuses. Batches are sent one by one through the
tracker's normal path, so disk-only and online capture end in the same graph, and
sending a file twice adds nothing (identifiers are derived from the records).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson


@dataclass
class Line:
    path: str
    number: int
    body: bytes
    error: str | None = None


@dataclass
class Report:
    files: int = 0
    batches: int = 0
    records: int = 0
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def expand(paths: list[str]) -> list[str]:
    """Files as given; directories expanded to their ``*.jsonl`` files, sorted."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out.extend(os.path.join(root, f) for f in files if f.endswith(".jsonl"))
        else:
            out.append(p)
    return sorted(dict.fromkeys(out))


def read_lines(path: str) -> Iterator[Line]:
    """Every non-empty line of a segment, flagged if it is not a JSON object."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            body = raw.strip()
            if not body:
                continue
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                torn = not raw.endswith(b"\n")
                why = "torn last line (process killed mid-write?)" if torn else f"not JSON: {exc}"
                yield Line(path, number, body, why)
                continue
            if not isinstance(obj, dict):
                yield Line(path, number, body, "not a batch object")
                continue
            yield Line(path, number, body)
