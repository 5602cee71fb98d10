"""Large inputs are copied on the caller's thread and named on the capture worker
(capture_lib.deferred): what the graph says must be the data as it was when the call
was made, whatever the caller does with it afterwards, and nothing may be lost."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

from capture_lib import deferred
from capture_lib.integrations import _sklearn_calls as calls
from capture_lib.integrations import digest
from tests.capture_lib.integrations.conftest import Captured

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression


@pytest.fixture(autouse=True)
def _kept_copies() -> Any:
    """Copies are kept (as under autolog), and none is left for the next test."""
    digest.keep_copies()
    yield
    digest.forget_copies()


def _table(seed: int, rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))  # 256 KB: over DEFER_BYTES
    return x, (x[:, 0] > 0).astype(int)


def _digest(value: Any) -> str:
    return str(digest.data_reference(value, calls.TRAIN_HASH_LIMIT)["sha256"])


def _fits(captured: Captured) -> list[dict[str, Any]]:
    return [r for r in captured.tasks("training") if r["plan"][1] == "LogisticRegression.fit"]


def test_data_changed_after_fit_is_named_as_it_was_passed(captured: Captured) -> None:
    x, y = _table(0)
    assert x.nbytes >= calls.DEFER_BYTES
    want_x, want_y = _digest(x), _digest(y)
    LogisticRegression().fit(x, y)
    x[:] = 0.0  # the caller reuses its buffers before the worker got to them
    y[:] = 1
    (fit,) = _fits(captured)
    assert fit["used"]["X"]["sha256"] == want_x
    assert fit["used"]["y"]["sha256"] == want_y
    assert fit["used"]["X"]["hashing"] == "full"
    assert deferred.pending() == (0, 0)


def test_fits_on_same_shaped_tables_keep_their_own_names(captured: Captured) -> None:
    """Copies are reused once named: two fits of one shape in a row, the second before
    the first's copy was named, must not share a buffer."""
    tables = [_table(seed) for seed in range(4)]
    wanted = [_digest(x) for x, _ in tables]
    for x, y in tables:
        LogisticRegression().fit(x, y)
    for x, _ in tables:
        x[:] = -1.0
    got = [f["used"]["X"]["sha256"] for f in _fits(captured)]
    assert got == wanted
    assert len(set(got)) == 4
    x, y = _table(9)  # a fifth, after: may reuse a named copy
    LogisticRegression().fit(x, y)
    assert _fits(captured)[-1]["used"]["X"]["sha256"] == _digest(_table(9)[0])


def test_prediction_and_input_of_predict_named_as_they_were(captured: Captured) -> None:
    x, y = _table(1)
    model = LogisticRegression().fit(x, y)
    want_x = _digest(x)
    proba = model.predict_proba(x)
    want_out = _digest(proba)
    x[:] = 0.0
    proba[:] = 0.0
    (infer,) = [r for r in captured.tasks("inference")]
    assert infer["used"]["X"]["sha256"] == want_x
    (end,) = [r for r in captured.records() if r["kind"] == "task_end"
              and r.get("generated", {}).get("prediction")]  # fmt: skip
    assert end["generated"]["prediction"]["sha256"] == want_out


def test_a_frame_is_copied_whole(captured: Captured) -> None:
    pd = pytest.importorskip("pandas")
    x, y = _table(2)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    want = _digest(frame)
    LogisticRegression().fit(frame, y)
    frame.iloc[:, 0] = 5.0
    (fit,) = _fits(captured)
    assert fit["used"]["X"]["sha256"] == want
    assert fit["used"]["X"]["columns"][0] == "f0"


def test_over_the_budget_the_caller_names_the_data_itself(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deferred, "BUDGET", 1000)
    x, y = _table(3)
    want = _digest(x)
    LogisticRegression().fit(x, y)
    x[:] = 0.0
    (fit,) = _fits(captured)
    assert fit["used"]["X"]["sha256"] == want


def test_a_deferred_value_that_fails_does_not_lose_the_batch(captured: Captured) -> None:
    import capture_lib as cl

    later = deferred.defer(lambda: 1 / 0, 10)
    assert later is not None
    with (
        cl.workflow("w") as wf,
        wf.task("t", used={"a": later, "b": {"@data": "missing", "path": "p"}}),
    ):
        pass
    del later
    (task,) = [r for r in captured.tasks() if r["plan"][1] == "t"]
    assert task["used"]["a"] is None
    assert task["used"]["b"]["path"] == "p"
    assert captured.records()  # the batch was written
    assert deferred.pending() == (0, 0)


def test_a_value_never_computed_gives_its_bytes_back() -> None:
    before = deferred.pending()
    later = deferred.defer(lambda: 1, 500)
    assert later is not None
    assert deferred.pending() == (before[0] + 1, before[1] + 500)
    del later
    gc.collect()
    assert deferred.pending() == before


