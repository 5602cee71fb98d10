"""A realistic multi-workflow scenario, captured with capture_lib for the question tests.

Two raw sources (one under a non-commercial licence), two curation runs making dataset
versions 1 and 2, four runs of the "credit-model" experiment (one failed), a fine-tuned
model, and a serving workflow whose feature code changes between two predictions, one
of which feeds the fine-tuned model (a composed model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import capture_lib as cl
from provml.core.ids import content_iri


@dataclass
class Scenario:
    logs: Path
    sha: dict[str, str] = field(default_factory=dict)  # name → content SHA-256
    iri: dict[str, str] = field(default_factory=dict)  # name → IRI in the graph
    started: float = 0.0


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def build(tmp: Path) -> Scenario:
    s = Scenario(logs=tmp / "logs", started=time.time() - 1)
    raw_a = _write(tmp / "raw.csv", "id,income,default\n1,100,0\n2,,1\n3,300,0\n")
    raw_b = _write(tmp / "survey.csv", "id,score\n1,0.5\n3,0.7\n")
    v1 = _write(tmp / "clean_v1.csv", "id,income,default\n1,100,0\n3,300,0\n")
    v2 = _write(tmp / "clean_v2.csv", "id,income,score,default\n1,100,0.5,0\n3,300,0.7,0\n")
    feat1 = _write(tmp / "features.py", "def features(row):\n    return [row['income']]\n")

    def ref_raw_a() -> dict[str, Any]:
        return cl.dataset(raw_a, source="bank-export", license="CC-BY-4.0")

    def ref_raw_b() -> dict[str, Any]:
        return cl.dataset(raw_b, source="partner-survey", license="CC-BY-NC-4.0")

    # curation, by alice: version 1 from the bank export, version 2 adds the survey
    cl.init(mode="disk", path=str(s.logs), user="alice")
    with (
        cl.workflow("curation") as wf,
        wf.task("clean", used={"raw": ref_raw_a()}, params={"drop_na": True}) as t,
    ):
        t.generated(clean=cl.dataset(v1, version="1", split="train", name="credit-clean"))
    with (
        cl.workflow("curation") as wf,
        wf.task(
            "merge",
            used={"raw": ref_raw_a(), "survey": ref_raw_b()},
            params={"drop_na": True, "join": "id"},
        ) as t,
    ):
        t.generated(clean=cl.dataset(v2, version="2", split="train", name="credit-clean"))
    cl.flush()

    def train_run(
        name: str, data: Path, version: str, lr: float, accuracy: float | None, user: str
    ) -> None:
        cl.init(mode="disk", path=str(s.logs), user=user)
        model_path = tmp / f"{name}.pkl"
        model_path.write_bytes(f"model {name} lr={lr} data={version}".encode())
        try:
            with cl.workflow("credit-model") as wf:
                s.iri[f"{name}-run"] = wf.iri
                with wf.task(
                    "train",
                    stage="training",
                    used={"data": cl.dataset(data, version=version), "features": cl.code(feat1)},
                    params={"lr": lr, "epochs": 3, "seed": 7},
                ) as t:
                    s.iri[f"{name}-train"] = t.iri
                    for epoch in range(3):
                        with t.section("epoch", index=epoch) as sec:
                            sec.metric("loss", round(0.9 - 0.2 * epoch, 2))
                            sec.metric("accuracy", round(0.6 + 0.05 * epoch, 2))
                    if accuracy is None:
                        raise RuntimeError("out of memory")
                    t.generated(model=cl.model(model_path, framework="sklearn", version=name))
                with wf.task(
                    "evaluate", stage="evaluation", used={"model": cl.model(model_path)}
                ) as t:
                    t.metric("accuracy", accuracy)
        except RuntimeError:
            pass
        s.sha[name] = cl.file(model_path)["sha256"]
        cl.flush()

    train_run("m1", v1, "1", 0.1, 0.81, "alice")
    train_run("m2", v2, "2", 0.1, 0.86, "bob")
    train_run("m3", v2, "2", 0.01, 0.84, "bob")
    train_run("m-failed", v2, "2", 0.5, None, "bob")

    # fine-tuning m2 into m4
    cl.init(mode="disk", path=str(s.logs), user="carol")
    m2, m4 = tmp / "m2.pkl", tmp / "m4.pkl"
    m4.write_bytes(b"model m4 fine-tuned from m2")
    with (
        cl.workflow("ensemble") as wf,
        wf.task(
            "finetune",
            stage="training",
            used={"base": cl.model(m2), "data": cl.dataset(v2, version="2")},
            params={"lr": 0.001},
        ) as t,
    ):
        t.generated(model=cl.model(m4, framework="sklearn", version="m4"))
    s.sha["m4"] = cl.file(m4)["sha256"]

    # serving: p1 with the original features, p2 after they changed; p3 = m4(p1)
    with cl.workflow("serving"):
        p1 = cl.inference(
            model=cl.model(m2),
            inputs={"income": 100},
            outputs={"default": 0},
            used={"features": cl.code(feat1)},
        )
        s.sha["features-1"] = cl.code(feat1)["sha256"]
        feat2 = _write(tmp / "features2.py", "def features(row):\n    return [row['income'] * 2]\n")
        p2 = cl.inference(
            model=cl.model(m2),
            inputs={"income": 300},
            outputs={"default": 1},
            used={"features": cl.code(feat2)},
        )
        s.sha["features-2"] = cl.code(feat2)["sha256"]
        p3 = cl.inference(model=cl.model(m4), inputs=p1, outputs={"default": 0})
    assert p1 and p2 and p3
    s.iri.update(p1=p1["@entity"], p2=p2["@entity"], p3=p3["@entity"])
    cl.flush()
    cl.shutdown()
    for name, path in (("raw-a", raw_a), ("raw-b", raw_b), ("v1", v1), ("v2", v2)):
        s.sha[name] = cl.file(path)["sha256"]
    for name, sha in list(s.sha.items()):
        s.iri.setdefault(name, content_iri(sha))
    return s
