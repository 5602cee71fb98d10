"""What cl.autolog() costs a scikit-learn workflow: the same calls with and without it.

For each estimator and a 10,000-row, 20-column table (``make_classification``), each
call below is timed ``--repeats`` times with autolog on and off, interleaved (on, off,
on, off …) so that the machine's drift touches both alike; the figures are medians.
Capture goes to disk (``mode="disk"`` in a temporary directory), as on a compute node.
The target (issue 13): at most 5 % on a ``fit``.

A large input is copied on the caller's thread and named on the capture worker
(capture_lib.deferred); an array passed again with the same bytes is named by comparing
them with the copy kept (digest.known), without a copy or a hash. Hence two shapes of
work, measured apart:

* ``first fit on a new table``: a table no fit has seen (a copy of the base table with
  one value changed, made outside the timing), the first since ``cl.autolog()``: its copy
  goes to memory the process never wrote, whose page faults cost as much as the hash;
* ``fit, a new table``: the same in a script that has run a while: a copy goes to the
  memory of one no longer kept (digest.recycle). For a fit under ``SHORT`` seconds, the
  ``CANDIDATES + LOOP`` fits on new tables that get there are made first, untimed (and
  without autolog too, alike); a longer fit is measured without them;
* ``fit, the same table again``: the base table, fitted once just before (a search, a
  comparison of models, cross-validation's folds across candidates);
* ``N fits on new tables, then flush`` and ``N fits on one table, then flush``: the whole
  cost, worker included: N fits in a row, timed with the flush that waits for the worker
  to have named and written everything, per fit. On a machine whose cores the fit itself
  keeps busy (BLAS threads) the worker's hashing competes with it, and these rows show it;
* ``predict``: of the whole table, and of one row (a serving call).

The overhead is the median of the differences between a run with autolog and the run
without it that follows (drift touches a pair alike), in milliseconds and as a share of
the median without. ``in capture`` is the time the call spent in the capture's own code
on the caller's thread (the start and the end of its task), per fit: exact, where the
difference of a short call is mostly the machine's noise, but blind to what the capture
does to the caches the estimator reads next, and to the worker's share. Capture writes
without ``fsync`` (``fsync="never"``): with the default, a flush fsyncs, and the flush
after every ``LOOP`` fits here would count an fsync per five fits that a script running
for a while pays once a second.

    python bench/integrations.py [--repeats R] [--rows N] [--only NAME] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python bench/integrations.py``
on a shared one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import capture_lib as cl
from capture_lib.integrations import digest


def _estimators() -> dict[str, Callable[[], Any]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "LogisticRegression": lambda: LogisticRegression(max_iter=200),
        "RandomForest(20 trees, depth 8)": lambda: RandomForestClassifier(
            n_estimators=20, max_depth=8, random_state=0
        ),
        "Pipeline(StandardScaler, LogisticRegression)": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=200)
        ),
    }


#: fits in a row, timed with the flush that ends them: the worker's share included
LOOP = 5


#: seconds spent so far in the capture's own code on the caller's thread (_instrument)
_inside = [0.0]


def _instrument() -> None:
    """Time what a captured call spends in the capture's own code, around the estimator's:
    the start of its task (``begin``: naming the inputs, parameters) and its end
    (``finished``: naming the model, metrics). This is exact where the with-and-without
    difference of a short call is mostly the machine's noise; it leaves out what the
    capture does to the caches the estimator then reads."""
    from capture_lib.integrations import _sklearn_calls as calls

    def timer(fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _inside[0] += time.perf_counter() - t

        return timed

    calls.begin = timer(calls.begin)  # type: ignore[assignment]
    calls._Call.finished = timer(calls._Call.finished)  # type: ignore[method-assign]


def _timed(fn: Callable[[], Any], inside: list[float] | None = None) -> float:
    before = _inside[0]
    t = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t
    if inside is not None:
        inside.append(_inside[0] - before)
    return elapsed


def _new_tables(x: Any, n: int, seed: int) -> list[Any]:
    """``n`` tables of ``x``'s shape that no fit has seen (one value changed in each)."""
    tables = []
    for k in range(n):
        table = x.copy()
        table[k % len(x), 0] += 1e-9 * (seed * n + k + 1)
        tables.append(table)
    return tables


