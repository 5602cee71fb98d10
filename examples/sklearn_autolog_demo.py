"""The demo again, with ``cl.autolog()`` instead of capture code.

The same breast-cancer data that ships inside scikit-learn (no download): a train/test
split, a pipeline (standardise, then logistic regression) tuned by a small grid search,
scored on the test split, pickled to disk, and a few predictions. Not one line of it
names a task: autolog records the search as a training task (its candidates as
sections), the score as an evaluation, each ``predict`` as an inference, and the pickle
file is the model's node (its bytes are what the model was named by). Run it with
``python -m examples.sklearn_autolog_demo [workdir]``.
"""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import dataclass

import capture_lib as cl

WORKFLOW = "breast-cancer-autolog"


@dataclass
class AutologRun:
    workdir: str
    model_path: str = ""
    accuracy: float = 0.0
    best_params: dict[str, object] | None = None


def run(workdir: str, *, seed: int = 42, predictions: int = 3) -> AutologRun:
    """Run the workflow with the current capture_lib set-up (call ``cl.init`` first)."""
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, train_test_split
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            f"the demo needs scikit-learn ({exc}); install it with: pip install 'provml[demo]'"
        ) from None

    os.makedirs(workdir, exist_ok=True)
    result = AutologRun(workdir=workdir, model_path=os.path.join(workdir, "model.pkl"))
    cl.autolog()  # the one line: every fit, score and predict below is captured
    with cl.workflow(WORKFLOW, params={"dataset": "sklearn.datasets.load_breast_cancer"}):
        x, y = load_breast_cancer(return_X_y=True)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
        clf = LogisticRegression(max_iter=1000, random_state=seed)
        pipeline = Pipeline([("scale", StandardScaler()), ("clf", clf)])
        search = GridSearchCV(pipeline, {"clf__C": [0.1, 1.0, 10.0]}, cv=3)
        search.fit(xtr, ytr)
        result.best_params = dict(search.best_params_)
        result.accuracy = float(search.score(xte, yte))
        with open(result.model_path, "wb") as f:
            pickle.dump(search, f)
        for row in xte[:predictions]:
            search.predict(row.reshape(1, -1))
    cl.autolog(disable=True)
    cl.flush()
    return result


if __name__ == "__main__":  # pragma: no cover
    cl.init()
    out = run(sys.argv[1] if len(sys.argv) > 1 else "autolog-demo")
    print(f"accuracy {out.accuracy:.3f}, best {out.best_params}, model {out.model_path}")
