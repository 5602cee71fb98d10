"""The JSON Schema of a wire batch (provml/schema/batch.schema.json) against the validator.

``provml.core.wire.validate_batch`` is the reference; the schema must accept and refuse the same
batches, except for the few checks its ``$comment`` names (integers written as ``1.0``,
nesting depth of inline values), which are pinned in ``test_checks_the_schema_cannot_express``.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from provml.core.errors import ValidationError
from provml.core.wire import (
    DATA_TYPES,
    KINDS,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_NAME,
    MAX_RECORDS,
    NON_FINITE,
    STAGES,
    STATUSES,
    validate_batch,
)
from tests.conftest import full_records, make_batch

DOCS = Path(__file__).resolve().parents[2] / "docs"

SESSION = "0190a4e2-7b1c-7d2e-8f00-012300000000"
BATCH_ID = "5f1d3c0e9b8a4c7d8e6f1a2b3c4d5e6f"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
T0 = 1_717_243_200.0


def load_schema() -> dict[str, Any]:
    text = resources.files("provml").joinpath("schema/batch.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA = load_schema()
VALIDATOR = Draft202012Validator(SCHEMA)

#: the smallest valid record of each kind
MINIMAL: dict[str, dict[str, Any]] = {
    "workflow_start": {"kind": "workflow_start", "n": 1, "name": "wf", "time": T0},
    "workflow_end": {"kind": "workflow_end", "n": 1, "name": "wf", "time": T0 + 9},
    "task_start": {"kind": "task_start", "n": 2, "parent": 1, "plan": ["wf", "t"], "time": T0},
    "task_end": {"kind": "task_end", "n": 2, "plan": ["wf", "t"], "time": T0 + 1},
    "section_start": {
        "kind": "section_start",
        "n": 3,
        "parent": 2,
        "plan": ["wf", "t", "epoch"],
        "time": T0,
    },
    "section_end": {"kind": "section_end", "n": 3, "plan": ["wf", "t", "epoch"], "time": T0 + 1},
    "metric": {"kind": "metric", "n": 4, "parent": 3, "name": "loss", "value": 0.5, "time": T0},
}


def rec(kind: str, /, **changes: Any) -> dict[str, Any]:
    """A minimal record of ``kind`` with ``changes`` applied."""
    out = copy.deepcopy(MINIMAL[kind])
    out.update(changes)
    return out


def without(kind: str, field: str) -> dict[str, Any]:
    out = rec(kind)
    del out[field]
    return out


def batch(*records: Any, **top: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provml": 1,
        "batch": BATCH_ID,
        "session": SESSION,
        "records": list(records),
    }
    out.update(top)
    return out


def ref(kind: str = "file", **members: Any) -> dict[str, Any]:
    return {"@data": kind, "sha256": SHA, **members}


def used(value: Any, name: str = "x") -> dict[str, Any]:
    """A batch whose one task_start uses ``value`` under ``name``."""
    return batch(rec("task_start", used={name: value}))


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def schema_error_paths(instance: Any) -> Iterator[tuple[Any, ...]]:
    """Instance paths of the schema's errors (and of the errors inside anyOf), lazily."""
    for error in itertools.islice(VALIDATOR.iter_errors(instance), 100):
        stack: list[SchemaError] = [error]
        while stack:
            err = stack.pop()
            yield tuple(err.absolute_path)
            stack.extend(err.context or [])


def first_json_block(markdown: str) -> Any:
    match = re.search(r"^```json\n(.*?)^```", markdown, re.S | re.M)
    assert match, "no ```json block"
    return json.loads(match.group(1))


# --- (a) the schema itself ---------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_states_the_validators_limits() -> None:
    props = SCHEMA["properties"]
    defs = SCHEMA["$defs"]
    assert props["provml"]["const"] == 1
    assert props["records"]["maxItems"] == MAX_RECORDS
    assert defs["name"]["maxLength"] == MAX_NAME
    assert defs["values"]["maxProperties"] == MAX_ITEMS
    assert str(MAX_DEPTH) in defs["value"]["$comment"]
    assert set(SCHEMA["required"]) == {"provml", "batch", "session", "records"}
    assert set(defs["stage"]["enum"]) == STAGES | {None}
    assert set(defs["status"]["enum"]) == STATUSES | {None}
    assert set(defs["dataReference"]["properties"]["@data"]["enum"]) == DATA_TYPES
    assert set(defs["metricValue"]["anyOf"][1]["enum"]) == NON_FINITE


