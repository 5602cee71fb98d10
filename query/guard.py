"""A request's limits (:class:`Limits`), the guard that enforces them on each row read
(:class:`Guard`), and a result read through it (:class:`Guarded`). :mod:`query.limits`
runs requests with them."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pyoxigraph

from provml.core import config
from provml.core.errors import QueryTimeout, ResultTooLarge, StoreError

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0
    max_rows: int = 100_000
    max_running: int = 8
    #: query worker processes for an embedded on-disk store (0: none, query/workers.py)
    workers: int = 0
    #: bytes of resident memory a worker may reach (0: no limit)
    memory: int = 0

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Limits:
        """The limits an app's config says (the environment's where it says nothing)."""
        return cls(
            timeout=config.QUERY_TIMEOUT.of(settings),
            max_rows=config.QUERY_MAX_ROWS.of(settings),
            max_running=config.QUERY_MAX_RUNNING.of(settings),
            workers=config.QUERY_WORKERS.of(settings),
            memory=config.QUERY_MEMORY.of(settings) << 20,
        )


class Guard:
    """The deadline and the row budget of one request."""

    def __init__(self, limits: Limits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline
        self.rows = 0
        self.cancelled = threading.Event()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.cancelled.is_set() or time.monotonic() > self.deadline:
            raise QueryTimeout(timeout_message(self.limits))

    def iterate(self, items: Iterable[T]) -> Generator[T, None, None]:
        """``items``, checking the deadline before each and counting it. A store failing
        midway (a remote answer cut off or garbled, a read error) is a StoreError."""
        limit = self.limits.max_rows
        iterator = iter(items)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except (SyntaxError, OSError) as exc:
                raise StoreError(f"the store's answer broke off: {exc}") from None
            self.check()
            self.rows += 1
            if self.rows > limit:
                raise ResultTooLarge(
                    f"the result has more than {limit} rows (PROVML_QUERY_MAX_ROWS): "
                    "ask for less (LIMIT, a narrower pattern)"
                )
            yield item


class Guarded:
    """A SELECT or CONSTRUCT result whose rows go through a :class:`Guard`."""

    def __init__(self, result: Any, guard: Guard) -> None:
        self.result = result
        self.graph = isinstance(result, (pyoxigraph.QueryTriples, list))  # list: a worker's
        self.variables: list[pyoxigraph.Variable] = [] if self.graph else result.variables
        self._rows = guard.iterate(result)

    def __iter__(self) -> Iterator[Any]:
        return self._rows

    def release(self) -> None:
        """Drop the pyoxigraph result: it may only be freed by the thread that made it
        (pyo3 "unsendable"), and a frame kept alive by some cycle could otherwise free
        it later on another."""
        self._rows.close()
        self.result = None


def timeout_message(limits: Limits) -> str:
    return (
        f"the query took longer than {limits.timeout:g} s (PROVML_QUERY_TIMEOUT): "
        "narrow it, or ask the operator for a longer limit"
    )
