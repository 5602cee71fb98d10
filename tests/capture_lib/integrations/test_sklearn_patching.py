"""cl.autolog() for scikit-learn: reversible, idempotent, never in the way, no task storms."""

from __future__ import annotations

import inspect
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import capture_lib as cl
from capture_lib.integrations import sklearn as sk
from tests.capture_lib.integrations.conftest import Captured


def _run(x: Any, y: Any) -> dict[str, Any]:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    forest = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=2).fit(x, y)
    pipe = make_pipeline(PCA(2, random_state=0), LogisticRegression()).fit(x, y)
    return {
        "proba": forest.predict_proba(x), "score": pipe.score(x, y),
        "decision": pipe.decision_function(x), "pca": pipe[0].transform(x),
        "fit_transform": PCA(2, random_state=0).fit_transform(x),
        "pickles": (pickle.dumps(forest), pickle.dumps(pipe)),
        "returns_self": pipe.fit(x, y) is pipe,
    }  # fmt: skip


def test_results_are_identical_with_and_without_autolog(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    without = _run(x, y)
    cl.init(mode="disk", path=str(tmp_path / "logs"))
    try:
        cl.autolog()
        with_autolog = _run(x, y)
        assert cl.stats()["lost"] == {}
    finally:
        cl.autolog(disable=True)
        cl.shutdown()
    assert without.keys() == with_autolog.keys()
    for key, value in without.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, with_autolog[key]), key
        else:
            assert value == with_autolog[key], key


def _state() -> dict[tuple[type, str], Any]:
    from sklearn.base import BaseEstimator

    return {(k, n): k.__dict__.get(n) for c in sk._subclasses(BaseEstimator) for k in c.__mro__
            for n in (*sk.METHODS, "__init_subclass__", "_get_param_names")}  # fmt: skip


