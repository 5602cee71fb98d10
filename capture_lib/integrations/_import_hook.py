"""Run a function when a module is first imported, without importing it now.

``cl.autolog()`` is called at the top of a script, before the script imports its
frameworks. Importing a heavy framework then (Lightning imports torch: seconds) would
slow every script down, and Keras chooses its backend from ``KERAS_BACKEND`` when it is
first imported: a script that sets it after ``cl.autolog()`` would get another backend.
So an integration whose framework is not imported yet patches it when it is:
:func:`when_imported` puts a finder first on ``sys.meta_path`` that, for that one module
name, wraps its loader so that the function runs right after the module has executed.
:func:`cancel` takes it away again.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from capture_lib.integrations import _sklearn_calls as calls

_lock = threading.Lock()
_local = threading.local()
_waiting: dict[str, Callable[[], None]] = {}


class _Loader:
    """The module's own loader, with ``on_loaded`` run after ``exec_module``."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with _lock:
            fn = _waiting.pop(self._name, None)
        if fn is not None:
            try:
                fn()
            except Exception:
                calls.integration_failed(f"patching {self._name} when it was imported")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _waiting or getattr(_local, "busy", False):
            return None
        _local.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            _local.busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, name)  # type: ignore[assignment]
        return spec


_FINDER = _Finder()


def when_imported(name: str, fn: Callable[[], None]) -> None:
    """Call ``fn`` now if ``name`` is imported, else right after it is."""
    if name in sys.modules:
        fn()
        return
    with _lock:
        _waiting[name] = fn
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def cancel(name: str) -> None:
    """Forget what :func:`when_imported` was waiting for ``name`` to do."""
    with _lock:
        _waiting.pop(name, None)
        if not _waiting and _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
