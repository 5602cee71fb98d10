"""What the HTTP server refuses before the application sees a request.

waitress reads a whole request, body included, before it calls the WSGI application, so
the checks the application makes (the access token, the request limit) came after the
body was buffered, possibly to disk. Here, in waitress's request parser, right after the
headers:

* a body announced over ``PROVML_MAX_REQUEST_BYTES`` is refused (413) without reading it;
  a chunked one is read no further than the limit;
* with access tokens configured, a request that carries a body without a valid token is
  refused (401) before its body is read (requests without a body go on to the
  application, which answers health checks and says 401 or 403 itself);
* a connection that takes longer than ``PROVML_HEADER_TIMEOUT`` to send its headers is
  closed (a client trickling a header byte every few seconds kept the connection busy
  forever), and idle ones after ``PROVML_IDLE_TIMEOUT``; up to ``PROVML_MAX_CONNECTIONS``
  are held at once, so that a hundred idle clients do not lock everyone out.

Refusals are JSON like the application's errors, and written to the audit log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.utilities import Error

from provml.core import config
from provml.web.auth import credentials

#: how often waitress's maintenance runs (seconds): it closes the slow and the idle
CLEANUP_INTERVAL = 1


class JsonError(Error):
    """A waitress error response with a JSON body, as the application writes errors."""

    def __init__(self, code: int, reason: str, error: str, message: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
        super().__init__(message)
        self.code, self.reason, self.error, self.headers = code, reason, error, headers

    def to_response(self, ident: str | None = None) -> Any:  # (status, headers, bytes)
        body = json.dumps({"error": self.error, "message": self.body}).encode()
        headers = [("Content-Type", "application/json"), *self.headers]
        return f"{self.code} {self.reason}", headers, body


def _too_large(limit: int) -> JsonError:
    from provml.core.wire import request_too_large

    return JsonError(
        413, "Request Entity Too Large", "request_entity_too_large", request_too_large(limit, True)
    )


def server_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """waitress settings from the PROVML_* ones (an app's config)."""
    options: dict[str, Any] = {
        # waitress refuses a body of this size or more: one byte over the limit
        "max_request_body_size": config.MAX_REQUEST_BYTES.of(settings) + 1,
        "connection_limit": config.MAX_CONNECTIONS.of(settings),
        "channel_timeout": config.IDLE_TIMEOUT.of(settings),
        "cleanup_interval": CLEANUP_INTERVAL,
    }
    if prefix := config.URL_PREFIX.of(settings):  # routes under it (SCRIPT_NAME), and links
        options["url_prefix"] = prefix
    return options


#: the paths whose small form bodies are read without a token: signing in sends the
#: token in the form (query.web.signin); at most this many bytes, with a length given
OPEN_FORMS = ("/signin", "/signout")
OPEN_FORM_BYTES = 8 * 1024


def guard(server: Any, app: Any) -> None:
    """Install the checks on a waitress server made by ``create_server`` for ``app``."""
    limit = config.MAX_REQUEST_BYTES.of(app.config)
    header_timeout = config.HEADER_TIMEOUT.of(app.config)
    prefix = config.URL_PREFIX.of(app.config)

    class Parser(HTTPRequestParser):
        remote = ""

        def __init__(self, adj: Any) -> None:
            super().__init__(adj)
            self.started = time.monotonic()

        def received(self, data: bytes) -> int:
            had_headers = self.headers_finished
            consumed: int = super().received(data)
            if self.error is not None and not isinstance(self.error, JsonError):
                if self.error.code == 413:
                    self.error = _too_large(limit)
                    # an unauthenticated sender learns nothing of the limits: 401 first
                    self._check_sender()
                self.expect_continue = False  # (waitress would say 100 and read on)
                return consumed
            if not had_headers and self.headers_finished and not self.completed:
                self._check_sender()
            return consumed

        def _open_form(self) -> bool:
            """A sign-in form: one of :data:`OPEN_FORMS`, its length given and small."""
            path = str(getattr(self, "path", ""))
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
            return (
                path in OPEN_FORMS
                and not self.chunked
                and 0 < self.content_length <= OPEN_FORM_BYTES
            )

        def _check_sender(self) -> None:
            """A body follows: refuse it unread if its sender has no valid token."""
            tokens = app.extensions.get("provml.auth")
            if not tokens:
                return
            token = credentials(self.headers.get("AUTHORIZATION"))
            if token is not None and tokens.check(token) is not None:
                return
            if token is None and self._open_form():
                return
            self.error = JsonError(
                401,
                "Unauthorized",
                "unauthorized" if token is None else "invalid_token",
                "this service needs an access token: send Authorization: Bearer <token> "
                "(a request with a body is refused before the body is read)"
                if token is None
                else "the access token is not valid",
                (
                    (
                        "WWW-Authenticate",
                        'Bearer realm="provml"'
                        + ("" if token is None else ', error="invalid_token"'),
                    ),
                ),
            )
            self.completed = True
            # no "100 Continue": waitress would send it and read the body after all
            self.expect_continue = False
            audit_log = app.extensions.get("provml.audit")
            if audit_log is not None:
                path = str(getattr(self, "path", ""))[:500]
                audit_log.write("denied", who="anonymous", remote=self.remote,
                                method=self.command, path=path, status=401,
                                reason=self.error.error, before_body=True)  # fmt: skip

    class Channel(HTTPChannel):
        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None):
            super().__init__(server, sock, addr, adj, map=map)
            remote = addr[0] if isinstance(addr, tuple) and addr else str(addr or "")
            self.parser_class = type("RemoteParser", (Parser,), {"remote": remote})

    def maintenance(now: float, _base: Any = server.maintenance) -> None:
        _base(now)
        cutoff = time.monotonic() - header_timeout
        for channel in list(server.active_channels.values()):
            if getattr(channel, "requests", None):  # serving one: the next one's headers wait
                continue
            request = getattr(channel, "request", None)
            if request is not None and not request.headers_finished and request.started < cutoff:
                channel.will_close = True  # headers still not in: a slow client, closed

    server.channel_class = Channel
    server.maintenance = maintenance
