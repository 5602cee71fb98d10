"""Identifiers of ProvLake executions: every one a function of ProvLake's own
identifiers, so that records of one task sent apart meet, and a record sent twice adds
nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from provml.core.ids import LOW32, canonical_json, uuid7


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256(canonical_json(list(parts))).digest()


def _uuid7(ms: int, rand42: int) -> str:
    """A session id (:func:`provml.core.ids.new_session_id`'s layout): this timestamp and
    42 bits, the lowest 32 bits zero."""
    return uuid7(ms, (rand42 & ((1 << 42) - 1)) << 32)


def _ms(value: Any, digest: bytes) -> int:
    """ProvLake's default ids are the start time in seconds: keep them as the UUIDv7's
    timestamp, so executions sort in time; other ids take 48 bits of their digest."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 1e9 <= value < 3.25e10:
        return int(value * 1000)
    return int.from_bytes(digest[:6], "big")


def workflow_session(dataflow: str, wf_execution: Any) -> str:
    """The provml session of a ProvLake workflow execution; the execution is its ``n=1``."""
    d = _digest("provlake-workflow", dataflow, wf_execution)
    return _uuid7(_ms(wf_execution, d), int.from_bytes(d[6:12], "big"))


def execution_identity(kind: str, dataflow: str, wf_execution: Any, name: str,
                       ident: Any) -> tuple[str, int]:  # fmt: skip
    """(session, n) of a task (``kind="task"``, ``ident`` the task id) or cycle iteration
    (``kind="cycle"``, ``ident`` the iteration id): 74 bits of digest, the timestamp of
    the task id when it is a time, else the workflow's."""
    d = _digest(f"provlake-{kind}", dataflow, wf_execution, name, ident)
    if isinstance(ident, int | float) and not isinstance(ident, bool) and 1e9 <= ident < 3.25e10:
        ms = int(ident * 1000)
    else:
        wd = _digest("provlake-workflow", dataflow, wf_execution)
        ms = _ms(wf_execution, wd)
    n = int.from_bytes(d[6:10], "big") % LOW32 + 1
    return _uuid7(ms, int.from_bytes(d[:6], "big")), n
