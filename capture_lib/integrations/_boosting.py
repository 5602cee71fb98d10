"""What XGBoost's and LightGBM's native training records (capture_lib.integrations.xgboost,
capture_lib.integrations.lightgbm): the parts the two share.

A native training run (``xgboost.train``, ``lightgbm.train``) is a task of stage
``training`` (:class:`Training`):

* parameters: the ``params`` passed, made JSON-safe, with ``num_boost_round``;
* used: the training data (``X``, ``y``, ``weight``) and each evaluation set
  (``<name>_X``, ``<name>_y``) by content (:func:`data_refs`);
* metrics: every evaluation result of every boosting round as a metric of the task named
  ``<data>-<metric>`` (``val-logloss``, ``valid_0-l2``) with the round as its ``step``;
  and the rounds as sections ``round`` (index: the round) carrying the same metrics, for
  at most :data:`MAX_SECTIONS` rounds spread evenly when the number of rounds is known,
  else every round up to :data:`MAX_SECTIONS`, then every 2nd, 4th … (at most
  ``MAX_SECTIONS`` more per doubling), and the last round always;
* generated: the Booster as ``model`` (named by the SHA-256 of its pickle, as the
  scikit-learn integration names a fitted estimator: ``pickle.dump(booster, f)`` writes
  that node).

A prediction (``Booster.predict`` called outside a captured scikit-learn call) is a task
``Booster.predict`` of stage ``inference`` that used ``model`` and ``X`` (by content) and
generated ``prediction``, as a scikit-learn prediction does.

**Naming a DMatrix or a Dataset.** Both copy the data they are built from into the
library's own format, from which it cannot be read back as it was; the arrays are named
by content the way the scikit-learn integration names them (the same array, the same
digest), each up to ``TRAIN_HASH_LIMIT`` bytes, sampled past it:

* a **DMatrix** (or QuantileDMatrix) built while autolog is on: its data, label and
  weight are hashed when it is built (not later: the arrays are often temporaries, such
  as ``DMatrix(x[:n])``), except inside a captured scikit-learn call (a wrapper's fit
  names ``X`` itself). A DMatrix built before ``cl.autolog()`` (or with the explicit
  callback alone): ``get_data()`` (a CSR copy, only when at most the limit) and
  ``get_label()`` are hashed, and the reference says ``"source": "DMatrix.get_data()"``
  (a different digest from the array's);
* a LightGBM **Dataset** keeps its raw arrays until LightGBM constructs it, at the start
  of training: autolog names them then. While autolog is on, a Dataset also keeps weak
  references to them (nothing copied), for one reused after LightGBM freed its raw data.
  Else ``X`` is recorded as missing (counted in ``unhashable_input``) and ``y`` is named
  from ``get_label()``;
* a file path (a libsvm file, LightGBM's binary Dataset) is named as a file.
"""

from __future__ import annotations

import functools
import inspect
import os
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from capture_lib import api, runtime
from capture_lib.integrations import _sklearn_calls as calls
from capture_lib.integrations._boosting_patches import Integration, Patches, when_imported
from capture_lib.integrations._sklearn_calls import INFER_HASH_LIMIT, MAX_SECTIONS, TRAIN_HASH_LIMIT
from capture_lib.refs import HOST, reference

__all__ = [
    "MAX_SECTIONS",
    "Integration",
    "Patches",
    "Rounds",
    "Training",
    "data_refs",
    "when_imported",
]

#: the attribute a patched DMatrix / Dataset keeps its sources under (weak references)
SOURCE = "_provml_source"
#: set while a native training or prediction captured here runs: what it calls is quiet
QUIET = calls._QUIET


def failed(where: str) -> None:
    """Count and log (once) a failure of the integration; call in an ``except`` block."""
    calls.integration_failed(where)


def capturing() -> bool:
    """Whether a native call made now is to be captured: capture on, and not inside a
    captured scikit-learn call or a native one (those record it themselves)."""
    return calls.current.get() is None and runtime.get_client().enabled


def remember_source(cls: Any, params: Iterable[str], eager: bool) -> Callable[[Any], Any]:
    """A patch for ``cls.__init__`` keeping what the arguments ``params`` (data, label,
    weight) were on the object built, for :func:`data_refs`: their references, named by
    content now (``eager``), or weak references to them."""
    names = tuple(params)
    keep = _named_now if eager else _weak

    def make(original: Any) -> Any:
        signature = inspect.signature(original)

        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if not capturing():  # built by a captured call (a sklearn wrapper's fit)
                return
            try:
                bound = signature.bind(self, *args, **kwargs).arguments
                self.__dict__[SOURCE] = {n: keep(bound.get(n)) for n in names}
            except Exception:
                failed(f"remembering what a {cls.__name__} was built from")

        return __init__

    return make