def test_disable_restores_the_original_methods_and_enabling_twice_wraps_once(
    tmp_path: Path,
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    all_estimators()  # every estimator module imported, as a long script would
    before = _state()
    original_fit = LogisticRegression.__dict__["fit"]
    cl.init(mode="off")
    assert cl.autolog()["sklearn"] == "enabled" and cl.autolog()["sklearn"] == "enabled"
    wrapped = LogisticRegression.__dict__["fit"]
    assert wrapped is not original_fit and wrapped.__wrapped__ is original_fit  # once
    assert (
        Pipeline.__dict__["predict_proba"].fn.__wrapped__ is before[(Pipeline, "predict_proba")].fn
    )  # type: ignore[union-attr]
    for name, cls in all_estimators():  # each where its fit is defined
        owner = next((k for k in cls.__mro__ if "fit" in k.__dict__), None)
        assert owner is None or sk._is_ours(owner.__dict__["fit"]), name
    assert "sklearn" in cl.integrations.enabled()  # with the others installed
    cl.autolog(disable=True)
    after = _state()
    assert after == before
    assert cl.integrations.enabled() == []


def _counted(fn: Any, calls: list[Any]) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return fn(*args, **kwargs)

    return counted


def test_parameter_names_are_read_once_and_get_params_answers_the_same(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
    cl.autolog(disable=True)
    plain = pipe.get_params(deep=True)
    cl.autolog()
    assert sk._is_ours(BaseEstimator.__dict__["_get_param_names"])
    assert pipe.get_params(deep=True) == plain
    read = []
    monkeypatch.setattr(inspect, "signature", _counted(inspect.signature, read))
    for _ in range(3):  # a constructor of keyword-only parameters (defaults in a dict)
        assert LogisticRegression(C=2.0).get_params()["C"] == 2.0
    assert len(read) <= 1  # read once, if not before
    monkeypatch.undo()
    names = LogisticRegression._get_param_names()
    names.append("mutated")  # each caller gets a list of its own
    assert "mutated" not in LogisticRegression._get_param_names()

    class Later(BaseEstimator):
        def __init__(self, a: int = 1) -> None:
            self.a = a

    assert Later().get_params() == {"a": 1}

    def init(self: Any, a: int = 1, b: int = 2) -> None:
        self.a, self.b = a, b

    Later.__init__ = init  # type: ignore[method-assign]  # a constructor replaced: read again
    assert Later().get_params() == {"a": 1, "b": 2}

    def reloaded(self: Any, a: int = 1, c: int = 3) -> None:
        self.a, self.c = a, c

    init.__code__ = reloaded.__code__  # changed in place, as IPython's autoreload does
    assert sorted(Later().get_params()) == ["a", "c"]  # (the defaults stay the function's)


def test_classes_defined_before_and_after_enabling_are_patched(captured: Captured) -> None:
    from sklearn.base import BaseEstimator, TransformerMixin

    class Doubler(TransformerMixin, BaseEstimator):
        def fit(self, x: Any, y: Any = None) -> Doubler:
            self.fitted_ = True
            return self

        def transform(self, x: Any) -> Any:
            return np.asarray(x) * 2

    assert sk._is_ours(Doubler.__dict__["fit"]) and sk._is_ours(Doubler.__dict__["transform"])
    out = Doubler().fit_transform([[1.0], [2.0]])
    assert out.tolist() == [[2.0], [4.0]]  # set_output's wrapper still applies inside ours
    (task,) = captured.tasks("training")
    assert task["plan"][1] == "Doubler.fit_transform"
    assert task["used"]["X"]["kind"] == "list"


def test_exclude_switches_an_integration_off_by_name(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    cl.init(mode="off")
    try:
        assert cl.autolog(exclude=["sklearn"])["sklearn"] == "excluded"
        assert not sk._is_ours(LinearRegression.__dict__["fit"])
        cl.autolog()
        assert sk._is_ours(LinearRegression.__dict__["fit"])
        assert cl.autolog(exclude="sklearn")["sklearn"] == "excluded"
        assert not sk._is_ours(LinearRegression.__dict__["fit"])
        assert cl.autolog(exclude=["no-such-framework"])["sklearn"] == "enabled"
    finally:
        cl.autolog(disable=True)


def test_an_integration_failure_is_counted_and_the_fit_succeeds(captured: Captured) -> None:
    from sklearn.base import BaseEstimator

    class Streaming(BaseEstimator):
        def fit(self, rows: Any, y: Any = None) -> Streaming:
            self.n_ = sum(1 for _ in rows)  # a generator: naming it would consume it
            self.unpicklable_ = lambda: None
            return self

        def predict(self, rows: Any) -> Any:
            return [self.n_ for _ in rows]

    est = Streaming()
    assert est.fit(iter(range(5))) is est and est.n_ == 5  # the data was not consumed
    assert est.predict([1, 2]) == [5, 5]
    lost = cl.stats()["lost"]
    assert lost["unhashable_input"] == 1 and lost["integration_error"] == 1  # pickling
    (train,) = captured.tasks("training")
    assert train["used"]["X"]["@data"] == "missing"
    end = next(r for r in captured.records() if r["kind"] == "task_end" and r["n"] == train["n"])
    assert end["generated"]["model"]["digest"].startswith("not named by content")


def test_a_pipeline_is_one_task_with_its_steps_as_sections(captured: Captured) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    x, y = load_iris(return_X_y=True)
    steps = [("minmax", MinMaxScaler()), ("std", StandardScaler()), ("clf", LogisticRegression())]
    Pipeline(steps).fit(x, y).predict(x)
    records = captured.records()
    assert [t["plan"][1] for t in captured.tasks()] == ["Pipeline.fit", "Pipeline.predict"]
    sections = [(r["plan"][2], r["index"]) for r in records if r["kind"] == "section_start"]
    assert sections == [("minmax", 0), ("std", 1), ("clf", 2)]


@pytest.mark.parametrize("backend", ["sequential", "threading"])
def test_a_grid_search_is_one_task_whatever_runs_its_fits(captured: Captured, backend: str) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    grid = {"max_depth": [1, 2, 3, 4, 5], "min_samples_leaf": [1, 2]}  # 10 × 5 folds + refit
    with joblib.parallel_backend(backend, n_jobs=2):
        search = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=5).fit(x, y)
        search.predict(x)
    assert [t["plan"][1] for t in captured.tasks()] == ["GridSearchCV.fit", "GridSearchCV.predict"]
    records = captured.records()
    candidates = [r for r in records if r["kind"] == "section_start"]
    assert [r["index"] for r in candidates] == list(range(10))
    (end,) = [r for r in records if r["kind"] == "task_end" and r["plan"][1] == "GridSearchCV.fit"]
    assert end["generated"]["best_params"] == search.best_params_
    assert len(end["generated"]["candidates"]) == 10


def test_fits_in_many_threads_are_a_task_each(captured: Captured) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import Ridge

    x, y = load_iris(return_X_y=True)
    errors: list[BaseException] = []

    def fit(alpha: float) -> None:
        try:
            for _ in range(5):
                Ridge(alpha=alpha).fit(x, y).predict(x[:3])
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(a,)) for a in (0.1, 1.0, 10.0, 100.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(captured.tasks("training")) == 20 and len(captured.tasks("inference")) == 20
    assert cl.stats()["lost"] == {}


def test_partial_fit_chains_the_models(captured: Captured) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import SGDClassifier

    x, y = load_iris(return_X_y=True)
    model = SGDClassifier(random_state=0)
    model.partial_fit(x[:75], y[:75], classes=np.unique(y))
    first = sk.model_reference(model)
    model.partial_fit(x[75:], y[75:])
    second, first_task = captured.tasks("training")[1], captured.tasks("training")[0]
    assert "previous_model" not in first_task["used"]
    assert second["used"]["previous_model"]["sha256"] == first["sha256"]
    assert sk.model_reference(model)["sha256"] != first["sha256"]


@pytest.fixture
def no_capture() -> Iterator[None]:
    cl.init(mode="off")
    yield
    cl.autolog(disable=True)


def test_off_mode_records_nothing_and_costs_no_hashing(no_capture: None) -> None:
    from sklearn.linear_model import LinearRegression

    cl.autolog()
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    assert sk.calls._registered(model) is None  # nothing was computed for it
