"""Values of a record computed on the capture worker, off the caller's thread.

Naming a 1.6 MB training table by its SHA-256 costs about 1.5 ms: as much as a whole
short ``fit``. An integration can instead take a copy of the data (a memory copy, ten
times cheaper than the hash), put a :class:`Deferred` in the record where the data's
reference goes, and let the worker compute the reference as it encodes the batch
(:func:`resolve`, called by :meth:`capture_lib.worker.Worker._encode` before anything
else reads the record). SHA-256 releases the GIL, so on a machine with a free core the
hashing runs beside the caller's next call.

The copies wait in the queue until the worker gets to them. Their bytes are bounded by
a budget (:func:`defer` refuses past it, and the caller then computes the value itself,
as it would without this module); a copy is let go as soon as its value is computed, or
when its record is dropped.

A deferred value is computed once; its function must not raise (it returns what stands
for a failure, say a reference of missing data, and counts it).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: bytes of copies that may wait for the worker, all deferred values together
BUDGET = 256 << 20

_lock = threading.RLock()  # re-entrant: a Deferred may be collected while it is held
_computing = threading.Lock()  # held while a value is computed (not while one is deferred)
_pending = [0, 0]  # [values not computed yet, their bytes]
#: whether this process ever deferred a value: until then the worker looks at nothing
_used = [False]


class Deferred:
    """A value the worker computes (see the module doc)."""

    __slots__ = ("__weakref__", "_fn", "_nbytes", "_value")

    def __init__(self, fn: Callable[[], Any], nbytes: int) -> None:
        self._fn: Callable[[], Any] | None = fn
        self._nbytes = nbytes
        self._value: Any = None

    def value(self) -> Any:
        if self._fn is None:
            return self._value
        with _computing:  # computed once, whoever else asks meanwhile (a close racing
            fn = self._fn  # the worker re-encodes the batch it holds) waits for it
            if fn is not None:
                try:
                    self._value = fn()
                except Exception:  # a bug of the caller's: the batch must still go
                    log.exception("provml: a deferred value could not be computed")
                    self._value = None
                self._release()
        return self._value

    def computed(self) -> bool:
        return self._fn is None

    def _release(self) -> None:
        with _lock:
            if self._fn is None:
                return
            self._fn = None  # lets the copy go
            _pending[0] -= 1
            _pending[1] -= self._nbytes

    def __del__(self) -> None:  # a record dropped before the worker computed it
        self._release()


def room(nbytes: int) -> bool:
    """Whether ``nbytes`` more fit in the budget now (asked before making a copy)."""
    return _pending[1] + nbytes <= BUDGET


def defer(fn: Callable[[], Any], nbytes: int, budget: int | None = None) -> Deferred | None:
    """A deferred value computed by ``fn`` on the worker, holding ``nbytes`` until then;
    None if that would pass the budget (the caller computes the value itself)."""
    limit = BUDGET if budget is None else budget
    with _lock:
        if _pending[1] + nbytes > limit:
            return None
        _pending[0] += 1
        _pending[1] += nbytes
        _used[0] = True
    return Deferred(fn, nbytes)


def _after_fork() -> None:
    """In a forked child: locks the parent's other threads may have held, anew. The
    values a vanished thread held are never given back: a batch's worth at most."""
    global _lock, _computing
    _lock = threading.RLock()
    _computing = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def pending() -> tuple[int, int]:
    """(deferred values not computed yet, the bytes they hold)."""
    return _pending[0], _pending[1]


def resolve(
    items: list[tuple[Any, ...]], fields: dict[str, tuple[int, ...]]
) -> list[tuple[Any, ...]]:
    """``items`` with every deferred value in a dict under ``fields[kind]`` computed; the
    list and a record are copied only when one held such a value. Free in a process that
    never deferred one (a computed value may still sit in a record encoded twice, so
    "none pending" is not enough to pass over them)."""
    if not _used[0]:
        return items
    out: list[tuple[Any, ...]] | None = None
    for i, rec in enumerate(items):
        where = fields.get(rec[0])
        if not where:
            continue
        new: list[Any] | None = None
        for j in where:
            value = rec[j]
            if type(value) is dict and any(type(v) is Deferred for v in value.values()):
                if new is None:
                    new = list(rec)
                new[j] = {k: v.value() if type(v) is Deferred else v for k, v in value.items()}
        if new is not None:
            if out is None:
                out = list(items)
            out[i] = tuple(new)
    return items if out is None else out