CALLS = (
    "first fit on a new table",
    "fit, a new table",
    "fit, the same table again",
    f"{LOOP} fits on new tables, then flush",
    f"{LOOP} fits on one table, then flush",
    "predict (all rows)",
    "predict (one row)",
)
#: a fit shorter than this gets the warm-up of :func:`measure` (a longer one does not
#: notice the page faults it spares)
SHORT = 0.1


def measure(rows: int, repeats: int, only: str | None = None) -> list[dict[str, Any]]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=20, random_state=0)
    one = x[:1]
    warm_up = digest.CANDIDATES + LOOP
    _instrument()
    results = []
    for name, make in _estimators().items():
        if only and only.lower() not in name.lower():
            continue
        times: dict[str, dict[bool, list[float]]] = {c: {True: [], False: []} for c in CALLS}
        inside: dict[str, list[float]] = {c: [] for c in CALLS}
        short = False
        for i in range(repeats * 2 + 2):
            spent: list[float] = []
            on = i % 2 == 0
            cl.autolog(disable=not on)  # disabling also lets go of the copies kept
            fresh = _new_tables(x, LOOP + 2, i)
            model = make()
            first = _timed(lambda: model.fit(fresh[0], y), spent)  # noqa: B023
            cl.flush()
            if i == 0:  # decided once, so that both runs of a pair do alike
                short = first < SHORT
            if short:  # a script that has run a while: copies' memory is reused
                for table in _new_tables(x, warm_up, i + 10_000):
                    make().fit(table, y)
                cl.flush()
            new = _timed(lambda: make().fit(fresh[1], y), spent)  # noqa: B023
            make().fit(x, y)  # seen once: named on the worker, or about to be
            again = _timed(lambda: make().fit(x, y), spent)  # noqa: B023
            whole = _timed(lambda: model.predict(x), spent)  # noqa: B023
            ones: list[float] = []
            single = min(_timed(lambda: model.predict(one), ones) for _ in range(20))  # noqa: B023
            cl.flush()
            loop_new = _timed(lambda: [make().fit(t, y) for t in fresh[2:]] and cl.flush(), spent)  # noqa: B023
            loop_one = _timed(lambda: [make().fit(x, y) for _ in range(LOOP)] and cl.flush(), spent)  # noqa: B023
            spent[2:] = [
                spent[2],
                spent[4] / LOOP,
                spent[5] / LOOP,
                spent[3],
                statistics.median(ones),
            ]  # in the order of CALLS
            if i >= 2:  # the first pair warms caches and imports
                for call, t in zip(CALLS, (first, new, again, loop_new / LOOP, loop_one / LOOP,
                                           whole, single), strict=True):  # fmt: skip
                    times[call][on].append(t)
                    if on:
                        inside[call].append(spent[CALLS.index(call)])
        for call, t in times.items():
            with_, without = statistics.median(t[True]), statistics.median(t[False])
            # each run with autolog against the run without it that follows: the drift
            # of a shared machine touches a pair alike
            paired = statistics.median(a - b for a, b in zip(t[True], t[False], strict=True))
            results.append({
                "estimator": name, "call": call, "rows": 1 if "one row" in call else rows,
                "with_ms": with_ * 1e3, "without_ms": without * 1e3,
                "overhead_ms": paired * 1e3, "overhead_pct": paired / without * 100,
                "in_capture_ms": statistics.median(inside[call]) * 1e3,
                "repeats": repeats,
            })  # fmt: skip
    cl.autolog(disable=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--only", default=None, help="the estimators whose name has this")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs, fsync="never")  # see the module doc
        with cl.workflow("bench-integrations"):
            results = measure(args.rows, args.repeats, args.only)
        lost = cl.stats()["lost"]
        cl.shutdown()
    print(f"{'estimator':46} {'call':34} {'without ms':>11} {'with ms':>9} "
          f"{'overhead':>12} {'%':>7} {'in capture':>13}")  # fmt: skip
    for r in results:
        print(f"{r['estimator']:46} {r['call']:34} {r['without_ms']:11.3f} {r['with_ms']:9.3f} "
              f"{r['overhead_ms']:+9.3f} ms {r['overhead_pct']:6.1f}% "
              f"{r['in_capture_ms']:10.3f} ms")  # fmt: skip
    print(f"lost: {lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