def test_a_copy_is_kept_for_reuse_once_and_by_its_exact_dtype() -> None:
    pair = np.dtype([("a", "<i8"), ("b", "<f8")])
    other = np.dtype([("c", "<f8"), ("d", "<i8")])  # the same size, another layout
    copy = digest._array_copy(np.zeros(10_000, dtype=pair))
    digest.recycle(copy)
    digest.recycle(copy)  # a value computed twice must not offer its buffer twice
    assert sum(s is copy for s in digest._spare.get((copy.shape, pair), [])) == 1
    fresh = np.ones(10_000, dtype=other)
    again = digest._array_copy(fresh)
    assert again is not copy and again.dtype == other
    assert _digest(again) == _digest(fresh)


def test_a_table_passed_again_is_named_by_comparison_and_exactly(captured: Captured) -> None:
    """A table fitted on before is named by comparing its bytes with the copy named then
    (no copy, no hash): the name must be the one its content gives, whatever was done to
    the array in between."""
    x, y = _table(4)
    LogisticRegression().fit(x, y)
    assert captured.records()  # the worker named the copies: they are kept
    copied = deferred.pending()
    LogisticRegression().fit(x, y)  # the same bytes: named now, nothing deferred
    assert deferred.pending() == copied
    x[-1, -1] = np.nextafter(x[-1, -1], 1.0)  # the last byte compared differs
    LogisticRegression().fit(x, y)
    x[-1, -1] = 0.0
    LogisticRegression().fit(x, y)
    x[-1, -1] = -0.0  # equal as numbers, not as bytes
    LogisticRegression().fit(x, y)
    wanted = [_digest(_table(4)[0])] * 2
    for last in (np.nextafter(_table(4)[0][-1, -1], 1.0), 0.0, -0.0):
        changed = _table(4)[0]
        changed[-1, -1] = last
        wanted.append(_digest(changed))
    got = [f["used"]["X"]["sha256"] for f in _fits(captured)]
    assert got == wanted
    assert len(set(got)) == 4
    assert {f["used"]["y"]["sha256"] for f in _fits(captured)} == {_digest(y)}


def test_a_named_copy_matches_only_its_shape_and_dtype() -> None:
    x = np.arange(20_000, dtype=np.float64)
    copy = digest.snapshot(x)
    ref = digest.data_reference(copy, calls.TRAIN_HASH_LIMIT)
    digest.remember(copy, ref)
    try:
        assert digest.known(x) == ref
        assert digest.known(x.reshape(100, 200)) is None  # same bytes, another shape
        assert digest.known(x.view(np.int64)) is None  # same bytes, another dtype
        assert digest.known(np.asfortranarray(x.reshape(100, 200))) is None
        assert digest.known(x[::-1]) is None  # not C-ordered: not compared
        ref["sha256"] = "changed"  # what a caller does with a reference stays its own
        again = digest.known(x)
        assert again is not None and again["sha256"] != "changed"
        again["shape"].append(1)
        assert digest.known(x) == digest.data_reference(x, calls.TRAIN_HASH_LIMIT)
    finally:
        digest.forget_copies()


def test_named_copies_are_bounded_and_never_offered_for_reuse_while_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(digest, "NAMED_BYTES", 3 * 80_000)
    arrays = [np.full(10_000, float(i)) for i in range(2)]  # 80 kB each, one shape
    others = [np.full(shape, 9.0) for shape in [(10, 1000), (20, 500)]]  # other shapes
    try:
        for a in arrays:  # several of one shape are kept (cross-validation's folds)
            kept = digest.snapshot(a)
            digest.remember(kept, digest.data_reference(kept, 1 << 30))
        first = next(iter(digest._named.values()))[1]
        digest.recycle(first)  # a kept copy is never offered for reuse
        assert not any(s is first for s in digest._spare.get((first.shape, first.dtype), []))
        assert all(digest.known(a) is not None for a in arrays)
        for other in others:
            kept = digest.snapshot(other)
            digest.remember(kept, digest.data_reference(kept, 1 << 30))
        assert digest._named_bytes[0] <= digest.NAMED_BYTES
        assert digest.known(arrays[0]) is None  # the least recently matched went first…
        assert any(s is first for s in digest._spare[(first.shape, first.dtype)])  # …reused
        assert digest.known(arrays[1]) is not None
        assert all(digest.known(other) is not None for other in others)
    finally:
        digest.forget_copies()
    assert digest._named_bytes[0] == 0 and not digest._named


def test_a_table_passed_again_before_it_was_named_shares_its_copy(captured: Captured) -> None:
    x, y = _table(5)
    want = _digest(x)
    LogisticRegression().fit(x, y)
    after_first = deferred.pending()
    LogisticRegression().fit(x, y)  # the worker may not have named the first copy yet
    assert deferred.pending()[1] <= after_first[1]  # no second copy was made
    x[:] = 3.0
    LogisticRegression().fit(x, y)
    assert [f["used"]["X"]["sha256"] for f in _fits(captured)] == [want, want, _digest(x)]