def test_the_schema_has_the_fields_of_every_record_kind() -> None:
    defs = SCHEMA["$defs"]
    assert set(defs["record"]["properties"]["kind"]["enum"]) == set(KINDS)
    for kind, (required, optional) in KINDS.items():
        assert set(defs[kind]["required"]) == required | {"kind"}, kind
        assert set(defs[kind]["properties"]) == required | optional | {"kind"}, kind
        assert defs[kind]["additionalProperties"] is False


# --- (b) valid batches -------------------------------------------------------------------

DEEP_OK = nested(MAX_DEPTH)

VALID: list[Any] = [
    pytest.param(make_batch(full_records(), session=SESSION), id="every-kind-stage-and-value"),
    pytest.param(batch(), id="no-records"),
    pytest.param(batch(*(rec(kind) for kind in MINIMAL)), id="minimal-record-of-each-kind"),
    pytest.param(
        batch(
            rec("workflow_start", params=None, env=None, user=None),
            rec("workflow_end", status=None, error=None),
            rec("task_start", stage=None, params=None, used=None),
            rec("task_end", stage=None, status=None, error=None, generated=None),
            rec("section_start", index=None),
            rec("section_end", status=None, error=None),
            rec("metric", step=None),
        ),
        id="optional-fields-null",
    ),
    pytest.param(
        batch(
            rec(
                "workflow_start",
                params={"seed": 42, "owner": "me"},
                user="alice",
                env={"hostname": "h", "pid": 1, "python": "3.11", "gpu": None, "x": True},
            ),
            rec("workflow_end", status="failed", error="ValueError: boom"),
        ),
        id="workflow-with-everything",
    ),
    pytest.param(batch(rec("workflow_start", env={})), id="empty-env"),
    *(
        pytest.param(
            batch(rec("task_start", stage=stage), rec("task_end", stage=stage)), id=f"stage-{stage}"
        )
        for stage in ("training", "validation", "evaluation", "inference")
    ),
    *(
        pytest.param(batch(rec("section_end", status=status)), id=f"status-{status}")
        for status in ("finished", "failed", "running")
    ),
    *(
        pytest.param(used(ref(kind)), id=f"data-reference-{kind}")
        for kind in ("file", "directory", "dataset", "model")
    ),
    pytest.param(
        batch(
            rec(
                "task_end",
                generated={
                    "model": ref(
                        "model",
                        path="m.pkl",
                        size=0,
                        framework="sklearn",
                        framework_version="1.5",
                        tags=["a", {"deep": nested(2 * MAX_DEPTH)}],
                    )
                },
            )
        ),
        id="data-reference-with-metadata",
    ),
    pytest.param(used(ref(size=2**40, path="")), id="data-reference-big-size-empty-path"),
    pytest.param(
        batch(
            rec(
                "task_start",
                params={"lr": 0.1, "epochs": 2, "layers": [8, 4], "opt": {"name": "sgd"}},
                used={
                    "n": 3,
                    "s": "text",
                    "b": False,
                    "none": None,
                    "list": [1, "a", None],
                    "obj": {"a": {"b": [1, 2]}},
                    "not-a-ref": {"x": {"@data": "bogus"}},
                },
            ),
            rec("task_end", stage="inference", generated={"prediction": {"y": [0.1, 0.9]}}),
        ),
        id="inline-values",
    ),
    pytest.param(used(DEEP_OK), id=f"inline-value-nested-{MAX_DEPTH}-levels"),
    pytest.param(
        batch(*(rec("metric", value=v) for v in ("NaN", "INF", "-INF", 0, -1.5, 1e300, 3))),
        id="metric-values-including-non-finite",
    ),
    pytest.param(
        batch(
            rec("metric", step=-1),
            rec("section_start", index=-3),
            rec("metric", step=10**12),
        ),
        id="any-integer-step-and-index",
    ),
    pytest.param(
        batch(
            rec("workflow_start", n=2**32 - 1, name="w" * MAX_NAME, time=0),
            rec("section_start", plan=["é" * MAX_NAME, "t" * MAX_NAME, "s" * MAX_NAME]),
            rec("metric", parent=2**32 - 1, time=32_503_679_999.999),
        ),
        id="limits-just-inside",
    ),
    pytest.param(
        batch(rec("task_start", params={f"p{i}": i for i in range(MAX_ITEMS)})),
        id="max-entries",
    ),
]


