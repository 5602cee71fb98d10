"""What cl.autolog() costs a scikit-learn workflow: the same calls with and without it.

For each estimator, a ``fit`` of a 10,000-row, 20-column table (``make_classification``),
then ``predict`` of the whole table and of one row (a serving call), each timed
``--repeats`` times with autolog on and off, interleaved (on, off, on, off …) so that
the machine's drift touches both alike; the figures are medians. Capture goes to disk
(``mode="disk"`` in a temporary directory), as on a compute node; the records are
flushed after each timed call, outside the timing (the worker's batching is off the
caller's thread). The target (issue 13): at most 5 % on a ``fit``.

A large input is copied on the caller's thread and named on the capture worker
(capture_lib.deferred), so the ``fit`` row is what the caller waits for. The row
"10 fits, then flush" is the whole cost, worker included: ten fits in a row, timed with
the flush that waits for the worker to have named and written everything, per fit. On a
machine whose cores the fit itself keeps busy (BLAS threads) the worker's hashing
competes with it, and that row shows it.

    python bench/integrations.py [--repeats R] [--rows N] [--json PATH]

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
LOOP = 10


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(rows: int, repeats: int) -> list[dict[str, Any]]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=20, random_state=0)
    one = x[:1]
    results = []
    for name, make in _estimators().items():
        times: dict[str, dict[bool, list[float]]] = {
            "fit": {True: [], False: []},
            "predict (all rows)": {True: [], False: []},
            "predict (one row)": {True: [], False: []},
            f"{LOOP} fits, then flush": {True: [], False: []},
        }
        for i in range(repeats * 2 + 2):
            on = i % 2 == 0
            cl.autolog(disable=not on)
            model = make()
            fit = _timed(lambda: model.fit(x, y))  # noqa: B023
            whole = _timed(lambda: model.predict(x))  # noqa: B023
            single = min(_timed(lambda: model.predict(one)) for _ in range(20))  # noqa: B023
            cl.flush()
            loop = _timed(lambda: [make().fit(x, y) for _ in range(LOOP)] and cl.flush())  # noqa: B023
            if i >= 2:  # the first pair warms caches and imports
                times["fit"][on].append(fit)
                times["predict (all rows)"][on].append(whole)
                times["predict (one row)"][on].append(single)
                times[f"{LOOP} fits, then flush"][on].append(loop / LOOP)
        for call, t in times.items():
            with_, without = statistics.median(t[True]), statistics.median(t[False])
            results.append({
                "estimator": name, "call": call, "rows": 1 if "one" in call else rows,
                "with_ms": with_ * 1e3, "without_ms": without * 1e3,
                "overhead_pct": (with_ - without) / without * 100, "repeats": repeats,
            })  # fmt: skip
    cl.autolog(disable=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        with cl.workflow("bench-integrations"):
            results = measure(args.rows, args.repeats)
        lost = cl.stats()["lost"]
        cl.shutdown()
    print(f"{'estimator':46} {'call':20} {'without ms':>11} {'with ms':>9} {'overhead':>9}")
    for r in results:
        print(f"{r['estimator']:46} {r['call']:20} {r['without_ms']:11.3f} {r['with_ms']:9.3f} "
              f"{r['overhead_pct']:8.1f}%")  # fmt: skip
    print(f"lost: {lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
