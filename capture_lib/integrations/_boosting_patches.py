"""Patching for the XGBoost and LightGBM integrations: attributes replaced and put back,
and a framework patched when it is imported (so that ``cl.autolog()`` does not import a
framework the script may never use).

:func:`when_imported` puts a finder first on ``sys.meta_path`` that, for the awaited
top-level module only, asks the other finders for its spec and wraps its loader: once the
module's code has run in full, the module gets its own loader back and the patch runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from capture_lib.integrations import _sklearn_calls as calls

__all__ = ["MARK", "Integration", "Patches", "when_imported"]

#: the attribute a wrapper keeps the original it wraps under (as the sklearn integration)
MARK = "_provml_wraps"


def failed(where: str) -> None:
    calls.integration_failed(where)


class Patches:
    """Class and module attributes replaced, to be put back."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False
        self._saved: dict[tuple[Any, str], Any] = {}

    def replace(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        """``owner.name = make(original)`` unless it is already ours or not a function."""
        original = owner.__dict__.get(name)
        if not inspect.isfunction(original) or hasattr(original, MARK):
            return
        wrapper = make(original)
        setattr(wrapper, MARK, original)
        setattr(owner, name, wrapper)
        self._saved[(owner, name)] = original

    def restore(self) -> None:
        for (owner, name), original in list(self._saved.items()):
            if hasattr(owner.__dict__.get(name), MARK):
                setattr(owner, name, original)
        self._saved.clear()


class Integration:
    """One framework's patches: put in place when the framework is imported (at once if it
    already is), put back by :meth:`disable`."""

    def __init__(self, framework: str, patch: Callable[[Patches, Any], None]) -> None:
        self.framework = framework
        self.patches = Patches()
        self._patch = patch

    def enabled(self) -> bool:
        """True while the patches are in place (or wait for the framework's import)."""
        return self.patches.active

    def enable(self) -> None:
        """Patch the framework now if it is imported, else as soon as it is."""
        with self.patches.lock:
            self.patches.active = True
            when_imported(self.framework, self._imported)

    def disable(self) -> None:
        """Put back every patched attribute."""
        with self.patches.lock:
            self.patches.active = False
            when_imported(self.framework, None)
            self.patches.restore()

    def _imported(self, module: Any) -> None:
        with self.patches.lock:
            if self.patches.active:
                self._patch(self.patches, module)


class _Loader(importlib.abc.Loader):
    """A module's own loader, then ``then(module)`` once the module is executed."""

    def __init__(self, inner: Any, then: Callable[[Any], None]) -> None:
        self.inner = inner
        self.then = then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        module.__loader__ = self.inner  # the module as it would be without us
        if module.__spec__ is not None:
            module.__spec__.loader = self.inner
        try:
            self.then(module)
        except Exception:
            failed(f"patching {module.__name__} after its import")


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a function on a top-level module once it is imported (so that ``cl.autolog()``
    does not import a framework the script may never use)."""

    def __init__(self) -> None:
        self.waiting: dict[str, Callable[[Any], None]] = {}
        self.local = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        then = self.waiting.get(fullname)
        if then is None or getattr(self.local, "busy", False):
            return None
        self.local.busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        except Exception:
            return None
        finally:
            self.local.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, then)
        return spec


_after_import = _AfterImport()


def when_imported(name: str, then: Callable[[Any], None] | None) -> None:
    """Call ``then(module)`` now if ``name`` is imported, else right after its import;
    ``then=None`` forgets a pending call."""
    if then is None:
        _after_import.waiting.pop(name, None)
        if not _after_import.waiting and _after_import in sys.meta_path:
            sys.meta_path.remove(_after_import)
        return
    module = sys.modules.get(name)
    if module is not None:
        then(module)
        return
    _after_import.waiting[name] = then
    if _after_import not in sys.meta_path:
        sys.meta_path.insert(0, _after_import)