def test_a_deferred_name_that_failed_or_was_dropped_is_not_reused() -> None:
    x = np.arange(20_000, dtype=np.float64)
    try:
        for end in ("failed", "dropped"):
            later = deferred.defer(lambda: 1 / 0, x.nbytes)
            assert later is not None
            digest.remember(digest.snapshot(x), later)
            assert digest.known(x) is later
            if end == "failed":
                assert later.value() is None
            else:
                del later
                gc.collect()
            assert digest.known(x) is None
    finally:
        digest.forget_copies()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("memcmp", [True, False], ids=["memcmp", "numpy"])
def test_the_comparison_reads_every_byte(
    dtype: Any, memcmp: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if memcmp:
        assert digest._memcmp is not None  # found on Linux: this suite's platform
    else:
        monkeypatch.setattr(digest, "_memcmp", None)
    x = np.zeros(300_001, dtype=dtype)  # sizes of every parity, past the first block
    copy = digest.snapshot(x)
    digest.remember(copy, digest.data_reference(copy, calls.TRAIN_HASH_LIMIT))
    try:
        assert digest.known(x) is not None
        for where in (0, 150_000, -1):
            changed = x.copy()
            changed.view(np.uint8)[where] = 1  # one bit of one byte
            assert digest.known(changed) is None
    finally:
        digest.forget_copies()


def test_a_structured_array_is_named_by_the_caller_never_compared(captured: Captured) -> None:
    """Its copy would leave out the padding bytes, and its dtype, which a copy shares,
    can be renamed in place: it is hashed when the call is made."""
    pair = np.dtype([("a", "<f8"), ("b", "<i4")], align=True)  # 4 bytes of padding
    x = np.zeros(8000, dtype=pair)
    assert digest.snapshot_size(x) == 0
    want = digest.data_reference(x, calls.TRAIN_HASH_LIMIT)
    got = calls._data(x, calls.TRAIN_HASH_LIMIT, "X")
    assert isinstance(got, dict) and got["sha256"] == want["sha256"]
    x.dtype.names = ("c", "d")
    assert digest.known(x) is None
    again = calls._data(x, calls.TRAIN_HASH_LIMIT, "X")
    assert isinstance(again, dict) and again["sha256"] != want["sha256"]
    assert again["sha256"] == digest.data_reference(x, calls.TRAIN_HASH_LIMIT)["sha256"]


def test_after_autolog_is_disabled_nothing_is_kept(captured: Captured) -> None:
    import capture_lib as cl

    x, y = _table(6)
    LogisticRegression().fit(x, y)  # copies wait for the worker
    cl.autolog(disable=True)
    assert captured.records()  # the worker names them now: they are let go
    assert not digest._named and not digest._spare and digest._named_bytes[0] == 0
    cl.autolog()
    LogisticRegression().fit(x, y)
    assert captured.records()
    assert digest._named  # kept again


def test_at_most_the_latest_candidates_are_compared() -> None:
    arrays = [np.full(10_000, float(i)) for i in range(digest.CANDIDATES + 2)]
    for a in arrays:
        kept = digest.snapshot(a)
        digest.remember(kept, digest.data_reference(kept, 1 << 30))
    assert digest.known(arrays[-1]) is not None
    assert digest.known(arrays[0]) is None  # past the candidates: let go, its memory reused
    assert digest.known(arrays[2]) is not None


def test_a_copy_past_the_candidates_is_reused_for_the_next_table() -> None:
    """Only the latest CANDIDATES copies of a shape are ever compared: an older one is
    not kept for nothing, its memory takes the next table's copy (no fresh pages)."""
    arrays = [np.full(10_000, float(i)) for i in range(digest.CANDIDATES + 1)]
    kept = []
    try:
        for a in arrays:
            copy = digest.snapshot(a)
            kept.append(copy)
            digest.remember(copy, digest.data_reference(copy, 1 << 30))
        assert sum(1 for e in digest._named.values() if e[0][0] == (10_000,)) == digest.CANDIDATES
        assert any(s is kept[0] for s in digest._spare[(kept[0].shape, kept[0].dtype)])
        assert digest.known(arrays[0]) is None
        assert all(digest.known(a) is not None for a in arrays[1:])
        new = np.full(10_000, -1.0)
        again = digest.snapshot(new)
        assert again is kept[0] and np.array_equal(again, new)  # the old memory, new bytes
        assert digest.known(new) is None  # a snapshot is not a name: nothing remembered
    finally:
        digest.forget_copies()
        digest.keep_copies()
    assert not digest._per_key