def _named_now(value: Any) -> Any:
    # named now, on the caller's thread: the reference is kept on the DMatrix, for as long
    # as it lives, and a copy with it would be too
    if value is None:
        return None
    return named(value, TRAIN_HASH_LIMIT, "the data of a DMatrix", later=False)


def _weak(value: Any) -> Any:
    if value is None or isinstance(value, (str, os.PathLike)):
        return value  # a path (or nothing): kept as it is
    try:
        return weakref.ref(value)
    except TypeError:  # a list: not kept (the library's copy is named instead)
        return None


def source(obj: Any, name: str) -> Any:
    """The argument ``name`` ``obj`` was built from, if remembered and still alive (or its
    reference, a dict, if it was named when ``obj`` was built)."""
    kept = obj.__dict__.get(SOURCE, {}).get(name) if hasattr(obj, "__dict__") else None
    return kept() if isinstance(kept, weakref.ref) else kept


# --- naming data ----------------------------------------------------------------------


def named(value: Any, limit: int, what: str, later: bool = True) -> Any:
    """A reference naming ``value`` (an array, a frame, a path) by content: a dict, or
    with ``later`` a value the capture worker computes from a copy (capture_lib.deferred)."""
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value).split("?")[0].split("#")[0]  # xgboost's uri?format=libsvm
        return reference("dataset", path, {}, runtime.count_lost)
    return calls._data(value, limit, what) if later else calls._named(value, limit, what)


def missing(value: Any, reason: str, what: str) -> dict[str, Any]:
    calls.integration_failed(f"naming {what}", calls.UNHASHABLE, reason)
    return {"@data": "missing", "path": f"<in-memory {type(value).__qualname__}>", "host": HOST,
            "error": reason}  # fmt: skip


def data_refs(
    data: Any, prefix: str, limit: int, fallback: Callable[[Any, str, int], dict[str, Any]]
) -> dict[str, Any]:
    """``{prefix+"X": …, prefix+"y": …, prefix+"weight": …}`` for a DMatrix or Dataset:
    the arrays it holds still (a LightGBM Dataset not constructed yet) or was built from
    when remembered (see module doc), else what ``fallback(data, role, limit)`` names for
    ``X``/``y`` (an empty dict: nothing)."""
    out: dict[str, Any] = {}
    lazy = getattr(data, "_handle", False) is None  # a Dataset not constructed: raw arrays
    for role, arg in (("X", "data"), ("y", "label"), ("weight", "weight")):
        value = getattr(data, arg, None) if lazy else None
        value = source(data, arg) if value is None else value
        what = f"{type(data).__name__} {prefix}{role}"
        if isinstance(value, dict):
            out[prefix + role] = value
        elif value is not None:
            out[prefix + role] = named(value, limit, what)
        elif role != "weight":
            ref = fallback(data, role, limit)
            if ref:
                out[prefix + role] = ref
    return out


# --- a training run -------------------------------------------------------------------


def parameters(params: Any, rounds: int | None) -> dict[str, Any]:
    """``params`` (a dict, or XGBoost's list of pairs) made JSON-safe, with the rounds."""
    out: dict[str, Any] = {}
    items = params.items() if isinstance(params, dict) else (params or ())
    for item in items:
        key, value = str(item[0]), calls.jsonable(item[1])
        if key in out:  # a list of pairs may repeat a key (eval_metric): a list of values
            out[key] = [*(out[key] if isinstance(out[key], list) else [out[key]]), value]
        else:
            out[key] = value
    if rounds is not None:
        out.setdefault("num_boost_round", rounds)
    return out


class Rounds:
    """Which boosting rounds are sections (see module doc)."""

    def __init__(self, total: int | None, first: int = 0) -> None:
        self.first = first
        self.spread = set(calls._spread(total)) if total else None
        self.stride = 1
        self.count = 0

    def keep(self, index: int) -> bool:
        i = index - self.first
        if self.spread is not None:
            return i in self.spread
        if i % self.stride:
            return False
        self.count += 1
        if self.count % MAX_SECTIONS == 0:
            self.stride *= 2
        return True


class Training:
    """One native training run's task (see module doc)."""

    def __init__(
        self,
        name: str,
        params: dict[str, Any],
        used: dict[str, Any],
        total: int | None,
        first: int = 0,
    ) -> None:
        self.task: api.Task = calls._workflow().task(
            name, stage="training", used=used, params=params
        )
        self.task.start()
        self.rounds = Rounds(total, first)
        self.last: tuple[int, list[tuple[str, float]]] | None = None
        self.sectioned = -1
        self.ended = False

    def round(self, index: int, metrics: list[tuple[str, float]]) -> None:
        """The evaluation results of one boosting round."""
        try:
            task = self.task
            for name, value in metrics:
                task.metric(name, value, index)
            self.last = (index, metrics)
            if self.rounds.keep(index):
                self._section(index, metrics)
        except Exception:
            failed(f"recording a round of {self.task.plan[-1]}")

    def _section(self, index: int, metrics: list[tuple[str, float]]) -> None:
        with self.task.section("round", index) as section:
            for name, value in metrics:
                section.metric(name, value, index)
        self.sectioned = index

    def end(self, model: Any, error: BaseException | None = None) -> None:
        """Training returned ``model`` (or raised ``error``): the task ends."""
        if self.ended:
            return
        self.ended = True
        try:
            if self.last is not None and self.last[0] != self.sectioned:
                self._section(*self.last)  # the last round is always a section
            if model is not None and error is None:
                self.task.generated(model=calls._register(model, self.task.iri))
        except Exception:
            failed(f"recording the model of {self.task.plan[-1]}")
        if error is None:
            self.task.end()
        else:
            self.task.end("failed", f"{type(error).__name__}: {error}"[:2000])


