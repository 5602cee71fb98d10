"""What cl.autolog() costs XGBoost and LightGBM: the same calls with and without it.

On a 10,000-row, 20-column table (``make_classification``; 8,000 rows to train, 2,000
to validate):

* the **sklearn wrappers** (``XGBClassifier``, ``LGBMClassifier``, 100 trees of depth 6 /
  31 leaves, one thread): ``fit`` with an ``eval_set`` (captured by the scikit-learn
  integration: the table hashed, the fitted model pickled and hashed, the evaluation
  curve as sections). The target (issue 13): at most 5 %;
* the **native training** (``xgboost.train``, ``lightgbm.train``, 100 rounds, evaluated on
  the validation set every round): the whole call, and per boosting round (the call's
  time divided by the rounds: what the callback adds to each round, one metric per
  evaluation result and a section for a round kept, plus the call's fixed cost, the data
  named and the Booster pickled, spread over the rounds). The target: at most 1 %;
* building the ``DMatrix`` / ``Dataset`` (autolog names a DMatrix's arrays by content when
  it is built).

Each call is timed ``--repeats`` times with autolog on and off, interleaved (on, off, on,
off …) so that the machine's drift touches both alike; the figures are medians. Capture
goes to disk (``mode="disk"`` in a temporary directory); the records are flushed after
each timed call, outside the timing.

    python bench/integrations_boost.py [--repeats R] [--rows N] [--rounds K] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python bench/integrations_boost.py``
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


def _calls(x: Any, y: Any, rounds: int) -> dict[str, Callable[[], Any]]:
    import lightgbm as lgb
    import xgboost as xgb

    n = len(x) * 4 // 5
    xt, yt, xv, yv = x[:n], y[:n], x[n:], y[n:]
    xgb_params = {"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "verbosity": 0}
    lgb_params = {"objective": "binary", "num_leaves": 31, "num_threads": 1, "verbose": -1}

    def xgb_native() -> Any:
        dtrain, dval = xgb.DMatrix(xt, label=yt), xgb.DMatrix(xv, label=yv)
        t = time.perf_counter()
        xgb.train(xgb_params, dtrain, rounds, evals=[(dval, "val")], verbose_eval=False)
        return time.perf_counter() - t

    def lgb_native() -> Any:
        train = lgb.Dataset(xt, label=yt)
        valid = lgb.Dataset(xv, label=yv, reference=train)
        t = time.perf_counter()
        lgb.train(lgb_params, train, rounds, valid_sets=[valid])
        return time.perf_counter() - t

    def timed(fn: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return run

    return {
        "XGBClassifier.fit": timed(lambda: xgb.XGBClassifier(
            n_estimators=rounds, max_depth=6, n_jobs=1).fit(xt, yt, eval_set=[(xv, yv)],
                                                            verbose=False)),
        "LGBMClassifier.fit": timed(lambda: lgb.LGBMClassifier(
            n_estimators=rounds, n_jobs=1, verbose=-1).fit(xt, yt, eval_X=xv, eval_y=yv)),
        "xgboost.train": xgb_native,
        "lightgbm.train": lgb_native,
        "DMatrix(X, label=y)": timed(lambda: xgb.DMatrix(xt, label=yt)),
        "Dataset(X, label=y)": timed(lambda: lgb.Dataset(xt, label=yt)),
    }  # fmt: skip


def measure(rows: int, rounds: int, repeats: int) -> list[dict[str, Any]]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=20, random_state=0)
    calls = _calls(x, y, rounds)
    times: dict[str, dict[bool, list[float]]] = {name: {True: [], False: []} for name in calls}
    for i in range(repeats * 2 + 2):
        on = i % 2 == 0
        cl.autolog(disable=not on)
        for name, call in calls.items():
            elapsed = call()
            cl.flush()
            if i >= 2:  # the first pair warms caches and imports
                times[name][on].append(elapsed)
    cl.autolog(disable=True)
    results = []
    for name, t in times.items():
        with_, without = statistics.median(t[True]), statistics.median(t[False])
        native = name.endswith(".train")
        results.append({
            "call": name, "rows": rows, "rounds": rounds if native or "fit" in name else None,
            "with_ms": with_ * 1e3, "without_ms": without * 1e3,
            "per_round_ms": (with_ - without) * 1e3 / rounds if native else None,
            "overhead_pct": (with_ - without) / without * 100, "repeats": repeats,
        })  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        with cl.workflow("bench-integrations-boost"):
            results = measure(args.rows, args.rounds, args.repeats)
        lost = cl.stats()["lost"]
        cl.shutdown()
    print(f"{'call':22} {'without ms':>11} {'with ms':>9} {'overhead':>9} {'per round':>12}")
    for r in results:
        per_round = f"{r['per_round_ms']:+.3f} ms" if r["per_round_ms"] is not None else ""
        print(f"{r['call']:22} {r['without_ms']:11.2f} {r['with_ms']:9.2f} "
              f"{r['overhead_pct']:8.1f}% {per_round:>12}")  # fmt: skip
    print(f"lost: {lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
