"""provml capture_lib in disk-only mode, in the interpreter that runs this script."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import _harness as h

import capture_lib as cl
from provml.core.errors import ValidationError
from provml.core.wire import parse_batch

CAPTURE_KINDS = {"workflow_start", "workflow_end", "task_start", "task_end", "metric"}


def count_records(workdir: str) -> dict[str, Any]:
    """Records in the JSON Lines segments under ``workdir``, by kind.

    Each line is one batch; its records are objects or compact arrays (kind first).
    Every batch is also checked with provml's own wire validator, as ``provml ingest``
    would: ``invalid_batches`` counts the lines it refuses (torn lines included).
    """
    kinds: dict[str, int] = {}
    invalid: list[str] = []
    for name in sorted(glob.glob(os.path.join(workdir, "**", "*.jsonl"), recursive=True)):
        with open(name, "rb") as f:
            for line in f:
                try:
                    parse_batch(line)
                except ValidationError as exc:
                    invalid.append(str(exc))
                try:
                    records = json.loads(line)["records"]
                except (ValueError, KeyError, TypeError):
                    continue
                for record in records:
                    kind = record.get("kind") if isinstance(record, dict) else record[0]
                    kinds[str(kind)] = kinds.get(str(kind), 0) + 1
    return {
        "kinds": kinds,
        "records": sum(n for kind, n in kinds.items() if kind in CAPTURE_KINDS),
        "records_all": sum(kinds.values()),
        "invalid_batches": len(invalid),
        "first_invalid": invalid[0][:300] if invalid else None,
    }


def count_lines(workdir: str) -> dict[str, Any]:
    """Records in the segments, counted without validating them (the memory run's
    millions of records would take minutes to validate)."""
    import orjson

    records = 0
    for name in glob.glob(os.path.join(workdir, "**", "*.jsonl"), recursive=True):
        with open(name, "rb") as f:
            for line in f:
                try:
                    found = orjson.loads(line)["records"]
                except (ValueError, KeyError, TypeError):
                    continue
                records += sum(1 for r in found if r[0] in CAPTURE_KINDS)
    return {"records": records}


def main() -> None:
    args = h.parse_args()
    cl.init(mode="disk", path=args.workdir)
    wf = cl.workflow("bench").start()
    name = h.task_names(args)

    def task() -> None:
        with wf.task(name(), params={"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True}) as t:
            t.metric("loss", 0.5)

    flushed: list[bool] = []

    def finish() -> None:
        wf.end()
        flushed.append(cl.flush(timeout=600))

    if args.rss_every:
        result = h.measure_memory(task, args.tasks, args.rss_every, finish)
    else:
        result = h.measure(task, args.tasks, args.warmup, lambda: cl.flush(timeout=600), finish)
    stats = cl.stats()
    cl.shutdown()
    result.update(count_lines(args.workdir) if args.rss_every else count_records(args.workdir))
    result.update(
        records_expected=3 * (result["tasks"] + result["warmup"]) + 2,
        flush_ok=bool(flushed and flushed[0]),
        stats=stats,
        versions=h.versions("provml", "orjson"),
    )
    h.emit(result)


if __name__ == "__main__":
    main()
