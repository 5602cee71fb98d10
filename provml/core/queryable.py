"""What the layers that read a graph need of a store: a SPARQL query.

:class:`manager.store.Store` is one; so is the query service's guarded view of it
(``query.limits.GuardedStore``). The interop and query code is typed against this rather
than against a store class, so that it does not depend on the manager.
"""

from __future__ import annotations

from typing import Any, Protocol


class Queryable(Protocol):
    def query(self, sparql: str, **options: Any) -> Any:
        """pyoxigraph's QuerySolutions, QueryTriples or QueryBoolean of ``sparql``."""
        ...
