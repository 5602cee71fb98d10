"""scikit-learn, and estimators following its API, captured without capture code.

``cl.autolog()`` (or :func:`enable`) patches, at the class level where each is defined,
the methods below of every subclass of ``sklearn.base.BaseEstimator``: those already
imported (every class ``sklearn.utils.all_estimators()`` lists, once its module is
imported, and yours) and those defined later, through ``__init_subclass__`` (so
XGBoost's and LightGBM's sklearn wrappers, subclasses of ``BaseEstimator``, are patched
when imported; ``all_estimators()`` itself is not called: it would import every module
of scikit-learn). What a call becomes (:mod:`capture_lib.integrations._sklearn_calls`):

* ``fit``, ``fit_transform``, ``fit_predict``, ``partial_fit``: a **training task** of the
  current workflow (one named after the script is opened if there is none, ended at
  exit or by ``cl.autolog(disable=True)``);
* ``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function``,
  ``transform``: an **inference task** that used the fitted model;
* ``score``: an **evaluation task** with the score as a metric.

Only the outermost call is a task: what a Pipeline or a search calls inside it is not.
A Pipeline's (or any meta-estimator's) fit gives one task whose nested fits are its
sections (one per step, at most :data:`MAX_SECTIONS`); a search (``GridSearchCV``,
``RandomizedSearchCV`` …) gives one task whose sections are its candidates with their
cross-validation scores, never a task per fitted clone. Nested calls run in joblib
threads (``n_jobs`` with the threading backend, a forest's trees) are known as nested:
the call is carried to the workers by scikit-learn's own ``Parallel``. In worker
processes (loky) nothing is patched.

Patching is idempotent (enabling twice wraps nothing twice) and reversible: :func:`disable`
puts back every class attribute it replaced. A class defined while autolog was on whose
method a later ``__init_subclass__`` wrapped again keeps an inert pass-through.
Nothing here raises into the workflow: a failure of the integration is counted in
``cl.stats()["lost"]["integration_error"]`` (an input that cannot be named by content,
in ``["unhashable_input"]``) and the estimator's call proceeds and returns exactly
what it returns without autolog.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from capture_lib.integrations import _sklearn_calls as calls
from capture_lib.integrations._sklearn_calls import INFER, MAX_SECTIONS, METHODS, TRAIN

FRAMEWORK = "sklearn"
__all__ = ["FRAMEWORK", "INFER", "MAX_SECTIONS", "METHODS", "TRAIN", "disable", "enable",
           "enabled", "model_reference"]  # fmt: skip

log = logging.getLogger(__name__)
_lock = threading.RLock()
#: (class, attribute) → what the class held before it was patched
_patched: dict[tuple[Any, str], Any] = {}
#: class → its own ``__init_subclass__`` before the hook (None: it had none)
_hooks: dict[type, Any] = {}
_depth = threading.local()
_MARK = "_provml_wraps"

model_reference = calls.model_reference


def enabled() -> bool:
    """True while the patches are in place."""
    return calls.state.active


def enable() -> None:
    """Patch every estimator class (see module doc). Calling it again does nothing more."""
    with _lock:
        from sklearn.base import BaseEstimator

        classes = _subclasses(BaseEstimator)
        for cls in classes:
            _patch_class(cls)
        for klass in {BaseEstimator, *_init_subclass_definers(classes)}:
            _hook(klass)
        _patch_parallel()
        _patch_joblib()
        _patch_param_names(BaseEstimator)
        calls.state.active = True


def disable() -> None:
    """Put back what :func:`enable` replaced, and end the workflow autolog opened."""
    with _lock:
        calls.state.active = False
        for (klass, name), original in list(_patched.items()):
            if _is_ours(klass.__dict__.get(name)):
                setattr(klass, name, original)
        _patched.clear()
        for klass, own in list(_hooks.items()):
            if _is_ours(klass.__dict__.get("__init_subclass__")):
                if own is None:
                    delattr(klass, "__init_subclass__")
                else:
                    klass.__init_subclass__ = own  # type: ignore[method-assign]
        _hooks.clear()
    calls.end_opened_workflows()


def _subclasses(root: type) -> list[type]:
    seen: dict[type, None] = {}
    todo: list[type] = [root]
    while todo:
        sub: type
        for sub in type.__subclasses__(todo.pop()):
            if sub not in seen:
                seen[sub] = None
                todo.append(sub)
    return list(seen)


def _init_subclass_definers(classes: Iterable[type]) -> set[type]:
    """The classes of these MROs with an ``__init_subclass__`` of their own (scikit-learn's
    ``_SetOutputMixin`` wraps ``transform`` there: the hook must run after it)."""
    return {k for c in classes for k in c.__mro__
            if k is not object and "__init_subclass__" in k.__dict__}  # fmt: skip


def _is_ours(attr: Any) -> bool:
    return (
        hasattr(attr, _MARK)
        or hasattr(getattr(attr, "fn", None), _MARK)
        or (isinstance(attr, classmethod) and hasattr(attr.__func__, _MARK))
    )


def _patch_class(cls: type) -> None:
    """Wrap the methods of ``cls`` where each is defined along its MRO."""
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name in METHODS:
            attr = klass.__dict__.get(name)
            if attr is None or (klass, name) in _patched or _is_ours(attr):
                continue
            wrapped = _wrapped_attribute(attr, name)
            if wrapped is None:
                continue
            try:
                setattr(klass, name, wrapped)
            except (TypeError, AttributeError):  # an extension type: left alone
                continue
            _patched[(klass, name)] = attr


def _wrapped_attribute(attr: Any, name: str) -> Any:
    """A function wrapped, or a copy of scikit-learn's ``available_if`` descriptor around
    the wrapped function (so ``hasattr(pipeline, "predict_proba")`` still says the truth);
    None for anything else (a property, a static method, a C method)."""
    if inspect.isfunction(attr):
        return _wrap(attr, name)
    fn = getattr(attr, "fn", None)
    if type(attr).__name__ == "_AvailableIfDescriptor" and inspect.isfunction(fn):
        descriptor = copy.copy(attr)
        descriptor.fn = _wrap(fn, name)
        return descriptor
    return None


def _wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    state = calls.state
    current = calls.current

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not state.active or not args:
            return fn(*args, **kwargs)
        outer = current.get()
        if outer is not None:
            return outer.nested(args[0], name, fn, args, kwargs)
        call = calls.begin(name, args, kwargs)
        if call is None:
            return fn(*args, **kwargs)
        token = current.set(call)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            calls.reset(token)
            call.failed(exc)
            raise
        calls.reset(token)
        call.finished(result)
        return result

    setattr(wrapper, _MARK, fn)
    return wrapper


def _hook(klass: type) -> None:
    """Patch the subclasses of ``klass`` defined from now on, once each is complete: the
    outermost hooked ``__init_subclass__`` patches, after every other one has run."""
    if klass in _hooks or _is_ours(klass.__dict__.get("__init_subclass__")):
        return
    own = klass.__dict__.get("__init_subclass__")

    def hook(cls: type, **kwargs: Any) -> None:
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            if own is not None:
                own.__func__(cls, **kwargs)
            else:
                super(klass, cls).__init_subclass__(**kwargs)  # type: ignore[arg-type]
        finally:
            _depth.n -= 1
        if _depth.n == 0 and calls.state.active:
            try:
                from sklearn.base import BaseEstimator

                if issubclass(cls, BaseEstimator):
                    with _lock:
                        _patch_class(cls)
            except Exception:
                calls.integration_failed(f"patching {cls.__qualname__}")

    setattr(hook, _MARK, own)
    try:
        klass.__init_subclass__ = classmethod(hook)  # type: ignore[method-assign,assignment]
    except (TypeError, AttributeError):
        return
    _hooks[klass] = own


def _patch_parallel() -> None:
    """Carry the running call to the workers of scikit-learn's ``Parallel`` (threads),
    so that the clones a search fits there are known as nested, not new tasks."""
    try:
        from sklearn.utils import parallel
    except ImportError:  # scikit-learn < 1.3: nested calls in threads are tasks
        return
    funcwrapper, par = parallel._FuncWrapper, parallel.Parallel
    for klass, wrapper in ((par, _parallel_call), (funcwrapper, _worker_call)):
        original = klass.__dict__.get("__call__")
        if inspect.isfunction(original) and not _is_ours(original):
            patched = wrapper(original, funcwrapper)
            setattr(patched, _MARK, original)
            klass.__call__ = patched
            _patched[(klass, "__call__")] = original


def _parallel_call(original: Callable[..., Any], funcwrapper: type) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(self: Any, iterable: Any) -> Any:
        frame = calls.current.get() if calls.state.active else None
        if frame is None:
            return original(self, iterable)
        key = calls.share(frame)

        def tagged(f: Any) -> Any:
            if isinstance(f, funcwrapper):
                f._provml_frame = key  # type: ignore[attr-defined]  # an int: pickles
            return f

        return original(self, ((tagged(f), a, k) for f, a, k in iterable))

    return __call__


def _worker_call(original: Callable[..., Any], funcwrapper: type) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = calls.shared(self.__dict__.get("_provml_frame"))
        if frame is None or calls.current.get() is frame:
            return original(self, *args, **kwargs)
        token = calls.current.set(frame)
        try:
            return original(self, *args, **kwargs)
        finally:
            calls.reset(token)

    return __call__


def _patch_param_names(base: type) -> None:
    """``BaseEstimator._get_param_names`` read once per class and constructor: scikit-learn
    reads the constructor's signature with ``inspect`` at every ``get_params`` (0.1 ms for
    a two-step Pipeline's, a percent of its fit), and autolog asks for a meta-estimator's
    parameters at every fit. The names are those of the same constructor function, so
    what every caller gets is unchanged; a class whose constructor is replaced later is
    read again."""
    original = base.__dict__.get("_get_param_names")
    function = getattr(original, "__func__", None)
    if not isinstance(original, classmethod) or _is_ours(function):
        return
    #: (class, its constructor) → (what the names are read from, the names)
    names: dict[tuple[type, Any], tuple[tuple[Any, ...], tuple[str, ...]]] = {}

    def _get_param_names(cls: type) -> list[str]:
        init = cls.__dict__.get("__init__") or cls.__init__  # type: ignore[misc]
        # what inspect.signature reads the names from: a function changed in place
        # (IPython's autoreload swaps its code) is read again
        source = (getattr(init, "__code__", None), getattr(init, "__signature__", None),
                  getattr(init, "__wrapped__", None))  # fmt: skip
        try:
            found = names.get((cls, init))
        except TypeError:  # a constructor that cannot be hashed: scikit-learn's own answer
            return function(cls)  # type: ignore[misc]
        if found is None or any(a is not b for a, b in zip(found[0], source, strict=True)):
            found = (source, tuple(function(cls)))  # type: ignore[misc]
            if len(names) < 4096:  # classes made on the fly are not all kept
                names[(cls, init)] = found
        return list(found[1])

    setattr(_get_param_names, _MARK, function)
    base._get_param_names = classmethod(_get_param_names)  # type: ignore[attr-defined]
    _patched[(base, "_get_param_names")] = original


def _patch_joblib() -> None:
    """``joblib.dump(model, path)`` of a fitted estimator links the file to the model."""
    try:
        import joblib  # type: ignore[import-untyped]
    except ImportError:
        return
    original = joblib.__dict__.get("dump")
    if not inspect.isfunction(original) or _is_ours(original):
        return

    @functools.wraps(original)
    def dump(value: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(value, filename, *args, **kwargs)
        if calls.state.active:
            calls.saved(value, filename)
        return result

    setattr(dump, _MARK, original)
    joblib.dump = dump
    _patched[(joblib, "dump")] = original