def round_metrics(results: Iterable[tuple[str, str, Any]]) -> list[tuple[str, float]]:
    """``(data, metric, value)`` as ``("data-metric", value)``, numbers only (a
    cross-validation's ``(mean, std)`` as its mean)."""
    out = []
    for data, metric, value in results:
        if isinstance(value, tuple):
            value = value[0] if value else None
        if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
            out.append((f"{data}-{metric}", float(value)))
    return out


# --- predictions and saved models -----------------------------------------------------


def predict_patch(
    patches: Patches, name_input: Callable[[Any], Any], method: str = "predict"
) -> Callable[[Any], Any]:
    """A patch for ``Booster.<method>(data, …)`` (``predict``, XGBoost's
    ``inplace_predict``): an inference task named ``<Booster>.<method>`` (see module doc)."""

    def make(original: Any) -> Any:
        @functools.wraps(original)
        def predict(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
            if not patches.active or not capturing():
                return original(self, data, *args, **kwargs)
            task = _inference(self, data, name_input, method)
            if task is None:
                return original(self, data, *args, **kwargs)
            token = calls.current.set(QUIET)
            try:
                result = original(self, data, *args, **kwargs)
            except BaseException as exc:
                calls.reset(token)
                task.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
                raise
            calls.reset(token)
            try:
                task.generated(prediction=calls._prediction_later(result))
            except Exception:
                failed("recording a prediction")
            task.end()
            return result

        return predict

    return make


def _inference(
    booster: Any, data: Any, name_input: Callable[[Any], Any], method: str = "predict"
) -> Any:
    name = f"{type(booster).__name__}.{method}"
    try:
        used = {"model": calls.model_reference(booster), "X": name_input(data)}
        task = calls._workflow().task(name, stage="inference", used=used)
        task.start()
        return task
    except Exception:
        failed(f"capturing {name}")
        return None


def save_patch(patches: Patches) -> Callable[[Any], Any]:
    """A patch for ``save_model(path, …)``: a task ``save <Class>`` linking the file to
    the model a captured training named (as ``joblib.dump`` is linked)."""

    def make(original: Any) -> Any:
        @functools.wraps(original)
        def save_model(self: Any, fname: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, fname, *args, **kwargs)
            if patches.active and capturing():
                calls.saved(self, fname)  # guarded: never raises
            return result

        return save_model

    return make


def train_patch(
    patches: Patches, run: Callable[[Any, inspect.BoundArguments], Any]
) -> Callable[[Any], Any]:
    """A patch for ``train(…)``: ``run(original, bound)`` when captured, which adds the
    callback and calls the original; the call unchanged otherwise."""

    def make(original: Any) -> Any:
        signature = inspect.signature(original)

        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            if not patches.active or not capturing():
                return original(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:  # the caller's mistake: the library says so
                return original(*args, **kwargs)
            return run(original, bound)

        return train

    return make


def call_quietly(
    original: Any, bound: inspect.BoundArguments, end: Callable[[Any, BaseException | None], None]
) -> Any:
    """``original(…)`` with nothing it calls captured on its own; ``end(result, None)`` or
    ``end(None, error)`` after it (the error propagates)."""
    token = calls.current.set(QUIET)
    try:
        result = original(*bound.args, **bound.kwargs)
    except BaseException as exc:
        calls.reset(token)
        end(None, exc)
        raise
    calls.reset(token)
    end(result, None)
    return result


def with_callback(bound: inspect.BoundArguments, cls: type) -> tuple[dict[str, Any], Any]:
    """The call's arguments (defaults included) with a callback of class ``cls`` among its
    ``callbacks`` (a new list; one the caller passed is used, not doubled), and that one."""
    bound.apply_defaults()
    args = bound.arguments
    callbacks = list(args.get("callbacks") or ())
    cb = next((c for c in callbacks if isinstance(c, cls)), None)
    if cb is None:
        cb = cls()
        callbacks.append(cb)
    args["callbacks"] = callbacks
    return args, cb


__all__ += ["INFER_HASH_LIMIT", "TRAIN_HASH_LIMIT"]
