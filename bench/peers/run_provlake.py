"""The ProvLake client (PyPI ``provlake``) in its default disk-only (offline) mode.

Without a ``service_url``, ``ProvLake.get_persister`` returns a ``ManagedPersister``
that writes each bag of records (``PROV_BAG_SIZE``, default 1 record) as one JSON array
line to ``prov-<uuid4>.log`` through a ``logging.FileHandler``, on the caller's thread.
A task is a ``ProvTask`` (a ``Generate`` record when built), ``begin()`` (``Input``)
and ``end(outputs)`` (``Output``); ``ProvWorkflow.end()`` closes the persister.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import _harness as h
from provlake import ProvLake
from provlake.capture import ProvTask, ProvWorkflow


def main() -> None:
    args = h.parse_args()
    name = h.task_names(args)
    state: dict[str, Any] = {}

    def begin(name: str) -> None:
        persister = ProvLake.get_persister(log_dir=args.workdir)  # no service_url: offline
        state["persister"] = persister
        state["wf"] = ProvWorkflow(persister, name).begin()

    def task() -> None:
        t = ProvTask(
            state["persister"],
            name(),
            prov_workflow=state["wf"],
            input_args={"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True},
        )
        t.begin()
        t.end({"loss": 0.5})

    def drain() -> None:  # the warm-up is its own workflow run, in its own file
        state["wf"].end()
        begin("bench")

    begin("bench-warmup")
    result = h.measure(task, args.tasks, args.warmup, drain, lambda: state["wf"].end())
    records = 0
    for name in glob.glob(os.path.join(args.workdir, "prov-*.log")):
        with open(name, encoding="utf-8") as f:
            records += sum(len(json.loads(line)) for line in f if line.strip())
    result.update(
        records=records,
        records_expected=3 * (args.tasks + args.warmup) + 4,
        bag_size=int(os.getenv("PROV_BAG_SIZE", "1")),
        versions=h.versions("provlake", "requests-futures"),
    )
    h.emit(result)


if __name__ == "__main__":
    main()
