"""The plain-Python baseline: json.dumps + write per record, on the caller's thread."""

from __future__ import annotations

import itertools
import json
import os
import time

import _harness as h


def main() -> None:
    args = h.parse_args()
    path = os.path.join(args.workdir, "naive.jsonl")
    f = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the whole run)
    write, dumps, now, numbers = f.write, json.dumps, time.time, itertools.count(1)
    wf = next(numbers)
    name = h.task_names(args)
    write(dumps({"kind": "workflow_start", "n": wf, "name": "bench", "time": now()}) + "\n")

    def task() -> None:
        n = next(numbers)
        plan = ["bench", name()]
        record = {
            "kind": "task_start",
            "n": n,
            "parent": wf,
            "plan": plan,
            "time": now(),
            "params": {"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True},
        }
        write(dumps(record) + "\n")
        metric = {
            "kind": "metric",
            "n": next(numbers),
            "parent": n,
            "name": "loss",
            "value": 0.5,
            "time": now(),
        }
        write(dumps(metric) + "\n")
        write(dumps({"kind": "task_end", "n": n, "plan": plan, "time": now()}) + "\n")

    def finish() -> None:
        write(dumps({"kind": "workflow_end", "n": wf, "name": "bench", "time": now()}) + "\n")
        f.flush()

    if args.rss_every:
        result = h.measure_memory(task, args.tasks, args.rss_every, finish)
    else:
        result = h.measure(task, args.tasks, args.warmup, f.flush, finish)
    f.close()
    with open(path, encoding="utf-8") as lines:
        records = sum(1 for _ in lines)
    result.update(
        records=records,
        records_expected=3 * (result["tasks"] + result["warmup"]) + 2,
        versions=h.versions(),
    )
    h.emit(result)


if __name__ == "__main__":
    main()