@pytest.mark.parametrize("obj", VALID)
def test_valid_batches_are_accepted_by_both(obj: dict[str, Any]) -> None:
    validate_batch(obj)
    errors = [e.message for e in itertools.islice(VALIDATOR.iter_errors(obj), 5)]
    assert not errors


# --- (c) invalid batches -----------------------------------------------------------------

R0 = ("records", 0)

#: (batch, what validate_batch's details must mention, the schema error's path prefix)
INVALID: list[Any] = [
    pytest.param(batch(provml=2), "provml:", ("provml",), id="version-2"),
    pytest.param(batch(provml="1"), "provml:", ("provml",), id="version-string"),
    pytest.param(batch(provml=True), "provml:", ("provml",), id="version-true"),
    pytest.param(
        {k: v for k, v in batch().items() if k != "provml"}, "provml:", (), id="version-missing"
    ),
    pytest.param(batch(batch="A" * 32), "batch:", ("batch",), id="batch-id-uppercase"),
    pytest.param(batch(batch="a" * 31), "batch:", ("batch",), id="batch-id-short"),
    pytest.param(batch(batch="a" * 32 + "\n"), "batch:", ("batch",), id="batch-id-newline"),
    pytest.param(batch(batch=12), "batch:", ("batch",), id="batch-id-number"),
    pytest.param(
        batch(session="0190a4e2-7b1c-4d2e-8f00-012300000000"),
        "session:",
        ("session",),
        id="session-uuid4",
    ),
    pytest.param(batch(session=SESSION.upper()), "session:", ("session",), id="session-uppercase"),
    pytest.param(
        batch(session="0190a4e27b1c7d2e8f00012300000000"),
        "session:",
        ("session",),
        id="session-without-dashes",
    ),
    pytest.param(batch(extra=1), "unknown top-level fields: ['extra']", (), id="unknown-top"),
    pytest.param(batch(records={"0": {}}), "records:", ("records",), id="records-object"),
    pytest.param(batch(records=None), "records:", ("records",), id="records-null"),
    pytest.param(
        batch(records=[rec("metric")] * (MAX_RECORDS + 1)),
        "records: at most",
        ("records",),
        id="too-many-records",
    ),
    pytest.param(batch("metric"), "records[0]:", R0, id="record-not-object"),
    pytest.param(batch(rec("metric", kind="gauge")), "records[0].kind", R0, id="unknown-kind"),
    pytest.param(batch(without("metric", "kind")), "records[0].kind", R0, id="missing-kind"),
    *(
        pytest.param(
            batch(without(kind, field)),
            f"records[0]: {kind} record lacks ['{field}']",
            R0,
            id=f"{kind}-without-{field}",
        )
        for kind, field in [
            ("workflow_start", "name"),
            ("workflow_end", "time"),
            ("task_start", "parent"),
            ("task_end", "plan"),
            ("section_start", "plan"),
            ("section_end", "n"),
            ("metric", "value"),
        ]
    ),
    pytest.param(
        batch(rec("task_start", foo=1)), "records[0]: unknown fields", R0, id="unknown-field"
    ),
    pytest.param(
        batch(rec("task_end", used={})),
        "records[0]: unknown fields for task_end: ['used']",
        R0,
        id="field-of-another-kind",
    ),
    pytest.param(batch(rec("metric", n="4")), "records[0].n", (*R0, "n"), id="n-string"),
    pytest.param(batch(rec("metric", n=0)), "records[0].n", (*R0, "n"), id="n-zero"),
    pytest.param(batch(rec("metric", n=2**32)), "records[0].n", (*R0, "n"), id="n-2**32"),
    pytest.param(batch(rec("metric", n=True)), "records[0].n", (*R0, "n"), id="n-boolean"),
    pytest.param(batch(rec("metric", n=None)), "records[0].n", (*R0, "n"), id="n-null"),
    pytest.param(
        batch(rec("metric", parent=-1)), "records[0].parent", (*R0, "parent"), id="parent-negative"
    ),
    pytest.param(
        batch(rec("task_start", plan=["wf"])), "records[0].plan", (*R0, "plan"), id="plan-of-1"
    ),
    pytest.param(
        batch(rec("section_end", plan=["a", "b", "c", "d"])),
        "records[0].plan",
        (*R0, "plan"),
        id="plan-of-4",
    ),
    pytest.param(
        batch(rec("task_end", plan="wf/t")), "records[0].plan", (*R0, "plan"), id="plan-string"
    ),
    pytest.param(
        batch(rec("task_end", plan=["wf", ""])),
        "records[0].plan",
        (*R0, "plan"),
        id="plan-empty-name",
    ),
    pytest.param(
        batch(rec("task_end", plan=["wf", 7])),
        "records[0].plan",
        (*R0, "plan"),
        id="plan-name-number",
    ),
    pytest.param(
        batch(rec("task_start", stage="cooking")),
        "records[0].stage",
        (*R0, "stage"),
        id="bad-stage",
    ),
    pytest.param(
        batch(rec("task_end", stage="Training")),
        "records[0].stage",
        (*R0, "stage"),
        id="stage-wrong-case",
    ),
    pytest.param(
        batch(rec("section_end", status="done")),
        "records[0].status",
        (*R0, "status"),
        id="bad-status",
    ),
    pytest.param(
        batch(rec("workflow_end", error=1)), "records[0].error", (*R0, "error"), id="error-number"
    ),
    pytest.param(
        batch(rec("metric", time="yesterday")), "records[0].time", (*R0, "time"), id="time-string"
    ),
    pytest.param(batch(rec("metric", time=-1)), "records[0].time", (*R0, "time"), id="time-<0"),
    pytest.param(
        batch(rec("metric", time=32_503_680_000)),
        "records[0].time",
        (*R0, "time"),
        id="time-year-3000",
    ),
    pytest.param(batch(rec("metric", time=None)), "records[0].time", (*R0, "time"), id="time-null"),
    pytest.param(
        batch(rec("workflow_start", name="w" * (MAX_NAME + 1))),
        "records[0].name",
        (*R0, "name"),
        id="name-too-long",
    ),
    pytest.param(batch(rec("metric", name="")), "records[0].name", (*R0, "name"), id="name-empty"),
    pytest.param(
        batch(rec("workflow_start", user="")), "records[0].user", (*R0, "user"), id="user-empty"
    ),
    pytest.param(
        batch(rec("metric", value="fast")),
        "records[0].value",
        (*R0, "value"),
        id="metric-value-string",
    ),
    pytest.param(
        batch(rec("metric", value="nan")),
        "records[0].value",
        (*R0, "value"),
        id="metric-value-lowercase-nan",
    ),
    pytest.param(
        batch(rec("metric", value=True)),
        "records[0].value",
        (*R0, "value"),
        id="metric-value-boolean",
    ),
    pytest.param(
        batch(rec("metric", value=None)),
        "records[0].value",
        (*R0, "value"),
        id="metric-value-null",
    ),
    pytest.param(
        batch(rec("metric", step=1.5)), "records[0].step", (*R0, "step"), id="step-fraction"
    ),
    pytest.param(
        batch(rec("section_start", index="0")),
        "records[0].index",
        (*R0, "index"),
        id="index-string",
    ),
    pytest.param(
        batch(rec("workflow_start", env={"argv": ["a", "b"]})),
        "records[0].env",
        (*R0, "env"),
        id="env-array-value",
    ),
    pytest.param(
        batch(rec("workflow_start", env="linux")),
        "records[0].env",
        (*R0, "env"),
        id="env-string",
    ),
    pytest.param(
        batch(rec("workflow_start", params=[1, 2])),
        "records[0].params",
        (*R0, "params"),
        id="params-array",
    ),
    pytest.param(
        batch(rec("task_start", params={"": 1})),
        "records[0].params",
        (*R0, "params"),
        id="param-name-empty",
    ),
    pytest.param(
        batch(rec("task_start", params={"p" * (MAX_NAME + 1): 1})),
        "records[0].params",
        (*R0, "params"),
        id="param-name-too-long",
    ),
    pytest.param(
        batch(rec("task_start", params={f"p{i}": i for i in range(MAX_ITEMS + 1)})),
        "records[0].params",
        (*R0, "params"),
        id="too-many-params",
    ),
    pytest.param(
        used(ref(sha256="A" * 64)),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="sha256-uppercase",
    ),
    pytest.param(
        used(ref(sha256="a" * 63)),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="sha256-short",
    ),
    pytest.param(
        used({"@data": "file", "path": "a.csv"}),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="sha256-missing",
    ),
    pytest.param(
        used(ref("image")),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="data-type-unknown",
    ),
    pytest.param(
        used(ref(size=-1)),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="size-negative",
    ),
    pytest.param(
        used(ref(size="10")), "records[0].used: entry 'x'", (*R0, "used", "x"), id="size-string"
    ),
    pytest.param(
        used(ref(size=False)),
        "records[0].used: entry 'x'",
        (*R0, "used", "x"),
        id="size-boolean",
    ),
    pytest.param(
        used(ref(path=None)), "records[0].used: entry 'x'", (*R0, "used", "x"), id="path-null"
    ),
    pytest.param(
        batch(rec("task_end", generated={"model": ref("model", path=["m.pkl"])})),
        "records[0].generated: entry 'model'",
        (*R0, "generated", "model"),
        id="generated-path-array",
    ),
    pytest.param(
        batch(rec("metric"), rec("metric", n=5), rec("task_start", stage="x")),
        "records[2].stage",
        ("records", 2, "stage"),
        id="problem-in-a-later-record",
    ),
]


