"""``cl.autolog()`` for Hugging Face Transformers: a ProvmlCallback on every Trainer.

:func:`enable` wraps ``Trainer.__init__`` (a Trainer built with no ProvmlCallback gets one)
and ``Trainer.train`` (a training that raises ends its task as failed, with the error). If
``transformers.trainer`` is not imported yet (importing it imports torch: seconds), an
import hook patches it when it is: enabling imports nothing. :func:`disable` removes the
hook and puts the two methods back; Trainers built before keep their callback.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

_TRAINER_MODULE = "transformers.trainer"
_MARK = "_provml_wraps"
_lock = threading.Lock()
_patched: dict[str, Any] = {}
_state = {"active": False}


class _Bound:
    """What capture_lib.integrations.transformers gives this module (:func:`bind`): its
    callback's base class, the class itself (created on first use), its failure counter."""

    base: Any = None
    make: Any = None
    failed: Any = None


def bind(base: type, make: Callable[[], type], failed: Callable[[str], None]) -> None:
    _Bound.base, _Bound.make, _Bound.failed = base, make, failed


def enabled() -> bool:
    """True while autolog adds the callback to new Trainers."""
    return _state["active"]


def enable() -> None:
    """Add a :class:`ProvmlCallback` to every Trainer built from now on that has none. If
    ``transformers.trainer`` is not imported yet, it is patched when it is (an import
    hook): enabling imports nothing of transformers."""
    with _lock:
        _state["active"] = True
        module = sys.modules.get(_TRAINER_MODULE)
        if module is not None:
            _patch(module)
        elif not any(isinstance(f, _ImportHook) for f in sys.meta_path):
            sys.meta_path.insert(0, _ImportHook())


def disable() -> None:
    """Undo :func:`enable`: Trainers built afterwards get no callback; those built before
    keep theirs."""
    with _lock:
        _state["active"] = False
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _ImportHook)]
        module = sys.modules.get(_TRAINER_MODULE)
        trainer = getattr(module, "Trainer", None)
        for name, original in list(_patched.items()):
            if trainer is not None and hasattr(trainer.__dict__.get(name), _MARK):
                setattr(trainer, name, original)
        _patched.clear()


def _patch(module: Any) -> None:
    trainer = module.Trainer
    for name, wrap in (("__init__", _wrap_init), ("train", _wrap_train)):
        original = trainer.__dict__.get(name)
        if original is None or hasattr(original, _MARK):
            continue
        wrapped = wrap(original)
        setattr(wrapped, _MARK, original)
        setattr(trainer, name, wrapped)
        _patched[name] = original


def callbacks(trainer: Any) -> list[Any]:
    """The ProvmlCallbacks of a Trainer."""
    handler = getattr(trainer, "callback_handler", None)
    ours = _Bound.base
    return [c for c in getattr(handler, "callbacks", ()) if isinstance(c, ours)]


def _wrap_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not _state["active"]:
            return
        try:
            ours = callbacks(self)
            if not ours:
                self.add_callback(_Bound.make()())
                ours = callbacks(self)
            for callback in ours:
                callback._trainer = weakref.ref(self)
        except Exception:
            _Bound.failed("adding the callback to a Trainer")

    return __init__


def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            for callback in callbacks(self):
                callback._train_failed(exc)
            raise

    return train


class _ImportHook(importlib.abc.MetaPathFinder):
    """Patches ``transformers.trainer`` once it is executed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _TRAINER_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _PatchingLoader(loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            with _lock:
                if _state["active"]:
                    _patch(module)
        except Exception:
            _Bound.failed("patching transformers.Trainer")

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename …
        return getattr(self.loader, name)
