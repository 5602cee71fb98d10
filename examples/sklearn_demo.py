"""The demo: a real scikit-learn workflow, captured with capture_lib.

It uses the breast-cancer dataset that ships inside scikit-learn (no download):
curation (drop duplicates, standardise), a train/test split, training an
``SGDClassifier`` epoch by epoch with ``partial_fit`` (loss and accuracy per epoch),
evaluation on the test split, the model pickled to disk, and a few predictions
captured as inference. Every file it writes goes under ``workdir``.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import capture_lib as cl

WORKFLOW = "breast-cancer-classifier"


@dataclass
class DemoRun:
    workdir: str
    model_sha256: str = ""
    model_path: str = ""
    train_sha256: str = ""
    predictions: list[str] = field(default_factory=list)
    accuracy: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def run(workdir: str, *, epochs: int = 8, seed: int = 42, predictions: int = 3) -> DemoRun:
    """Run the workflow with the current capture_lib set-up (call ``cl.init`` first)."""
    try:
        import numpy as np
        import sklearn
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import SGDClassifier
        from sklearn.metrics import accuracy_score, f1_score, log_loss
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            f"the demo needs scikit-learn ({exc}); install it with: pip install 'provml[demo]'"
        ) from None

    os.makedirs(workdir, exist_ok=True)
    path = lambda name: os.path.join(workdir, name)  # noqa: E731
    result = DemoRun(workdir=workdir)
    hp = {
        "loss": "log_loss",
        "alpha": 1e-4,
        "learning_rate": "optimal",
        "epochs": epochs,
        "seed": seed,
    }
    result.hyperparameters = hp

    data = load_breast_cancer()
    header = ",".join([*(n.replace(" ", "_") for n in data.feature_names), "target"])
    raw = np.column_stack([data.data, data.target])
    np.savetxt(path("raw.csv"), raw, delimiter=",", header=header, comments="", fmt="%.6g")

    with cl.workflow(
        WORKFLOW,
        params={"dataset": "sklearn.datasets.load_breast_cancer", "sklearn": sklearn.__version__},
    ) as wf:
        with wf.task(
            "curate",
            used={"raw": cl.dataset(path("raw.csv"), source="scikit-learn")},
            params={"drop_duplicates": True, "scaler": "standard"},
        ) as t:
            table = np.unique(raw, axis=0)
            x, y = table[:, :-1], table[:, -1].astype(int)
            x = StandardScaler().fit_transform(x)
            curated = np.column_stack([x, y])
            np.savetxt(path("curated.csv"), curated, delimiter=",", header=header, comments="")
            t.metric("rows", len(curated))
            t.generated(curated=cl.dataset(path("curated.csv"), version="1"))

        with wf.task(
            "split",
            used={"curated": cl.dataset(path("curated.csv"))},
            params={"test_size": 0.25, "seed": seed, "stratify": True},
        ) as t:
            train, test = train_test_split(
                curated, test_size=0.25, random_state=seed, stratify=curated[:, -1]
            )
            np.savetxt(path("train.csv"), train, delimiter=",", header=header, comments="")
            np.savetxt(path("test.csv"), test, delimiter=",", header=header, comments="")
            train_ref = cl.dataset(path("train.csv"), split="train")
            t.generated(train=train_ref, test=cl.dataset(path("test.csv"), split="test"))
        result.train_sha256 = train_ref.get("sha256", "")

        model = SGDClassifier(loss="log_loss", alpha=hp["alpha"], random_state=seed)
        xtr, ytr = train[:, :-1], train[:, -1].astype(int)
        with wf.task("train", stage="training", used={"train": train_ref}, params=hp) as t:
            for epoch in range(epochs):
                with t.section("epoch", index=epoch) as s:
                    model.partial_fit(xtr, ytr, classes=np.array([0, 1]))
                    s.metric("loss", float(log_loss(ytr, model.predict_proba(xtr))))
                    s.metric("accuracy", float(accuracy_score(ytr, model.predict(xtr))))
            with open(path("model.pkl"), "wb") as f:
                pickle.dump(model, f)
            model_ref = cl.model(
                path("model.pkl"),
                framework="scikit-learn",
                framework_version=sklearn.__version__,
                algorithm="SGDClassifier",
            )
            t.generated(model=model_ref)
        result.model_sha256 = model_ref.get("sha256", "")
        result.model_path = path("model.pkl")

        xte, yte = test[:, :-1], test[:, -1].astype(int)
        with wf.task(
            "evaluate",
            stage="evaluation",
            used={"model": model_ref, "test": cl.dataset(path("test.csv"))},
        ) as t:
            predicted = model.predict(xte)
            result.accuracy = float(accuracy_score(yte, predicted))
            t.metric("accuracy", result.accuracy)
            t.metric("f1", float(f1_score(yte, predicted)))

        for row in xte[:predictions]:
            features = [round(float(v), 6) for v in row]
            with wf.task(
                "predict",
                stage="inference",
                used={"model": model_ref, "input": {"features": features}},
            ) as t:
                label = int(model.predict(row.reshape(1, -1))[0])
                proba = float(model.predict_proba(row.reshape(1, -1))[0][label])
                t.generated(prediction={"label": label, "probability": round(proba, 6)})
                result.predictions.append(t.generated_iri("prediction"))
    cl.flush()
    return result
