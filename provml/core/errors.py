"""One root error class, with a subclass per concern.

Services turn :class:`ProvmlError` subclasses into JSON error bodies; each carries an
HTTP status (and the headers the answer needs, such as ``Retry-After``) so that the
mapping lives with the error, not with every handler. Each layer that has errors of its
own roots them in one class under :class:`ProvmlError` (``capture_lib.errors``,
``tracker.errors``, ``query.errors``).
"""

from __future__ import annotations


class ProvmlError(Exception):
    """Root of every error provml raises on purpose."""

    status = 500
    code = "internal_error"
    #: seconds after which the same request may succeed (sent as ``Retry-After``)
    retry_after: int | None = None

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def headers(self) -> dict[str, str]:
        """The HTTP headers an answer carrying this error needs."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(ProvmlError):
    """A batch, record or request that does not follow the wire format."""

    status = 400
    code = "invalid_request"


class QueryError(ProvmlError):
    """A SPARQL query that cannot be parsed or run."""

    status = 400
    code = "invalid_query"


class ForbiddenOperation(ProvmlError):
    """A request for something this endpoint never does (for example a SPARQL update)."""

    status = 403
    code = "forbidden"


class NotFound(ProvmlError):
    status = 404
    code = "not_found"


class NotAcceptable(ProvmlError):
    status = 406
    code = "not_acceptable"


class CannotExpress(ProvmlError):
    """Data that exists but cannot be written in the format asked for."""

    status = 422
    code = "cannot_express"


class StoreError(ProvmlError):
    """The triple store failed to read or write."""

    status = 503
    code = "store_unavailable"


class UpstreamError(ProvmlError):
    """A downstream service (the manager, seen from the tracker) failed."""

    status = 502
    code = "upstream_failed"


class ConfigError(ProvmlError):
    code = "bad_configuration"


class QueryTimeout(ProvmlError):
    """A query (or a request made of queries) ran past its time limit
    (``PROVML_QUERY_TIMEOUT``). 503, as Jena Fuseki answers a cancelled query: the
    request was well formed, the service would not spend more time on it."""

    status = 503
    code = "query_timeout"


class ResultTooLarge(ProvmlError):
    """A query's result has more rows than the service returns
    (``PROVML_QUERY_MAX_ROWS``): the same request would fail again, ask for less."""

    status = 422
    code = "result_too_large"


class Busy(ProvmlError):
    """Every query slot is taken (``PROVML_QUERY_MAX_RUNNING``): retry later."""

    status = 503
    code = "busy"
    retry_after = 2