@pytest.mark.parametrize(("obj", "mention", "where"), INVALID)
def test_invalid_batches_are_refused_by_both(
    obj: Any, mention: str, where: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch(obj)
    assert info.value.status == 400
    details = " | ".join(info.value.details)
    assert mention in details, details
    assert not VALIDATOR.is_valid(obj), "the schema accepts the batch"
    assert any(p[: len(where)] == where for p in schema_error_paths(obj))


def test_every_problem_is_listed_with_its_path() -> None:
    obj = batch(
        rec("metric", value="fast"),
        rec("task_start", plan=["wf"]),
        rec("task_end", generated={"m": ref(size=-1)}),
        extra=True,
        provml=3,
    )
    with pytest.raises(ValidationError) as info:
        validate_batch(obj)
    details = " | ".join(info.value.details)
    for path in ("provml:", "extra", "records[0].value", "records[1].plan", "records[2].generated"):
        assert path in details
    paths = set(schema_error_paths(obj))
    for where in [("provml",), (), ("records", 0, "value"), ("records", 1, "plan")]:
        assert where in paths
    assert any(p[:4] == ("records", 2, "generated", "m") for p in paths)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(batch(rec("metric", n=4.0)), id="n-written-4.0"),
        pytest.param(batch(rec("section_start", index=2.0)), id="index-written-2.0"),
        pytest.param(used(ref(size=10.0)), id="size-written-10.0"),
        pytest.param(used(nested(MAX_DEPTH + 1)), id=f"nested-{MAX_DEPTH + 1}-levels"),
        pytest.param(
            batch(rec("workflow_start", params={"p": {"a": nested(MAX_DEPTH)}})),
            id="param-nested-too-deep",
        ),
    ],
)
def test_checks_the_schema_cannot_express(obj: dict[str, Any]) -> None:
    """What the schema's $comment says it leaves to validate_batch."""
    with pytest.raises(ValidationError):
        validate_batch(obj)
    assert VALIDATOR.is_valid(obj)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(batch(provml=[1]), id="version-array"),
        pytest.param(batch(rec("task_start", stage=["training"])), id="stage-array"),
        pytest.param(batch(rec("task_end", status={})), id="status-object"),
        pytest.param(batch(rec("metric", value=[1])), id="metric-value-array"),
        pytest.param(used({"@data": ["file"], "sha256": SHA}), id="data-type-array"),
    ],
)
def test_unhashable_values_are_refused(obj: dict[str, Any]) -> None:
    assert not VALIDATOR.is_valid(obj)
    with pytest.raises(ValidationError):
        validate_batch(obj)


