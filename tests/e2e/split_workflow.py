"""A workflow run as its own process by tests/e2e/test_split_topology.py.

usage: python split_workflow.py WORKDIR TRACKER_URL INDEX TASKS EPOCHS

Captures over HTTP to one tracker, in small batches (so that a task's start and end may
travel in different batches), and prints one JSON line: what it captured — its session,
the IRIs of its workflow, task and section executions, how many metrics, and the IRIs of
the data it generated — for the test to find exactly that in the graph.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import capture_lib as cl
from provml.core.ids import content_iri

#: the same content in every workflow: one node of the graph, used by every run
SHARED = b"id,label\n1,a\n2,b\n3,a\n"


def main() -> None:
    workdir, url = Path(sys.argv[1]), sys.argv[2]
    index, tasks, epochs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    workdir.mkdir(parents=True, exist_ok=True)
    cl.init(url=url, mode="http", path=str(workdir / "spool"), batch_size=8, flush_interval=0.05)
    shared, raw, clean = workdir / "shared.csv", workdir / "raw.csv", workdir / "clean.csv"
    shared.write_bytes(SHARED)
    raw.write_text(f"x,y\n{index},1\n,2\n")
    executions: dict[str, list[str]] = {"tasks": [], "sections": []}
    generated: list[str] = []
    metrics = 0
    with cl.workflow("split-topology", params={"index": index}) as wf:
        with wf.task(
            "prepare", used={"labels": cl.file(shared), "raw": cl.file(raw)}, params={"i": index}
        ) as t:
            clean.write_text(f"x,y\n{index},1\n")
            ref = cl.dataset(clean)
            t.generated(clean=ref)
            generated.append(content_iri(ref["sha256"]))
            executions["tasks"].append(t.iri)
        for j in range(tasks):
            model = workdir / f"model-{j}.bin"
            with wf.task(
                "train", stage="training", used={"data": cl.dataset(clean)}, params={"j": j}
            ) as t:
                for epoch in range(epochs):
                    with t.section("epoch", index=epoch) as s:
                        s.metric("loss", 1.0 / (epoch + 1 + j), step=epoch)
                        metrics += 1
                        executions["sections"].append(s.iri)
                t.metric("accuracy", 0.5 + j / 100)
                metrics += 1
                model.write_text(f"workflow {index} model {j}")
                ref = cl.model(model, framework="none")
                t.generated(model=ref)
                generated.append(content_iri(ref["sha256"]))
                executions["tasks"].append(t.iri)
            with wf.task(
                "predict", stage="inference", used={"model": cl.model(model), "x": [index, j]}
            ) as t:
                t.generated(prediction={"y": (index + j) % 2})
                generated.append(t.generated_iri("prediction"))
                executions["tasks"].append(t.iri)
    ok = cl.flush(30)
    print(
        json.dumps(
            {
                "flushed": ok,
                "stats": cl.stats(),
                "workflow": wf.iri,
                **executions,
                "metrics": metrics,
                "generated": generated,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
