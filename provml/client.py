"""One HTTP client for the provml service API (the CLI, the demo, the loaders).

:class:`ProvmlClient` talks to a running ``provml serve`` (or to one component of a split
deployment): the health check, SPARQL queries, named questions, model and dataset
records, capture batches, PROV document imports and exports. Every failure is a
:class:`ClientError` with a message fit to show as it is; its attributes say what
happened (no answer at all, an HTTP error and its body, an answer that is no JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from provml.core.errors import ProvmlError

#: seconds to connect (and, for https, to finish the TLS handshake) before giving up
CONNECT_TIMEOUT = 10
#: seconds to wait for the answer to a health check
HEALTH_TIMEOUT = 10
#: seconds to wait for a query, a question, a record or a batch to be answered
READ_TIMEOUT = 120
#: seconds to wait for a whole document to be imported or exported
DOCUMENT_TIMEOUT = 600

#: the route capture batches go to (capture_lib's wire format)
BATCHES = "/api/v1/batches"

_SPARQL_JSON = "application/sparql-results+json"


def with_details(message: str, details: Any) -> str:
    """An error's message, then its details one per line (the candidates of an ambiguous
    hash prefix, a batch's problems), at most 20 of them."""
    if not isinstance(details, list) or not details:
        return message
    lines = [f"  {d}" for d in details[:20]]
    if len(details) > 20:
        lines.append(f"  … and {len(details) - 20} more")
    return "\n".join([message, *lines])


class ClientError(ProvmlError):
    """The service could not be reached, refused a request, or answered nonsense.

    ``status_code`` is None when no answer came (``cause``: the name of the connection
    error, ``reason``: its text); otherwise it is the HTTP status, ``text`` the body and
    ``body`` the body as JSON (None if it is none).
    """

    status = 502
    code = "client_error"

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status_code: int | None = None,
        text: str = "",
        body: Any = None,
        cause: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status_code = status_code
        self.text = text
        self.body = body
        self.cause = cause
        self.reason = reason

    @property
    def unreachable(self) -> bool:
        """No answer came (refused, timed out, the name did not resolve …)."""
        return self.status_code is None

    @property
    def refused(self) -> bool:
        """The service answered with an HTTP error status."""
        return self.status_code is not None and self.status_code >= 400

    @property
    def error_code(self) -> str | None:
        """The service's error code (``invalid_request``, ``too_large`` …), if it gave one."""
        code = self.body.get("error") if isinstance(self.body, dict) else None
        return code if isinstance(code, str) and code else None


@dataclass
class Exported:
    """An export as the service sent it: the document, and how many statements the
    format could not say (with a sample of them)."""

    data: bytes
    unexpressed: int = 0
    sample: list[str] = field(default_factory=list)


