from __future__ import annotations

import orjson
import pytest

from provml.core.errors import ValidationError
from provml.core.resolve import resolve_batch, validate_resolved
from provml.core.wire import parse_batch
from tests.conftest import full_records, make_batch


def test_a_full_batch_parses() -> None:
    batch = parse_batch(orjson.dumps(make_batch(full_records())))
    assert len(batch.records) == len(full_records())


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe{}", b'{"provml": 1}', b"null"],
)
def test_bad_bodies_are_refused_with_a_message(body: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        parse_batch(body)
    assert info.value.message
    assert info.value.status == 400


def test_every_problem_is_listed() -> None:
    records = full_records()
    records[0]["name"] = ""
    records[1]["time"] = "yesterday"
    records[3]["stage"] = "cooking"
    with pytest.raises(ValidationError) as info:
        parse_batch(orjson.dumps(make_batch(records)))
    details = " | ".join(info.value.details)
    assert "records[0].name" in details
    assert "records[1].time" in details
    assert "records[3].stage" in details


def test_deeply_nested_values_are_refused() -> None:
    value: object = 1
    for _ in range(100):
        value = [value]
    records = full_records()[:1]
    records[0]["params"] = {"deep": value}
    with pytest.raises(ValidationError, match="nested deeper"):
        parse_batch(orjson.dumps(make_batch(records)))


def test_resolved_batches_with_forged_ids_are_refused() -> None:
    resolved = resolve_batch(parse_batch(orjson.dumps(make_batch(full_records())))).to_json()
    assert validate_resolved(resolved).records == resolved["records"]
    resolved["records"][1]["id"] = "https://evil.example/x"
    with pytest.raises(ValidationError, match="identifier does not match"):
        validate_resolved(resolved)


def test_compact_records_expand_to_objects() -> None:
    compact = make_batch([
        ["workflow_start", 1, None, "wf", 1.5, None, None, "alice"],
        ["task_start", 2, None, 1, None, ["wf", "t"], 2.0, "training", {"lr": 0.1}, None],
        ["metric", 3, 2, None, "loss", "NaN", 2.5, None],
    ])  # fmt: skip
    batch = parse_batch(orjson.dumps(compact))
    assert batch.records[0] == {
        "kind": "workflow_start",
        "n": 1,
        "name": "wf",
        "time": 1.5,
        "user": "alice",
    }
    assert batch.records[1]["params"] == {"lr": 0.1} and "used" not in batch.records[1]
    assert batch.records[2]["value"] == "NaN"


@pytest.mark.parametrize(
    "record",
    [["task_start", 2], ["teleport", 1, 2], [], [3, 1], ["metric", 3, 2, None, "", 1, 2.5, None]],
)
def test_bad_compact_records_are_refused(record: list[object]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_batch(orjson.dumps(make_batch([record])))
    assert "records[0]" in " ".join(info.value.details)


@pytest.mark.parametrize(
    "iri",
    [
        "https://provml.dev/id/a\tb",
        "https://provml.dev/id/a b",
        "https://evil.example/x",
        "https://provml.dev/id/<x>",
    ],
)
def test_bad_entity_references_are_refused(iri: str) -> None:
    rec = {
        "kind": "task_start",
        "n": 2,
        "parent": 1,
        "plan": ["w", "t"],
        "time": 1.0,
        "used": {"x": {"@entity": iri}},
    }
    with pytest.raises(ValidationError, match="entity"):
        parse_batch(orjson.dumps(make_batch([rec])))


def test_compact_records_in_a_resolved_batch_are_checked() -> None:
    batch = make_batch([["workflow_start", 1, None, "id", 1.0, None, None, None]])
    assert validate_resolved(batch).records[0]["name"] == "id"


def test_an_error_message_over_its_limit_is_refused_and_one_at_it_is_not() -> None:
    from provml.core.wire import MAX_ERROR_CHARS

    def end(error: str) -> bytes:
        rec = {"kind": "workflow_end", "n": 1, "name": "w", "time": 2.0, "status": "failed",
               "error": error}  # fmt: skip
        return orjson.dumps(make_batch([rec]))

    parse_batch(end("e" * MAX_ERROR_CHARS))
    with pytest.raises(ValidationError) as err:
        parse_batch(end("e" * (MAX_ERROR_CHARS + 1)))
    assert "over the limit of 65536 for an error message" in err.value.message
