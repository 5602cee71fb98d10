"""Workflows captured with capture_lib for the browser's endpoints, loaded by a manager.

* ``pipeline`` by alice, run twice (lr 0.05 and 0.5): clean ``raw.csv`` → train (three
  epochs, loss and accuracy each) → a model; the second run's evaluation fails.
* ``pipeline`` by bob (lr 0.01), from the same ``raw.csv``: down from it shows both teams.
* ``island`` by carol: its own data, nothing shared with the others.
* ``serve`` by alice: 60 predictions from the first model (a fan-out to fold), and one
  metric of the same task.
* ``hpc`` by dave in a Slurm job as MPI rank 0 of 2 (its environment: job and MPI).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import capture_lib as cl
from capture_lib import refs
from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.ids import content_iri
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines

PREDICTIONS = 60
SLURM = {
    "SLURM_JOB_ID": "4711",
    "SLURM_CLUSTER_NAME": "hal",
    "SLURM_JOB_NODELIST": "n[1-2]",
    "PMI_RANK": "0",
    "PMI_SIZE": "2",
}


@dataclass
class World:
    store: OxigraphStore
    tmp: Path
    runs: dict[str, str] = field(default_factory=dict)  # label → run IRI
    sha: dict[str, str] = field(default_factory=dict)  # label → content SHA-256

    def iri(self, label: str) -> str:
        return content_iri(self.sha[label])


def _pipeline(w: World, label: str, raw: Path, lr: float, fail: bool = False) -> None:
    with contextlib.suppress(RuntimeError):  # the failed run's error: recorded, not raised
        _pipeline_run(w, label, raw, lr, fail)
    w.sha[f"{label}-clean"] = refs.sha256_file(str(w.tmp / label / "clean.csv"))[0]
    w.sha[f"{label}-model"] = refs.sha256_file(str(w.tmp / label / "model.pkl"))[0]


def _pipeline_run(w: World, label: str, raw: Path, lr: float, fail: bool) -> None:
    home = w.tmp / label
    home.mkdir()
    clean, model = home / "clean.csv", home / "model.pkl"
    with cl.workflow("pipeline", params={"team": label}) as wf:
        w.runs[label] = wf.iri
        with wf.task("clean", used={"raw": cl.file(raw)}, params={"drop_na": True}) as t:
            clean.write_text(raw.read_text() + f"# cleaned by {label}\n")
            t.generated(clean=cl.file(clean))
        used = {"data": cl.dataset(clean)}
        with wf.task("train", stage="training", used=used, params={"lr": lr}) as t:
            for epoch in range(3):
                with t.section("epoch", index=epoch) as s:
                    s.metric("loss", 1.0 / (epoch + 1) + lr)
                    s.metric("accuracy", 0.5 + 0.1 * epoch + lr / 10)
            model.write_bytes(f"model {label} {lr}".encode())
            t.generated(model=cl.model(model, framework="sklearn"))
        with wf.task("evaluate", stage="evaluation", used={"model": cl.model(model)}) as t:
            t.metric("accuracy", 0.8 + lr / 10)
            if fail:
                raise RuntimeError("the test split is empty")


def build(tmp: Path) -> World:
    w = World(OxigraphStore(None), tmp)
    logs = tmp / "logs"
    raw = tmp / "raw.csv"
    raw.write_text("x,y\n1,2\n3,4\n")
    w.sha["raw"] = refs.sha256_file(str(raw))[0]
    try:
        cl.init(mode="disk", path=str(logs), user="alice")
        _pipeline(w, "alice-1", raw, 0.05)
        _pipeline(w, "alice-2", raw, 0.5, fail=True)
        with cl.workflow("serve") as wf:
            w.runs["serve"] = wf.iri
            model = cl.model(tmp / "alice-1" / "model.pkl")
            with wf.task("predict", stage="inference", used={"model": model}) as t:
                t.generated(**{f"p{i:03d}": {"label": i % 2, "row": i} for i in range(PREDICTIONS)})
                t.metric("latency", 0.25)
        cl.init(mode="disk", path=str(logs), user="bob")
        _pipeline(w, "bob", raw, 0.01)
        cl.init(mode="disk", path=str(logs), user="carol")
        own = tmp / "own.csv"
        own.write_text("a,b\n9,9\n")
        w.sha["own"] = refs.sha256_file(str(own))[0]
        with cl.workflow("island") as wf:
            w.runs["island"] = wf.iri
            with wf.task("clean", used={"raw": cl.file(own)}) as t:
                out = tmp / "own-clean.csv"
                out.write_text("a,b\n9,9\n# clean\n")
                t.generated(clean=cl.file(out))
        with pytest.MonkeyPatch.context() as mp:
            for key, value in SLURM.items():
                mp.setenv(key, value)
            cl.init(mode="disk", path=str(logs), user="dave")
            with cl.workflow("hpc", params={"ranks": 2}) as wf:
                w.runs["hpc"] = wf.iri
                with wf.task("simulate", params={"steps": 10}):
                    pass
            assert cl.flush()
    finally:
        cl.shutdown()
    manager = Manager(w.store)
    for f in expand([str(logs)]):
        for line in read_lines(f):
            assert line.error is None
            manager.apply(resolve_batch(parse_batch(line.body)))
    return w


def demo(tmp: Path, store: OxigraphStore) -> Any:
    """The sklearn demo, captured into ``store`` too."""
    from examples import sklearn_demo

    logs = tmp / "demo-logs"
    cl.init(mode="disk", path=str(logs), user="demo")
    try:
        result = sklearn_demo.run(str(tmp / "demo"), epochs=4, predictions=3)
        assert cl.flush()
    finally:
        cl.shutdown()
    manager = Manager(store)
    for f in expand([str(logs)]):
        for line in read_lines(f):
            manager.apply(resolve_batch(parse_batch(line.body)))
    return result
