"""Flowcept (PyPI ``flowcept``) in its offline mode: no MongoDB, LMDB, Redis or MQ.

Settings are the package's defaults plus its ``full-offline`` profile
(``project.db_flush_mode: offline``, ``project.dump_buffer.enabled: true``, MQ, key-value
store and databases disabled), with the dump file inside the work directory. In this
mode a task message is appended to an in-memory list; nothing reaches the disk before
``Flowcept.stop()``, which writes the whole buffer as JSON Lines.
"""

from __future__ import annotations

import json
import os
import sys

import _harness as h


def write_settings(workdir: str) -> str:
    """A settings file for offline mode (JSON is YAML), exported before flowcept loads."""
    path = os.path.join(workdir, "flowcept-settings.yaml")
    settings = {
        "log": {"log_file_level": "disable", "log_stream_level": "disable"},
        "project": {
            "db_flush_mode": "offline",
            "dump_buffer": {"enabled": True, "path": os.path.join(workdir, "buffer.jsonl")},
            "enrich_messages": False,
        },
        "telemetry_capture": {},
        "mq": {"enabled": False},
        "kv_db": {"enabled": False},
        "databases": {"mongodb": {"enabled": False}, "lmdb": {"enabled": False}},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1)
    return path


def main() -> None:
    args = h.parse_args()
    name = h.task_names(args)
    os.environ["FLOWCEPT_SETTINGS_PATH"] = write_settings(args.workdir)
    os.environ.pop("FLOWCEPT_USE_DEFAULT", None)
    from flowcept import Flowcept, FlowceptTask
    from flowcept.configs import DUMP_BUFFER_PATH

    # The warm-up is its own Flowcept session, dumped by its stop(); the timed session
    # appends to the same file (delete_buffer_file=False).
    sessions = [Flowcept(workflow_name="bench-warmup").start()]

    def task() -> None:
        with FlowceptTask(
            activity_id=name(), used={"lr": 0.1, "epochs": 3, "opt": "sgd", "shuffle": True}
        ) as t:
            t.end(generated={"loss": 0.5})

    def drain() -> None:
        sessions[-1].stop()
        sessions.append(Flowcept(workflow_name="bench", delete_buffer_file=False).start())

    result = h.measure(task, args.tasks, args.warmup, drain, lambda: sessions[-1].stop())
    with open(DUMP_BUFFER_PATH, "rb") as f:
        records = sum(1 for line in f if line.strip())
    result.update(
        records=records,
        records_expected=args.tasks + args.warmup + 4,
        dump_path=DUMP_BUFFER_PATH,
        versions=h.versions("flowcept"),
    )
    h.emit(result)


if __name__ == "__main__":
    sys.exit(main())
