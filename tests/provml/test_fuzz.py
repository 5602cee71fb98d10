"""Property-based fuzzing of everything that reads outside input.

The tracker's ingest (wire batches: arbitrary JSON, mutated valid batches, raw bytes),
the ProvLake conversion, the PROV importers (random bytes, mutated corpus documents)
and ``provml ingest``'s file readers. The property everywhere: the only exception is a
:class:`provml.core.errors.ValidationError`; and what validation accepts goes through the rest
of the pipeline (identifiers, RDF, the store) without an error. Derandomised, bounded:
a few seconds each, the same examples on every run.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pyoxigraph
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.errors import ValidationError
from provml.core.mapping import batch_to_nquads, batch_to_quads
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch, validate_batch
from provml.interop import documents as interop
from provml.interop import provlake
from provml.offline import _map_chunk, read_lines
from tests.conftest import SHARED, full_records, make_batch

#: PROVML_FUZZ_EXAMPLES=5000 for a longer, randomised hunt (CI: 150, derandomised)
EXAMPLES = int(os.environ.get("PROVML_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 150,
    deadline=None,
    derandomize=EXAMPLES is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FEW = settings(FUZZ, max_examples=EXAMPLES or 40)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=30,
)


def accept(batch_obj: Any) -> None:
    """What validation accepted must map and store without an error."""
    try:
        batch = validate_batch(batch_obj)
    except ValidationError:
        return
    resolved = resolve_batch(batch)
    quads = batch_to_quads(resolved)
    # the server-less loader's N-Quads text: exactly the same quads
    text = batch_to_nquads(resolved)
    assert set(pyoxigraph.parse(text, format=pyoxigraph.RdfFormat.N_QUADS)) == set(quads)
    Manager(OxigraphStore(None)).apply(resolved)


def ingest(body: bytes) -> None:
    try:
        batch = parse_batch(body)
    except ValidationError:
        return
    resolved = resolve_batch(batch)
    Manager(OxigraphStore(None)).apply(resolved)


# ---- wire batches --------------------------------------------------------------------------


@FUZZ
@given(json_values)
def test_arbitrary_json_is_refused_or_accepted_never_an_error(obj: Any) -> None:
    ingest(orjson.dumps(obj))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    ingest(body)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


BASE = make_batch(full_records())
BASE_PATHS = _paths(BASE)[1:]

mutation = st.tuples(
    st.sampled_from(BASE_PATHS),
    st.sampled_from(["replace", "delete", "add", "wrap", "stringify"]),
    json_values,
    st.text(min_size=1, max_size=12),
)


def mutate(obj: Any, path: tuple[Any, ...], how: str, value: Any, key: str) -> Any:
    obj = copy.deepcopy(obj)
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "add" and isinstance(parent[last], dict):
        parent[last][key] = value
    elif how == "add" and isinstance(parent[last], list):
        parent[last].append(value)
    elif how == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = str(parent[last])
    return obj


def mutated(obj: Any, mutations: list[Any]) -> Any:
    """``obj`` with each mutation applied in turn; one whose path an earlier mutation
    removed is skipped."""
    for path, how, value, key in mutations:
        try:
            obj = mutate(obj, path, how, value, key)
        except (KeyError, IndexError, TypeError):
            continue
    return obj


@FUZZ
@given(st.lists(mutation, min_size=1, max_size=3))
def test_mutated_valid_batches(mutations: list[Any]) -> None:
    obj = mutated(BASE, mutations)
    accept(obj)
    try:
        body = orjson.dumps(obj)
    except TypeError:  # a mutation made a non-string key: no JSON carries that
        return
    ingest(body)


RESOLVED = resolve_batch(validate_batch(copy.deepcopy(BASE))).to_json()
RESOLVED_PATHS = _paths(RESOLVED)[1:]


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(RESOLVED_PATHS),
            st.sampled_from(["replace", "delete", "add", "wrap", "stringify"]),
            json_values,
            st.text(min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_resolved_batches_at_the_manager(mutations: list[Any]) -> None:
    """The manager's own route takes resolved batches (from a tracker)."""
    obj = mutated(RESOLVED, mutations)
    with contextlib.suppress(ValidationError):
        Manager(OxigraphStore(None)).apply_json(obj)


#: "@data" and "@entity" keys make a reference: not a plain value (wire.py)
names = st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("@"))
param_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.dictionaries(names, param_values, max_size=6), names, names)
def test_valid_batches_are_accepted(params: dict[str, Any], wf: str, task: str) -> None:
    """Any JSON parameters, any names: accepted, mapped and stored."""
    records = [
        {"kind": "workflow_start", "n": 1, "name": wf, "time": 1.0, "params": params},
        {"kind": "task_start", "n": 2, "parent": 1, "plan": [wf, task], "time": 2.0,
         "params": params, "used": {"x": params}},
        {"kind": "task_end", "n": 2, "plan": [wf, task], "time": 3.0,
         "generated": {"y": params}},
        {"kind": "metric", "n": 3, "parent": 2, "name": task, "value": 1.5, "time": 2.5},
        {"kind": "workflow_end", "n": 1, "name": wf, "time": 4.0},
    ]  # fmt: skip
    batch = validate_batch(make_batch(records))  # must not raise
    Manager(OxigraphStore(None)).apply(resolve_batch(batch))


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\ud800"',  # a lone surrogate, as an escape
        b'"\\udfff\\ud800"',
        b'"a\\u0000b"',
    ],
)
def test_odd_strings_in_every_string_field(raw: bytes) -> None:
    body = orjson.dumps(make_batch(full_records()))
    for field in (b'"wf"', b'"clean"', b'"loss"', b'"me"', b'"alice"', b'"raw.csv"'):
        ingest(body.replace(field, raw))