class ProvmlClient:
    """The provml service at ``url``, with ``token`` as the bearer token if given."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ProvmlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the requests ------------------------------------------------------------

    def _send(self, method: str, path: str, timeout: float, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(
                method, self.url + path, timeout=(CONNECT_TIMEOUT, timeout), **kwargs
            )
        except requests.RequestException as exc:
            raise ClientError(
                f"cannot reach {self.url}: {exc}",
                url=self.url,
                cause=type(exc).__name__,
                reason=str(exc),
            ) from exc

    @staticmethod
    def _refused(resp: requests.Response) -> ClientError:
        """An HTTP error as a ClientError: "STATUS: the service's message and details"."""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            said = with_details(str(body.get("message", resp.text)), body.get("details"))
        else:
            said = resp.text
        return ClientError(
            f"{resp.status_code}: {said}",
            url=str(resp.url),
            status_code=resp.status_code,
            text=resp.text,
            body=body,
        )

    @classmethod
    def _json(cls, resp: requests.Response, what: str = "SPARQL JSON results") -> dict[str, Any]:
        """The JSON object of a successful answer; an HTTP error or another body raises."""
        if resp.status_code >= 400:
            raise cls._refused(resp)
        try:
            result = resp.json()
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise ClientError(
                f"{resp.url} did not answer with {what} (is it a provml service?)",
                url=str(resp.url),
                status_code=resp.status_code,
                text=resp.text,
            )
        return result

    def _get_json(self, path: str, params: dict[str, str]) -> requests.Response:
        return self._send(
            "GET", path, READ_TIMEOUT, params=params, headers={"Accept": _SPARQL_JSON}
        )

    # --- the API -----------------------------------------------------------------

    def health(self) -> bool:
        """Whether the service says it is healthy; ClientError if nothing answers."""
        return self._send("GET", "/healthz", HEALTH_TIMEOUT).ok

    def sparql(self, text: str) -> dict[str, Any] | str:
        """A table as SPARQL JSON results, or a graph (CONSTRUCT, DESCRIBE) as Turtle."""
        resp = self._send(
            "POST",
            "/sparql",
            READ_TIMEOUT,
            data={"query": text},
            headers={"Accept": f"{_SPARQL_JSON}, text/turtle;q=0.9"},
        )
        if resp.ok and resp.headers.get("Content-Type", "").startswith("text/turtle"):
            return str(resp.text)
        return self._json(resp)

    def ask(self, name: str, params: dict[str, str]) -> dict[str, Any]:
        """The first page of the named question's rows, as SPARQL JSON results."""
        return self.ask_page(name, params)[0]

    def ask_page(self, name: str, params: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """One page of a question's rows, and whether the service has more."""
        resp = self._get_json(f"/api/v1/questions/{name}", params)
        return self._json(resp), "next" in resp.links

    def record(self, kind: str, ref: str) -> dict[str, Any]:
        """The record of a ``model`` or ``dataset``: ``ref`` is a SHA-256, a unique prefix
        of one, or an IRI."""
        return self._json(self._get_json(f"/api/v1/{kind}s/{quote(ref, safe='')}", {}))

    def report(self, run: str) -> str:
        """A run's report: one self-contained HTML page (``GET /report?run=``)."""
        resp = self._send("GET", "/report", DOCUMENT_TIMEOUT, params={"run": run})
        if resp.status_code >= 400:
            raise self._refused(resp)
        if not resp.headers.get("Content-Type", "").startswith("text/html"):
            raise ClientError(
                f"{resp.url} did not answer with an HTML page (is it a provml service?)",
                url=str(resp.url),
                status_code=resp.status_code,
                text=resp.text[:500],
            )
        return str(resp.text)

    def post_batch(self, data: bytes, route: str = BATCHES) -> dict[str, Any]:
        """Send one batch (a line of a capture log) as it is; the tracker's answer."""
        resp = self._send(
            "POST", route, READ_TIMEOUT, data=data, headers={"Content-Type": "application/json"}
        )
        return self._json(resp, "JSON")

    def import_document(self, data: bytes, fmt: str, base: str | None = None) -> dict[str, Any]:
        """Import one PROV document in format ``fmt`` (``provn``, ``turtle`` …), its
        relative IRIs resolved against ``base``; the manager's answer (its ``document``
        id and ``triples``)."""
        params = {"format": fmt} | ({"base": base} if base else {})
        resp = self._send("POST", "/api/v1/import", DOCUMENT_TIMEOUT, params=params, data=data)
        return self._json(resp, "JSON")

    def export(
        self,
        scope: str = "all",
        ident: str | None = None,
        fmt: str = "turtle",
        strict: bool = False,
    ) -> Exported:
        """The graph, or part of it (``scope``: all, lineage, run, workflow, document,
        named by ``ident``) as a document in format ``fmt``."""
        params = {"scope": scope, "format": fmt, "strict": str(strict).lower()}
        resp = self._send(
            "GET",
            "/api/v1/export",
            DOCUMENT_TIMEOUT,
            params=params | ({"id": ident} if ident else {}),
        )
        if resp.status_code >= 400:
            raise self._refused(resp)
        return Exported(
            resp.content,
            int(resp.headers.get("Provml-Unexpressed", "0")),
            resp.headers.get("Provml-Unexpressed-Sample", "").split(" ; "),
        )
