"""The Redis Streams broker's address and wire: shared by capture_lib (``mode="broker"``),
the tracker (publishes) and the manager (consumes). See docs/deploy.md, "Many machines".

A broker URL is ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://…`` (TLS);
the password comes from the URL or else from ``PROVML_BROKER_PASSWORD``, and is never
part of what :class:`BrokerURL` shows (``str``, ``repr``, error messages). Each stream
entry holds one wire batch (plain from capture_lib, resolved from a tracker) as its JSON
in the field ``batch``; a dead-letter entry adds ``reason``, the original entry's ``id``
and the ``consumer`` that refused it.

The ``redis`` package (the ``broker`` extra) is imported only by :meth:`BrokerURL.connect`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from provml.core import config
from provml.core.errors import ConfigError

#: the field of a stream entry holding the batch's JSON
FIELD = "batch"
SCHEMES = ("redis", "rediss")


def dead_letter_stream(stream: str) -> str:
    """Where the managers put batches the store refuses (with the reason)."""
    return stream + ":dead"


@dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL; ``password`` never shows in ``str`` or ``repr``."""

    scheme: str
    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, password: str | None = None) -> BrokerURL:
        """``url`` checked; the password from it, else ``password``, else
        ``PROVML_BROKER_PASSWORD``. Errors never repeat the password."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 6379
        except ValueError:
            raise ConfigError(f"{masked(url)!r} is not a broker URL") from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ConfigError(
                f"{masked(url)!r} is not a redis:// or rediss:// URL of the broker "
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ConfigError(f"{masked(url)!r}: the path is the database number, e.g. /0")
        if parts.query or parts.fragment:
            raise ConfigError(f"{masked(url)!r}: a broker URL takes no query or fragment")
        secret = unquote(parts.password) if parts.password else None
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            db=int(path or 0),
            username=unquote(parts.username) if parts.username else None,
            password=secret or password or config.BROKER_PASSWORD.get(),
        )

    def __str__(self) -> str:
        """The URL without its password (what logs and messages show)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}/{self.db}"

    def connect(self, *, timeout: float = 5.0, retries: int = 1, **options: Any) -> Any:
        """A ``redis.Redis`` client for this broker (imports ``redis`` here, only here);
        ``retries`` quick retries of a command that met a connection error (redis-py's
        default, 3 with backoff up to seconds, would hold the caller's loop, which has
        its own: capture_lib spools, the manager waits and reads again)."""
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigError(
                "the broker needs the redis package: pip install 'provml[broker]'"
            ) from None
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            ssl=self.scheme == "rediss",
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            protocol=2,  # the reply shapes the services read (RESP3 changes some)
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
            **options,
        )


def replicated(client: Any, replicas: int, timeout: float) -> None:
    """After a write: wait until ``replicas`` replicas have it (``WAIT``); fewer within
    ``timeout`` seconds raise ``redis.RedisError`` (the write counts as not done: it is
    sent again, which adds nothing). Nothing to wait for when ``replicas`` is 0."""
    if replicas > 0:
        import redis

        got = client.wait(replicas, int(timeout * 1000))
        if got < replicas:
            raise redis.RedisError(
                f"{got} of {replicas} replicas took the batch within {timeout} s "
                "(PROVML_BROKER_REPLICAS)"
            )


def masked(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part hidden (for messages and
    ``provml config``).

    >>> masked("redis://alice:pw@h:6379/0"), masked("redis://:pw@h"), masked("redis://h")
    ('redis://alice:***@h:6379/0', 'redis://:***@h', 'redis://h')
    """
    head, sep, rest = url.partition("//")
    netloc, slash, path = rest.partition("/")
    if not sep or "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{head}//{user}{':***' if colon else ''}@{host}{slash}{path}"