# ---- ProvLake ------------------------------------------------------------------------------

PROVLAKE_BAG = [
    {"prov_obj": {"task": {"id": 1717243201.25, "wf_execution": 1717243200.25,
                           "generatedTime": 1717243201.25},
                  "dt": "train", "type": "Generate", "values": {"lr": 0.1, "data": "x.csv"}},
     "dataflow_name": "credit-scoring", "act_type": "task"},
]  # fmt: skip


def provlake_ingest(body: bytes) -> None:
    try:
        batches = provlake.to_batches(provlake.parse_bag(body))
    except ValidationError:
        return
    for batch in batches:
        Manager(OxigraphStore(None)).apply(resolve_batch(batch))


@FUZZ
@given(json_values)
def test_provlake_arbitrary_json(obj: Any) -> None:
    provlake_ingest(orjson.dumps(obj))
    provlake_ingest(orjson.dumps([obj]))


PL_PATHS = _paths(PROVLAKE_BAG)[1:]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PL_PATHS), st.sampled_from(
    ["replace", "delete", "add", "wrap", "stringify"]), json_values, st.text(min_size=1,
    max_size=12)), min_size=1, max_size=3))  # fmt: skip
def test_provlake_mutated_bags(mutations: list[Any]) -> None:
    obj = mutated(PROVLAKE_BAG, mutations)
    try:
        body = orjson.dumps(obj)
    except TypeError:
        return
    provlake_ingest(body)


# ---- PROV importers ------------------------------------------------------------------------

CORPUS = SHARED / "corpus" / "trungdong-prov"
SAMPLES: dict[str, list[bytes]] = {}
for fmt, folder, pattern in [
    ("provjson", "json", "*.json"),
    ("provxml", "xml", "*.xml"),
    ("turtle", "rdf", "*.ttl"),
]:
    files = sorted((CORPUS / folder).glob(pattern))[:40] if CORPUS.is_dir() else []
    SAMPLES[fmt] = [f.read_bytes() for f in files if f.stat().st_size < 4000]
SAMPLES["provn"] = [
    f.read_bytes()
    for f in sorted((SHARED / "corpus" / "provtoolbox" / "validation").glob("*.provn"))[:20]
] if (SHARED / "corpus").is_dir() else []  # fmt: skip
SAMPLES["ntriples"] = [
    b'<http://e.org/a> <http://e.org/b> "c"@en .\n_:x <http://e.org/b> <http://e.org/c> .\n'
]
SAMPLES["nquads"] = [b"<http://e.org/a> <http://e.org/b> <http://e.org/c> <http://e.org/g> .\n"]
SAMPLES["trig"] = [b"<http://e.org/g> { <http://e.org/a> <http://e.org/b> [ <http://e.org/c> 1 ] }"]


def read(data: bytes, fmt: str, base: str | None = None) -> None:
    try:
        quads = interop.read_document(data, fmt, base)
    except ValidationError:
        return
    OxigraphStore(None).add(quads)


@FEW
@given(st.sampled_from(interop.IMPORT_FORMATS), st.binary(max_size=200))
def test_importers_with_random_bytes(fmt: str, data: bytes) -> None:
    read(data, fmt)


@FEW
@given(st.sampled_from(interop.IMPORT_FORMATS), st.text(max_size=200))
def test_importers_with_random_text(fmt: str, text: str) -> None:
    read(text.encode("utf-8", "surrogatepass"), fmt, "http://example.org/base/")


NOISE = [b"{", b"}", b"<", b">", b'"', b"\\", b"\xff", b"(", b")", b"[", b"]", b":", b"@",
         b"&", b"\x00", b"\\u0000", b"\\ud800", b"1e999", b"NaN"]  # fmt: skip


@st.composite
def mutated_document(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from([f for f, docs in SAMPLES.items() if docs]))
    data = bytearray(draw(st.sampled_from(SAMPLES[fmt])))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["cut", "insert", "flip", "truncate", "duplicate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "cut":
            del data[i : i + draw(st.integers(1, 20))]
        elif how == "insert":
            data[i:i] = draw(st.sampled_from(NOISE))
        elif how == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del data[i:]
        else:
            data[i:i] = data[i : i + draw(st.integers(1, 50))]
    return fmt, bytes(data)


@settings(FUZZ, max_examples=EXAMPLES or 200)
@given(mutated_document())
def test_importers_with_mutated_corpus_documents(doc: tuple[str, bytes]) -> None:
    fmt, data = doc
    read(data, fmt, "http://example.org/base/")


# ---- provml ingest's readers ---------------------------------------------------------------

lines = st.lists(
    st.one_of(
        st.binary(max_size=80),
        json_values.map(orjson.dumps),
        st.just(orjson.dumps(make_batch(full_records()[:3]))),
        st.just(orjson.dumps(PROVLAKE_BAG)),
    ),
    max_size=5,
)


def test_the_provlake_sample_is_valid() -> None:
    assert provlake.to_batches(PROVLAKE_BAG)


@FUZZ
@given(lines, st.booleans(), st.sampled_from(["native", "provlake"]))
def test_segment_readers(content: list[bytes], torn: bool, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("prov-x.log" if fmt == "provlake" else "x.jsonl")
        path.write_bytes(b"\n".join(content) + (b"" if torn else b"\n"))
        read_back = list(read_lines(str(path), fmt))
    good = [(path.name, line.number, line.body) for line in read_back if not line.error]
    if good:
        _map_chunk((fmt, good))  # validation refusals are reported, nothing raises
