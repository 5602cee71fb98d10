"""Keras 3, captured by a callback: ``model.fit(x, y, callbacks=[ProvmlCallback((x, y))])``.

>>> from capture_lib.integrations.keras import ProvmlCallback   # doctest: +SKIP
>>> model.fit(x, y, epochs=3, callbacks=[ProvmlCallback(data=(x, y))])  # doctest: +SKIP

Importing this module imports nothing of Keras: ``ProvmlCallback`` (a
``keras.callbacks.Callback``, :mod:`capture_lib.integrations._keras_callback`) is made
when first asked for. Keras reads ``KERAS_BACKEND`` when it is first imported: set it
before (this integration is tested with the torch backend).

``cl.autolog()`` (:func:`enable`) patches three methods of ``keras.Model``, reversibly
(:func:`disable` puts back what was there):

* ``fit``: a ``ProvmlCallback`` is added to its callbacks (a new list: yours is not
  changed) unless there is one, and given the data ``fit`` was called with (``x``,
  ``y``, ``sample_weight``, ``validation_data``) and its settings (``batch_size``,
  ``validation_split`` …); when ``fit`` raises, the training task ends ``failed``;
* ``predict``: an inference task that used the model (named by its weights: the model
  a training here generated) and ``x`` (by digest), and generated ``prediction``;
* ``evaluate``: an evaluation task that used the model and ``x``/``y`` (by digest), with
  the evaluation's metrics (``get_metrics_result()``: ``loss`` and the compiled
  metrics), which the ``model-evaluations`` question answers; the evaluation ``fit``
  runs on its validation data (called with ``_use_cached_eval_dataset=True``) is part of
  the training, not a task, while an ``evaluate`` a callback calls during ``fit`` is one;
* ``save``: a model trained here saved to a path is linked to the file by a task
  ``save <Model>`` (the file derived from the trained model).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from os import PathLike
from typing import TYPE_CHECKING, Any

from capture_lib.integrations import _import_hook
from capture_lib.integrations import _keras_run as run
from capture_lib.integrations import _sklearn_calls as calls

if TYPE_CHECKING:
    from capture_lib.integrations._keras_callback import ProvmlCallback

FRAMEWORK = "keras"
__all__ = ["FRAMEWORK", "ProvmlCallback", "disable", "enable", "enabled", "model_reference"]

_lock = threading.Lock()
_MARK = "_provml_wraps"
_ABSENT = object()
#: (class, name) → what the class held before (``_ABSENT``: inherited)
_patched: dict[tuple[Any, str], Any] = {}
#: the argument Keras 3's ``fit`` passes to ``evaluate`` for its validation data
_VALIDATION = "_use_cached_eval_dataset"
_FIT_SETTINGS = ("batch_size", "validation_split", "shuffle", "initial_epoch", "steps_per_epoch",
                 "validation_steps", "validation_freq", "class_weight")  # fmt: skip

model_reference = run.model_reference


def __getattr__(name: str) -> Any:
    if name == "ProvmlCallback":
        from capture_lib.integrations._keras_callback import ProvmlCallback

        return ProvmlCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enabled() -> bool:
    """True while ``keras.Model`` is patched."""
    return run.state.active


def enable() -> None:
    """Patch ``keras.Model.fit``, ``predict`` and ``save`` (see module doc), now if Keras
    is imported, else when it is (so ``KERAS_BACKEND`` set after ``cl.autolog()`` still
    chooses the backend)."""
    run.state.active = True
    _import_hook.when_imported("keras", _patch)


def _patch() -> None:
    with _lock:
        import keras

        from capture_lib.integrations._keras_callback import ProvmlCallback

        model = keras.Model
        for name, make in (("fit", _fit), ("predict", _predict), ("evaluate", _evaluate),
                           ("save", _save)):  # fmt: skip
            current = getattr(model, name)
            if hasattr(current, _MARK):
                continue
            _patched[(model, name)] = model.__dict__.get(name, _ABSENT)
            wrapper = make(current, ProvmlCallback)
            setattr(wrapper, _MARK, current)
            setattr(model, name, wrapper)


def disable() -> None:
    """Put back what :func:`enable` replaced."""
    _import_hook.cancel("keras")
    with _lock:
        run.state.active = False
        for (klass, name), original in list(_patched.items()):
            if hasattr(klass.__dict__.get(name), _MARK):
                if original is _ABSENT:
                    delattr(klass, name)
                else:
                    setattr(klass, name, original)
        _patched.clear()


def _fit(original: Any, callback_class: type) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not run.state.active:
            return original(self, *args, **kwargs)
        callback = None
        try:
            bound = signature.bind(self, *args, **kwargs)
            callback = _callback(bound.arguments, callback_class)
            args, kwargs = bound.args[1:], bound.kwargs
        except Exception:
            calls.integration_failed("adding the provml callback to Model.fit")
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            if callback is not None and callback.task is not None:
                with contextlib.suppress(Exception):
                    callback.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    return fit


def _callback(arguments: dict[str, Any], callback_class: type) -> Any:
    callbacks = list(arguments.get("callbacks") or [])
    ours = [c for c in callbacks if isinstance(c, callback_class)]
    callback: Any = ours[0] if ours else callback_class()
    if not ours:
        callback.autolog = True
        arguments["callbacks"] = [*callbacks, callback]
    if callback.data is None:
        data = {k: arguments.get(k) for k in ("x", "y", "sample_weight")}
        validation = arguments.get("validation_data")
        if isinstance(validation, tuple):
            names = ("x", "y", "sample_weight")
            data["validation."] = dict(zip(names, validation, strict=False))
        elif validation is not None:
            data["validation"] = validation
        callback.data = data
    callback.fit_params = {k: calls.jsonable(arguments[k]) for k in _FIT_SETTINGS
                           if arguments.get(k) is not None}  # fmt: skip
    return callback


def _predict(original: Any, callback_class: type) -> Any:
    @functools.wraps(original)
    def predict(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not run.state.active or run.predicting.get():
            return original(self, x, *args, **kwargs)

        def record(task: Any, result: Any) -> None:
            task.generated(prediction=run.prediction(result))

        call = functools.partial(original, self, x, *args, **kwargs)
        return _as_task(self, "predict", "inference", {"x": x}, call, record)

    return predict


def _evaluate(original: Any, callback_class: type) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def evaluate(self: Any, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not run.state.active or run.predicting.get() or kwargs.get(_VALIDATION):
            return original(self, x, y, *args, **kwargs)  # fit's validation: the training's

        def record(task: Any, result: Any) -> None:
            for name, value in _evaluation_metrics(self, result).items():
                task.metric(name, value)

        try:
            weight = signature.bind(self, x, y, *args, **kwargs).arguments.get("sample_weight")
        except TypeError:  # evaluate itself will say what is wrong with the call
            weight = None
        data = {"x": x, "y": y, "sample_weight": weight}
        call = functools.partial(original, self, x, y, *args, **kwargs)
        return _as_task(self, "evaluate", "evaluation", data, call, record)

    return evaluate


def _as_task(
    model: Any, method: str, stage: str, data: dict[str, Any], call: Any, record: Any
) -> Any:
    """``call()`` as a task ``<Model>.<method>`` that used the model and ``data`` (by
    digest), ``record(task, result)`` adding what it gave; what it calls is part of it.
    Capture failing is counted, never raised; ``call`` raising ends the task failed."""
    task = None
    try:
        used = {"model": run.model_reference(model),
                **run.data_references(data, "", calls.INFER_HASH_LIMIT)}  # fmt: skip
        task = run.workflow().task(f"{type(model).__name__}.{method}", stage=stage, used=used)
        task.start()
    except Exception:
        calls.integration_failed(f"recording Model.{method}")
    token = run.predicting.set(True)
    try:
        result = call()
    except BaseException as exc:
        if task is not None:
            task.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        run.predicting.reset(token)
    if task is not None:
        try:
            record(task, result)
        except Exception:
            calls.integration_failed(f"recording what Keras' Model.{method} gave")
        task.end()
    return result


def _evaluation_metrics(model: Any, result: Any) -> dict[str, float]:
    """The metrics of the evaluation just run: the model's ``get_metrics_result()`` (what
    ``return_dict=True`` returns), else what ``evaluate`` returned (a dict, or the loss)."""
    try:
        values = model.get_metrics_result()
    except Exception:
        values = result if isinstance(result, dict) else {"loss": result}
    out = {}
    for name, value in values.items():
        with contextlib.suppress(TypeError, ValueError):
            out[str(name)] = float(value)
    return out


def _save(original: Any, callback_class: type) -> Any:
    @functools.wraps(original)
    def save(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, filepath, *args, **kwargs)
        if run.state.active:
            try:
                model = run.known(self)
                if model is not None and isinstance(filepath, (str, bytes, PathLike)):
                    with run.workflow().task(f"save {type(self).__name__}",
                                             used={"model": model}) as t:  # fmt: skip
                        t.generated(file=run.file_reference(filepath))
            except Exception:
                calls.integration_failed("linking a saved Keras model to its file")
        return result

    return save
