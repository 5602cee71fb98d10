from __future__ import annotations

import uuid

from provml.core import ids
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from tests.conftest import full_records, make_batch


def test_session_ids_are_uuid7_and_time_ordered() -> None:
    a = ids.new_session_id(now_ms=1_700_000_000_000)
    b = ids.new_session_id(now_ms=1_700_000_000_001)
    assert uuid.UUID(a).version == 7 and uuid.UUID(b).version == 7
    assert a < b
    assert len({ids.new_session_id() for _ in range(1000)}) == 1000


def test_execution_ids_keep_session_time_and_order_by_counter() -> None:
    s = ids.new_session_id()
    e = [ids.execution_uuid(s, n) for n in (1, 2, 10, 2**32 - 1)]
    assert e == sorted(e)
    assert all(x[:14] == s[:14] for x in e)  # same 48-bit timestamp
    assert all(uuid.UUID(x).version == 7 for x in e)
    other = ids.new_session_id()
    assert ids.execution_uuid(s, 1) != ids.execution_uuid(other, 1)


def test_content_ids_are_derived_from_content() -> None:
    assert ids.value_sha256({"b": 1, "a": [1, 2]}) == ids.value_sha256({"a": [1, 2], "b": 1})
    assert ids.value_sha256({"a": 1}) != ids.value_sha256({"a": 2})
    assert ids.content_iri("ab" * 32).endswith("/data/sha256/" + "ab" * 32)


def test_resolving_is_deterministic_and_joins_shared_data() -> None:
    batch = validate_batch(make_batch(full_records()))
    first, second = resolve_batch(batch), resolve_batch(batch)
    assert first.records == second.records
    by_kind = {(r["kind"], r["n"]): r for r in first.records}
    clean_out = by_kind[("task_end", 2)]["ids"]["generated"]["clean"]
    train_in = by_kind[("task_start", 3)]["ids"]["used"]["data"]
    assert clean_out == train_in  # the dataset clean generated is the one train used
    assert by_kind[("task_start", 3)]["plan_id"].endswith("/plan/wf/train")
    assert by_kind[("task_start", 3)]["parent_id"] == by_kind[("workflow_start", 1)]["id"]
    prediction = by_kind[("task_end", 10)]["ids"]["generated"]["prediction"]
    assert prediction.startswith(by_kind[("task_start", 10)]["id"])


def test_plan_iris_escape_names() -> None:
    assert ids.plan_iri("a b", "c/d").endswith("/plan/a%20b/c%2Fd")
