"""An instrumented workflow, run as its own process by the end-to-end tests.

usage: python workflow_script.py WORKDIR http URL | disk LOGDIR   [lr]
Prints one JSON line: the hashes of its files and the id of its prediction.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import capture_lib as cl


def main() -> None:
    workdir, mode, target = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    lr = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    workdir.mkdir(parents=True, exist_ok=True)
    if mode == "http":
        cl.init(url=target, mode="http", path=str(workdir / "spool"))
    else:
        cl.init(mode="disk", path=target)
    raw, clean, model = workdir / "raw.csv", workdir / "clean.csv", workdir / "model.pkl"
    raw.write_text("x,y\n1,2\n,3\n4,5\n")
    with cl.workflow("credit-scoring", params={"owner": "risk-team"}) as wf:
        with wf.task("clean", used={"raw": cl.file(raw)}, params={"drop_na": True}) as t:
            clean.write_text("x,y\n1,2\n4,5\n")
            t.generated(clean=cl.file(clean))
        with wf.task(
            "train", stage="training", used={"data": cl.file(clean)}, params={"lr": lr, "epochs": 3}
        ) as t:
            for epoch in range(3):
                with t.section("epoch", index=epoch) as s:
                    s.metric("loss", 0.5 / (epoch + 1))
            model.write_bytes(f"model trained with lr={lr}".encode())
            t.generated(model=cl.model(model, framework="sklearn"))
        with wf.task(
            "predict", stage="inference", used={"model": cl.model(model), "input": {"x": [1, 2]}}
        ) as t:
            t.generated(prediction={"y": 1})
    ok = cl.flush(30)
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    print(
        json.dumps(
            {
                "flushed": ok,
                "stats": cl.stats(),
                "raw": sha(raw),
                "clean": sha(clean),
                "model": sha(model),
                "prediction": t.generated_iri("prediction"),
            }
        )
    )


if __name__ == "__main__":
    main()