def test_a_version_written_as_float_is_refused_cleanly() -> None:
    obj = batch(provml=1.0)
    assert VALIDATOR.is_valid(obj)  # JSON Schema cannot tell 1.0 from 1
    with pytest.raises(ValidationError, match="version"):
        validate_batch(obj)


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        pytest.param(used(ref(size=None)), "size", id="data-reference-size-null"),
        pytest.param(used(ref(framework=3)), "framework", id="framework-not-a-string"),
        pytest.param(
            batch(rec("task_start", plan=["wf", "t", "s"])), "plan", id="task-plan-of-3-names"
        ),
        pytest.param(
            batch(rec("section_start", plan=["wf", "t"])), "plan", id="section-plan-of-2-names"
        ),
        pytest.param(
            batch(session="0190a4e2-7b1c-7d2e-8f00-012300000001"),
            "session",
            id="session-low-bits-set",
        ),
    ],
)
def test_refused_by_both_with_the_path(obj: dict[str, Any], fragment: str) -> None:
    assert not VALIDATOR.is_valid(obj)
    with pytest.raises(ValidationError) as info:
        validate_batch(obj)
    assert fragment in " ".join(info.value.details)


# --- agreement on many mutated batches ---------------------------------------------------

MUTATION_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.5, 2**32, 2**32 - 1, "", "x", "a" * 257, "a" * 256,
    [], ["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"], ["a", ""], {}, {"a": 1},
    {"": 1}, ref(), {"@data": "file"}, ref("x"), ref(size=-1), ref(size=None), ref(path=None),
    {"k": ref("dataset")}, {"k": [1, {"a": None}]}, {"k": {"x": {"@data": 1}}}, "NaN", "INF",
    "-INF", "nan", "training", "cooking", "failed", "running", "a" * 32, "a" * 64,
    SESSION, 32_503_680_000, -0.5,
]  # fmt: skip
MUTATION_KEYS = [
    "kind", "n", "parent", "name", "value", "time", "step", "plan", "stage", "status", "error",
    "params", "used", "generated", "env", "user", "index", "other",
]  # fmt: skip


