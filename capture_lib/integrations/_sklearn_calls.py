"""What one call of a patched scikit-learn method records (see capture_lib.integrations.sklearn).

A training call (``fit``, ``fit_transform``, ``fit_predict``, ``partial_fit``) is a task
of stage ``training`` named ``<Class>.<method>``:

* parameters: ``get_params(deep=True)`` made JSON-safe (a nested estimator as its class
  name, a function by its qualified name, a numpy value as the number it is, any other
  object as its type's name), so a Pipeline's ``clf__C`` is there beside ``steps``;
* used: ``X``, ``y`` and ``sample_weight`` when given, named by content
  (:func:`capture_lib.integrations.digest.data_reference`, whole up to
  :data:`TRAIN_HASH_LIMIT` bytes, sampled past it); for ``partial_fit`` (and ``fit`` with
  ``warm_start``) of an estimator fitted before, that model as ``previous_model``; a
  boosting wrapper's evaluation sets (``eval_set``, LightGBM's ``eval_X``/``eval_y``) as
  ``eval_set_<i>_X``/``eval_set_<i>_y``;
* generated: the fitted estimator as ``model`` (``{"@data": "model"}`` named by the
  SHA-256 of its pickle, with framework, version and algorithm), and for
  ``fit_transform`` its output (``output``, named by content: fitting a model on it later
  joins the lineage); for a search, ``best_params`` and its ``candidates``;
* metrics: ``n_iter``, ``oob_score``, ``best_score``, ``best_iteration`` when the estimator
  has them; its curves (``loss_curve_``, ``validation_scores_``, ``train_score_``,
  ``validation_score_``, a boosting wrapper's ``evals_result_``)
  as sections ``iteration`` (at most :data:`MAX_SECTIONS`, evenly spread, recorded when the
  fit returns); a search's candidates as sections ``candidate`` with their mean and std
  test (and train) scores.

An inference call is a task of stage ``inference`` that used ``model`` and ``X`` (by
digest, whole up to :data:`INFER_HASH_LIMIT` bytes) and generated ``prediction``: an
inline value with the output's ``sha256``, ``shape``, ``dtype`` and, for at most
:data:`PREDICTION_VALUES` values, the ``values`` (``transform`` generates ``output``,
data named by content, instead). ``score`` is a task of stage ``evaluation`` that used
``model``, ``X`` and ``y`` with one metric: ``accuracy`` for a classifier, ``r2`` for a
regressor, ``score`` otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import logging
import math
import os
import sys
import threading
import weakref
from typing import Any

from capture_lib import api, deferred, runtime
from capture_lib.integrations import digest
from capture_lib.refs import HOST, reference
from provml.core.ids import value_sha256

log = logging.getLogger("capture_lib.integrations.sklearn")

TRAIN = ("fit", "fit_transform", "fit_predict", "partial_fit")
INFER = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
EVAL = ("score",)
METHODS = TRAIN + INFER + EVAL
#: training data is hashed whole up to this many bytes, sampled past it (digest.py)
TRAIN_HASH_LIMIT = 256 << 20
#: inference inputs and outputs: a smaller bound, a prediction being cheaper than a fit
INFER_HASH_LIMIT = 16 << 20
#: arrays and frames of numbers of at least this many bytes are copied and named on the
#: capture worker (capture_lib.deferred: within its budget of copies waiting)
DEFER_BYTES = 64 << 10
#: a model whose pickle is larger is named by its training, not by content
MODEL_HASH_LIMIT = 1 << 30
#: sections (steps, iterations, candidates) recorded at most per task
MAX_SECTIONS = 100
#: a prediction of at most this many values is recorded with them
PREDICTION_VALUES = 100
#: ``cl.stats()["lost"]`` reasons
INTEGRATION_ERROR = "integration_error"
UNHASHABLE = "unhashable_input"

_FRAMEWORKS = {"sklearn": "scikit-learn"}
_CURVES = (("loss_curve_", "loss"), ("validation_scores_", "validation_score"),
           ("train_score_", "train_score"), ("validation_score_", "validation_score"))  # fmt: skip
_SCALARS = (
    ("n_iter_", "n_iter"),
    ("oob_score_", "oob_score"),
    ("best_score_", "best_score"),
    ("best_iteration_", "best_iteration"),
    ("best_iteration", "best_iteration"),
)


class _State:
    active = False


state = _State()
#: the outermost captured call running in this context (or a quiet frame inside a section)
current: contextvars.ContextVar[Any] = contextvars.ContextVar("provml_sklearn", default=None)
_lock = threading.Lock()
#: id(estimator) → (weak reference to it, its model reference)
_models: dict[int, tuple[Any, dict[str, Any]]] = {}
#: frames carried to joblib workers, by key
_shared: dict[int, Any] = {}
_opened: list[api.Workflow] = []
_warned: set[str] = set()


def integration_failed(where: str, reason: str = INTEGRATION_ERROR, message: str = "") -> None:
    """Count a failure of the integration (call in an ``except`` block); log it once."""
    runtime.count_lost(reason)
    first = where not in _warned
    _warned.add(where)
    log.log(logging.WARNING if first else logging.DEBUG,
            "provml autolog: %s failed%s (the call proceeds; counted in "
            "cl.stats()['lost'][%r])", where, f": {message}" if message else "", reason,
            exc_info=first and not message)  # fmt: skip


def reset(token: contextvars.Token[Any]) -> None:
    try:
        current.reset(token)
    except ValueError:  # reset in another context: leave this one clean
        current.set(None)


def share(frame: Any) -> int:
    key = id(frame)
    with _lock:
        _shared[key] = frame
    return key


def shared(key: Any) -> Any:
    return _shared.get(key) if key is not None else None


def end_opened_workflows() -> None:
    with _lock:
        opened, _opened[:] = list(_opened), []
    for wf in opened:
        wf.end()


def running_workflow() -> api.Workflow:
    """The running ``with cl.workflow(…)`` of the current capture, else the script's
    default workflow (what every integration's task belongs to)."""
    client = runtime.get_client()
    wf = api.current.get()
    if wf is not None and wf.client is client and not wf.ended:
        return wf
    return runtime.current_workflow()


def _workflow() -> api.Workflow:
    """:func:`running_workflow`, remembering a default one it opened (autolog's disable
    ends it)."""
    wf = running_workflow()
    if wf is api.current.get():
        return wf
    with _lock:
        if wf not in _opened:
            _opened.append(wf)
    return wf


class _Quiet:
    """Inside a section: what the step calls is part of it."""

    @staticmethod
    def nested(est: Any, name: str, fn: Any, args: Any, kwargs: Any) -> Any:
        return fn(*args, **kwargs)


_QUIET = _Quiet()


def begin(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
    """The task of an outermost call, started; None if nothing is to be captured."""
    try:
        client = runtime.get_client()
        if not client.enabled:
            return None
        est = args[0]
        x = args[1] if len(args) > 1 else kwargs.get("X", kwargs.get("raw_documents"))
        y = args[2] if len(args) > 2 else kwargs.get("y", kwargs.get("Y"))
        return _Call(_workflow(), est, name, x, y, kwargs)
    except Exception:
        integration_failed(f"capturing {type(args[0]).__name__}.{name}")
        return None


class _Call:
    """One outermost call: its task, and what it does with nested calls."""

    def __init__(
        self, wf: api.Workflow, est: Any, name: str, x: Any, y: Any, kwargs: dict[str, Any]
    ) -> None:
        self.estimator = est
        self.name = name
        self.cls = type(est).__name__
        self.kind = "training" if name in TRAIN else "inference" if name in INFER else "evaluation"
        self.sections = itertools.count()
        self.search = hasattr(type(est), "_run_search")
        self.steps = _step_names(est) if self.kind == "training" else {}
        shallow = None
        if self.kind == "training":
            try:
                shallow = shallow_params(est)
            except Exception:
                shallow = {}
        self.meta = bool(self.steps) or (shallow is not None and _is_meta(shallow))
        limit = TRAIN_HASH_LIMIT if self.kind == "training" else INFER_HASH_LIMIT
        used: dict[str, Any] = {}
        params = None
        if self.kind == "training":
            previous = _registered(est)
            if previous is not None and (name == "partial_fit" or _warm(est)):
                used["previous_model"] = previous
            params = hyperparameters(est, shallow) if shallow else None
        else:
            used["model"] = model_reference(est)
        if x is not None:
            used["X"] = _data(x, limit, f"{self.cls}.{name} X")
        if y is not None and self.kind != "inference":
            used["y"] = _data(y, limit, f"{self.cls}.{name} y")
        weight = kwargs.get("sample_weight")
        if weight is not None and self.kind == "training":
            used["sample_weight"] = _data(weight, limit, f"{self.cls}.{name} sample_weight")
        if self.kind == "training":
            for i, (ex, ey) in enumerate(_eval_sets(kwargs)):
                for role, value in ((f"eval_set_{i}_X", ex), (f"eval_set_{i}_y", ey)):
                    if value is not None and value is not x and value is not y:
                        used[role] = _data(value, limit, f"{self.cls}.{name} {role}")
        self.task = wf.task(f"{self.cls}.{name}", stage=self.kind, used=used, params=params)
        self.task.start()

    def nested(self, est: Any, name: str, fn: Any, args: Any, kwargs: Any) -> Any:
        """A call made by the outermost one: a section for a step's fit, else nothing."""
        if est is self.estimator or self.search or not self.meta or name not in TRAIN:
            return fn(*args, **kwargs)
        index = next(self.sections)
        if index >= MAX_SECTIONS:
            return fn(*args, **kwargs)
        try:
            section = self.task.section(self.steps.get(id(est)) or type(est).__name__, index)
            section.start()
        except Exception:
            integration_failed(f"a section of {self.cls}.{self.name}")
            return fn(*args, **kwargs)
        token = current.set(_QUIET)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            reset(token)
            section.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        reset(token)
        section.end()
        return result

    def failed(self, exc: BaseException) -> None:
        """The estimator raised: the task ends failed (the exception propagates)."""
        try:
            self._forget()
            self.task.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
        except Exception:
            integration_failed(f"ending {self.cls}.{self.name}")

    def finished(self, result: Any) -> None:
        try:
            self._forget()
            if self.kind == "training":
                self._trained(result)
            elif self.name == "transform":
                self.task.generated(output=_data(result, INFER_HASH_LIMIT, "transform output"))
            elif self.kind == "inference":
                self.task.generated(prediction=_prediction_later(result))
            else:
                self.task.metric(_score_name(self.estimator), result)
        except Exception:
            integration_failed(f"recording {self.cls}.{self.name}")
        finally:
            self.task.end()

    def _forget(self) -> None:
        with _lock:
            _shared.pop(id(self), None)

    def _trained(self, result: Any) -> None:
        est, task = self.estimator, self.task
        task.generated(model=_register(est, task.iri))
        if self.name == "fit_transform":
            task.generated(output=_data(result, TRAIN_HASH_LIMIT, "fit_transform output"))
        for attr, metric in _SCALARS:
            value = getattr(est, attr, None)
            if attr == "best_iteration_" and value == 0:  # LightGBM: no early stopping
                continue
            if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
                with contextlib.suppress(TypeError, ValueError):  # an array: not one number
                    task.metric(metric, float(value))  # type: ignore[arg-type]
        if self.search and hasattr(est, "cv_results_"):
            self._candidates(est.cv_results_)
            task.generated(best_params=jsonable(getattr(est, "best_params_", None)))
        else:
            final = getattr(est, "_final_estimator", None) if hasattr(est, "steps") else None
            self._curves(final if final is not None else est)

    def _curves(self, est: Any) -> None:
        curves = _evals_result(est)
        for attr, metric in _CURVES:
            values = getattr(est, attr, None)
            if values is not None and len(values) and metric not in curves:
                curves[metric] = values
        length = max((len(v) for v in curves.values()), default=0)
        for i in _spread(length):
            with self.task.section("iteration", i) as s:
                for metric, values in curves.items():
                    if i < len(values):
                        s.metric(metric, float(values[i]))

    def _candidates(self, results: dict[str, Any]) -> None:
        names = [k for k in results if k.startswith(("mean_test_", "std_test_", "mean_train_"))]
        candidates = results.get("params", [])
        for i in _spread(len(candidates)):
            with self.task.section("candidate", i) as s:
                for key in names:
                    value = float(results[key][i])
                    if math.isfinite(value):
                        s.metric(key, value)
        if len(candidates) <= MAX_SECTIONS:
            self.task.generated(candidates=jsonable(list(candidates)))


def _spread(n: int) -> list[int]:
    """At most MAX_SECTIONS indices of range(n), evenly spread, the last included."""
    if n <= MAX_SECTIONS:
        return list(range(n))
    return sorted({(n - 1) * i // (MAX_SECTIONS - 1) for i in range(MAX_SECTIONS)})


def _evals_result(est: Any) -> dict[str, Any]:
    """A boosting wrapper's evaluation curves (XGBoost's and LightGBM's ``evals_result_``:
    ``{"validation_0": {"logloss": [...]}}``) as ``{"validation_0-logloss": [...]}``."""
    try:
        results = getattr(est, "evals_result_", None)
    except Exception:  # LightGBM's property raises when not fitted
        return {}
    if not isinstance(results, dict):
        return {}
    return {f"{data}-{metric}": list(values)
            for data, log in results.items() if isinstance(log, dict)
            for metric, values in log.items() if isinstance(values, (list, tuple))}  # fmt: skip


def _eval_sets(kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
    """The evaluation sets a boosting wrapper's ``fit`` was given: XGBoost's and
    LightGBM's ``eval_set=[(X, y), …]``, LightGBM's ``eval_X=…, eval_y=…``."""
    pairs = kwargs.get("eval_set")
    if isinstance(pairs, (list, tuple)):
        return [p for p in pairs if isinstance(p, tuple) and len(p) == 2]
    xs, ys = kwargs.get("eval_X"), kwargs.get("eval_y")
    if xs is None:
        return []
    if not isinstance(xs, tuple):
        xs, ys = (xs,), (ys,)
    return list(zip(xs, ys if isinstance(ys, tuple) else (ys,) * len(xs), strict=False))


def shallow_params(est: Any) -> dict[str, Any]:
    """``est.get_params(deep=False)`` (scikit-learn's reads the constructor's parameter
    names with ``inspect`` at every call; autolog reads them once per class:
    :func:`capture_lib.integrations.sklearn._patch_param_names`)."""
    return est.get_params(deep=False)


def _is_meta(params: dict[str, Any]) -> bool:
    """Whether an estimator is made of others (a parameter holding an estimator, or a list
    of them): their fits inside its own are its sections; a plain estimator's helpers
    (LightGBM's label encoder) are not."""
    for v in params.values():
        items = v if isinstance(v, list) else [v]
        for item in items:
            if isinstance(item, tuple) and len(item) >= 2:
                item = item[1]
            if hasattr(item, "get_params") and hasattr(item, "fit"):
                return True
    return False


def _step_names(est: Any) -> dict[int, str]:
    """id(step) → its name, for a Pipeline's steps or a FeatureUnion's / ColumnTransformer's."""
    names = {}
    for attr in ("steps", "transformer_list", "transformers"):
        for item in getattr(est, attr, None) or ():
            if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[0], str):
                names[id(item[1])] = item[0]
    return names


def _warm(est: Any) -> bool:
    return getattr(est, "warm_start", False) is True


def _data(value: Any, limit: int, what: str) -> dict[str, Any] | deferred.Deferred:
    """A data reference naming ``value`` by content; one of missing data if it cannot be
    (counted): the task still says that something was used under that role. An array or
    frame of numbers of at least :data:`DEFER_BYTES` is copied and named on the capture
    worker, off the caller's thread (capture_lib.deferred), while the budget allows; an
    array whose bytes are those of one named before (a table passed to fit after fit) is
    named by comparing them with that one's copy (:func:`digest.known`)."""
    size = digest.snapshot_size(value)
    if DEFER_BYTES <= size <= limit:
        ref = digest.known(value)
        if ref is not None:
            return ref
    compute = functools.partial(_named, limit=limit, what=what, copy=True)
    later = _later(value, limit, compute, size, remember=True)
    return later if later is not None else _named(value, limit, what)


def _later(
    value: Any, limit: int, compute: Any, size: int | None = None, remember: bool = False
) -> deferred.Deferred | None:
    """``compute(copy)`` on the capture worker, from a copy of ``value`` made now, when
    a copy can stand for it (:func:`digest.snapshot_size`: ``size``, if the caller has
    it), it has DEFER_BYTES to ``limit`` bytes and the budget has room; None otherwise
    (computed by the caller). ``remember``: the copy is kept for :func:`digest.known`
    (``compute`` names it in full)."""
    if size is None:
        size = digest.snapshot_size(value)
    if not DEFER_BYTES <= size <= limit or not deferred.room(size):
        return None
    copy = digest.snapshot(value)
    later = deferred.defer(functools.partial(compute, copy), size)
    if later is not None and remember:
        digest.remember(copy, later)
    return later


def _named(value: Any, limit: int, what: str, copy: bool = False) -> dict[str, Any]:
    try:
        ref = digest.data_reference(value, limit)
        if copy:
            digest.remember(value, ref)
        return ref
    except digest.Unhashable as exc:
        integration_failed(f"naming {what}", UNHASHABLE, str(exc))
        error = str(exc)
    except Exception as exc:
        integration_failed(f"naming {what}")
        error = f"{type(exc).__name__}: {exc}"[:500]
    path = f"<in-memory {type(value).__qualname__}>"
    return {"@data": "missing", "path": path, "host": HOST, "error": error}


def _prediction_later(result: Any) -> dict[str, Any] | deferred.Deferred:
    """:func:`_prediction`, computed on the capture worker for a large array (see _data)."""
    later = _later(result, INFER_HASH_LIMIT, _guarded_prediction)
    return later if later is not None else _prediction(result)


def _guarded_prediction(result: Any) -> dict[str, Any]:
    try:
        return _prediction(result)
    except Exception as exc:
        integration_failed("naming a prediction")
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _prediction(result: Any) -> dict[str, Any]:
    ref = digest.data_reference(result, INFER_HASH_LIMIT)
    keys = ("sha256", "kind", "shape", "dtype", "hashing")
    value: dict[str, Any] = {k: ref[k] for k in keys if k in ref}
    size = getattr(result, "size", None)
    if isinstance(size, int) and size <= PREDICTION_VALUES and hasattr(result, "tolist"):
        value["values"] = jsonable(result.tolist())
    return value


def _score_name(est: Any) -> str:
    try:
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(est):
            return "accuracy"
        if is_regressor(est):
            return "r2"
    except Exception:
        pass
    return "score"


def hyperparameters(est: Any, shallow: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``get_params()`` made JSON-safe, with the nested estimators' own parameters for a
    meta-estimator (None if the estimator has none). ``shallow``: its
    :func:`shallow_params`, when the caller has them."""
    try:
        params = shallow_params(est) if shallow is None else shallow
        if any(hasattr(v, "get_params") or isinstance(v, list) for v in params.values()):
            params = est.get_params(deep=True)  # a meta-estimator: its steps' own too
    except Exception:
        return None
    return {str(k): jsonable(v) for k, v in params.items()}


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe form of a parameter value (see the module doc)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return jsonable(value.item(), depth)  # a numpy scalar: the number it is
    if hasattr(value, "get_params") and hasattr(value, "fit"):
        return type(value).__name__
    if isinstance(value, type):
        return value.__qualname__
    if depth < 4 and isinstance(value, (list, tuple)) and len(value) <= PREDICTION_VALUES:
        return [jsonable(v, depth + 1) for v in value]
    if depth < 4 and isinstance(value, dict) and len(value) <= PREDICTION_VALUES:
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', None) or ''}.{value.__qualname__}".lstrip(".")
    size = getattr(value, "size", None)
    if hasattr(value, "tolist") and isinstance(size, int) and size <= PREDICTION_VALUES:
        return jsonable(value.tolist(), depth)
    return type(value).__name__


def _framework(est: Any) -> dict[str, Any]:
    top = type(est).__module__.partition(".")[0]
    version = getattr(sys.modules.get(top), "__version__", None)
    return {"framework": _FRAMEWORKS.get(top, top), "framework_version": version,
            "algorithm": type(est).__name__}  # fmt: skip


def _registered(est: Any) -> dict[str, Any] | None:
    entry = _models.get(id(est))
    return entry[1] if entry is not None and entry[0]() is est else None


def model_reference(est: Any) -> dict[str, Any]:
    """The model reference of an estimator: the one its last captured fit recorded, else
    (an estimator loaded from a file, or fitted before autolog) its pickle's digest now."""
    return _registered(est) or _register(est, None)


def _register(est: Any, training: str | None) -> dict[str, Any]:
    ref: dict[str, Any] = {"@data": "model"}
    try:
        named = digest.pickle_sha256(est, MODEL_HASH_LIMIT)
        if named is None:
            reason = f"its pickle is over {MODEL_HASH_LIMIT} bytes"
        else:
            ref["sha256"], ref["size"] = named
    except Exception as exc:
        integration_failed(f"pickling a {type(est).__name__}", message=str(exc)[:200])
        reason = f"it cannot be pickled: {type(exc).__name__}"
    if "sha256" not in ref:  # named by this fit (or this object) alone: joins nothing
        ref["sha256"] = value_sha256(
            {
                "model": type(est).__name__,
                "training": training,
                "object": id(est),
                "session": runtime.get_client().session,
                "pid": os.getpid(),
            }
        )
        ref["digest"] = f"not named by content: {reason}"
    ref.update({k: v for k, v in _framework(est).items() if v is not None})
    key = id(est)
    try:
        weak = weakref.ref(est, functools.partial(_forget_model, key))
    except TypeError:  # no weak references to it: not remembered
        return ref
    with _lock:
        _models[key] = (weak, ref)
    return ref


def _forget_model(key: int, _ref: Any) -> None:
    _models.pop(key, None)


def saved(value: Any, filename: Any) -> None:
    """``joblib.dump(value, filename)`` returned: if ``value`` is a fitted model captured
    here and ``filename`` a path, a task ``save <Class>`` used the model and generated the
    file (a model named by its own content, derived from the fitted one)."""
    try:
        model = _registered(value)
        if model is None or not isinstance(filename, (str, os.PathLike)):
            return
        meta = {k: v for k, v in _framework(value).items() if v is not None}
        ref = reference("model", filename, meta, runtime.count_lost)
        with _workflow().task(f"save {type(value).__name__}", used={"model": model}) as t:
            t.generated(file=ref)
    except Exception:
        integration_failed("linking a saved model to its file")
