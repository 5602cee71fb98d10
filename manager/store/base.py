"""The store interface: a few primitives, and conveniences built on them."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from pyoxigraph import Quad


class Store(abc.ABC):
    """A triple store. Implementations must make :meth:`add` all-or-nothing."""

    #: which version of the named questions suits this store's SPARQL engine
    #: (see ``query.questions.DIALECTS``); None: the standard ones
    dialect: str | None = None

    @property
    def keeps_lineage_index(self) -> bool:
        """Whether provml keeps the lineage index in this store and its questions read it
        (:mod:`provml.core.lineage_index`): stores that run the standard questions over
        a default graph of their own."""
        return self.dialect is None

    @classmethod
    @abc.abstractmethod
    def from_url(cls, scheme: str, rest: str) -> Store: ...

    @abc.abstractmethod
    def add(self, quads: Sequence[Quad]) -> None:
        """Add a batch of quads atomically: all of them, or (on error) none."""

    @abc.abstractmethod
    def query(self, sparql: str, **options: Any) -> Any:
        """Run a SPARQL query; returns pyoxigraph's QuerySolutions, QueryTriples or
        QueryBoolean. Raises :class:`provml.core.errors.QueryError` for a bad query.

        Option ``timeout`` (seconds): a store whose server can stop a query tells it so;
        the embedded store cannot, and its caller enforces the limit
        (:mod:`query.limits`)."""

    @abc.abstractmethod
    def update(self, sparql: str) -> None:
        """Run a SPARQL 1.1 update (provml's own, e.g. derivation edges) atomically."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of quads held."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release the store."""

    def compact(self) -> bool:
        """Reorganise the store's files for faster reads; False if there is nothing to do
        here (a SPARQL server compacts its own storage)."""
        return False

    def describe(self) -> str:
        return type(self).__name__