def test_schema_and_validator_agree_on_mutated_batches() -> None:
    rng = random.Random(20240601)
    compared = 0
    for _ in range(400):
        obj = make_batch(copy.deepcopy(full_records()), session=SESSION)
        for _ in range(rng.randint(1, 3)):
            records = obj["records"]
            if rng.random() < 0.1 or not (isinstance(records, list) and records):
                key = rng.choice(["provml", "batch", "session", "records", "extra"])
                obj[key] = copy.deepcopy(rng.choice(MUTATION_VALUES))
                continue
            record = rng.choice(records)
            if not isinstance(record, dict):
                continue
            if record and rng.random() < 0.2:
                del record[rng.choice(sorted(record))]
            else:
                record[rng.choice(MUTATION_KEYS)] = copy.deepcopy(rng.choice(MUTATION_VALUES))
        try:
            validate_batch(obj)
            accepted = True
        except ValidationError:
            accepted = False
        except TypeError:  # see test_unhashable_values_are_refused
            continue
        assert VALIDATOR.is_valid(obj) == accepted, obj
        compared += 1
    assert compared > 300


# --- (d) the documentation's examples ----------------------------------------------------


@pytest.mark.parametrize("doc", ["wire-format.md", "mapping.md"])
def test_the_example_batch_in_the_docs_is_valid(doc: str) -> None:
    example = first_json_block((DOCS / doc).read_text("utf-8"))
    parsed = validate_batch(example)
    assert parsed.records
    assert VALIDATOR.is_valid(example)
