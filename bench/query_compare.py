"""Two texts of one named question, timed against each other on an embedded store.

    python bench/query_compare.py STORE_DIR SOURCES.json OLD.rq NEW.rq [--count 45]

``SOURCES.json``: a JSON list of parameter values (for ``downstream``, ``was-used``: source
IRIs; bench/query.py's and bench/query_deep.py's ``meta.json`` list them). Each value is
asked with the old and then the new text, once untimed and once timed, in the same
process, so both see the same cache. Prints p50 / p95 of each and the rows. The store is
opened read-only. bench/QUERY.md, "Before and after", was made with it, the old text
being ``git show b4509bb:query/queries/downstream.rq``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pyoxigraph

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
from provml.core.vocab import PREFIXES  # noqa: E402
from query.questions import Question, _parse  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store")
    p.add_argument("values")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--count", type=int, default=45)
    args = p.parse_args()
    store = pyoxigraph.Store.read_only(args.store)
    values = json.loads(Path(args.values).read_text())[: args.count]
    texts: dict[str, Question] = {
        k: _parse(Path(f).stem, Path(f).read_text())
        for k, f in (("old", args.old), ("new", args.new))
    }
    ms: dict[str, list[float]] = {k: [] for k in texts}
    rows: list[int] = []
    for value in values:
        for k, q in texts.items():
            text = q.text({q.params[0].name: value})
            list(store.query(text, prefixes=PREFIXES))
            t0 = time.perf_counter()
            n = len(list(store.query(text, prefixes=PREFIXES)))
            ms[k].append((time.perf_counter() - t0) * 1000)
        rows.append(n)
    for k, v in ms.items():
        v = sorted(v)
        p95 = v[min(len(v) - 1, round(0.95 * len(v) + 0.5) - 1)]
        print(f"{k}: p50 {statistics.median(v):.2f} ms, p95 {p95:.2f} ms over {len(v)} values; "
              f"rows median {statistics.median(rows):g}, max {max(rows)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
