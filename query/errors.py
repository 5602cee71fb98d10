"""The query service's errors: one root, :class:`QueryServiceError`."""

from __future__ import annotations

from provml.core.errors import ProvmlError

#: what every refused write says: the query service never changes the store
READ_ONLY = "this endpoint is read-only: it never changes the store"


class QueryServiceError(ProvmlError):
    """Root of the errors only the query service raises."""


class ReadOnly(QueryServiceError):
    """A write method (PUT, POST, DELETE, PATCH) on a read-only resource: 405, with the
    methods the resource does allow in ``allow`` (sent as the Allow header, which HTTP
    requires on a 405)."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allow: tuple[str, ...]) -> None:
        super().__init__(f"{READ_ONLY}; {method} is not allowed here, only {', '.join(allow)}")
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Allow": ", ".join(self.allow)}
