"""Every ``PROVML_*`` environment variable, declared once with its type and default.

Command-line flags and ``init()`` arguments win over the environment; the environment
wins over the defaults below. ``provml config`` prints this table.

A setting registers itself when it is declared (:data:`ALL`, in declaration order). The
services read theirs once, when their app is made (:func:`load` into ``app.config``, keyed
by the variable's name), and then only from there (:meth:`Setting.of`); capture_lib reads
its own when a client is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from provml.core.errors import ConfigError

T = TypeVar("T")

#: every setting, in the order declared (filled by :class:`Setting` itself)
_REGISTRY: list[Setting[Any]] = []


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: T
    parse: Callable[[str], T]
    help: str
    #: a secret (a token): ``provml config`` shows whether it is set, never its value
    secret: bool = False

    def __post_init__(self) -> None:
        _REGISTRY.append(self)

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        env = os.environ if environ is None else environ
        raw = env.get(self.name)
        if raw is None or raw == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError:
            shown = "<secret>" if self.secret else repr(raw)
            wanted = getattr(self.parse, "wanted", None) or _WANTED.get(self.parse)
            expected = f"expected {wanted} ({self.help})" if wanted else self.help
            raise ConfigError(f"{self.name}={shown}: {expected}") from None

    def of(self, config: Mapping[str, Any]) -> T:
        """This setting's value in an app's config (read once by :func:`load`); the
        environment's if the config does not hold it."""
        if self.name in config:
            value: T = config[self.name]
            return value
        return self.get()


def load(
    settings: Iterable[Setting[Any]], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``settings`` read once from the environment: {variable name: value}."""
    return {s.name: s.get(environ) for s in settings}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(raw)
        return raw

    parse.wanted = "one of " + ", ".join(options)  # type: ignore[attr-defined]
    return parse


#: what a setting's parser takes, for the error message
_WANTED: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    _bool: "true or false (1/0, yes/no, on/off)",
}


# capture_lib
URL = Setting("PROVML_URL", None, str, "URL of the tracker, e.g. http://127.0.0.1:5000")
MODE = Setting(
    "PROVML_MODE",
    None,
    _choice("http", "disk", "broker", "off"),
    "http, disk, broker or off; default: http when a URL is set, else disk",
)
PATH = Setting("PROVML_PATH", "prov-logs", str, "directory of disk-only segment files")
DISABLED = Setting("PROVML_DISABLED", False, _bool, "true makes every capture call a no-op")
FLUSH_INTERVAL = Setting(
    "PROVML_FLUSH_INTERVAL", 1.0, float, "seconds between the worker's writes (a number)"
)
QUEUE_SIZE = Setting("PROVML_QUEUE_SIZE", 100_000, int, "records held in memory at most")
BATCH_SIZE = Setting("PROVML_BATCH_SIZE", 2_000, int, "records per batch at most")
FSYNC = Setting(
    "PROVML_FSYNC",
    "interval",
    _choice("interval", "always", "never"),
    "interval: fsync disk segments at most once per flush interval and on every flush; "
    "always: after every batch; never: leave it to the OS",
)
QUEUE_POLICY = Setting(
    "PROVML_QUEUE_POLICY",
    "spill",
    _choice("spill", "block", "drop"),
    "when the queue is full: spill (the caller writes to disk), block (wait up to "
    "PROVML_BLOCK_TIMEOUT), drop (count and drop)",
)
BLOCK_TIMEOUT = Setting(
    "PROVML_BLOCK_TIMEOUT", 1.0, float, "seconds a capture call may wait with policy block"
)
ALLOW_ENV: Setting[tuple[str, ...]] = Setting(
    "PROVML_ALLOW_ENV",
    (),
    lambda raw: tuple(p.strip() for p in raw.split(",") if p.strip()),
    "comma-separated names or patterns of environment variables a workflow may record "
    "(none by default: secrets never leave the process)",
)
REDACT_KEYS: Setting[tuple[str, ...]] = Setting(
    "PROVML_REDACT_KEYS",
    (),
    lambda raw: tuple(p.strip() for p in raw.split(",") if p.strip()),
    "comma-separated name patterns of parameters whose values are recorded as *** "
    "(added to the built-in ones: *password*, *secret*, *_token, *api_key*, ...; "
    "see capture_lib/redact.py)",
)
WORKFLOW = Setting(
    "PROVML_WORKFLOW",
    None,
    str,
    "provml run: the workflow each step is a task of (the steps of one batch script)",
)
PARENT = Setting(
    "PROVML_PARENT",
    None,
    str,
    "provml run: the IRI of the workflow execution the step's task belongs to "
    "(printed by provml run --start-workflow NAME)",
)
USER = Setting("PROVML_USER", None, str, "who runs the workflow (default: the login name)")
TIMEOUT = Setting("PROVML_HTTP_TIMEOUT", 10.0, float, "seconds per HTTP request (a number)")
TOKEN = Setting(
    "PROVML_TOKEN",
    None,
    str,
    "access token capture_lib and the provml commands send to the services (Authorization: Bearer)",
    secret=True,
)

# services
HOST = Setting("PROVML_HOST", "127.0.0.1", str, "address the services bind to")
PORT = Setting("PROVML_PORT", 5000, int, "port the services listen on")
DATA_DIR = Setting("PROVML_DATA_DIR", "provml-data", str, "directory of the embedded store")
MANAGER_URL = Setting("PROVML_MANAGER_URL", None, str, "manager URL for a tracker run on its own")
THREADS = Setting("PROVML_THREADS", 8, int, "WSGI worker threads")
TOKENS_FILE = Setting(
    "PROVML_TOKENS_FILE",
    None,
    str,
    "file of the access tokens the services accept (lines TOKEN SCOPES [NAME], or JSON; "
    "see docs/security.md)",
)
TOKENS = Setting(
    "PROVML_TOKENS",
    None,
    str,
    "access tokens the services accept, as lines of PROVML_TOKENS_FILE separated by ;",
    secret=True,
)
MANAGER_TOKEN = Setting(
    "PROVML_MANAGER_TOKEN",
    None,
    str,
    "token (capture scope) a tracker run on its own sends to its manager",
    secret=True,
)
AUDIT_LOG = Setting(
    "PROVML_AUDIT_LOG",
    None,
    str,
    "file the services append audit events to (default <data-dir>/audit.log; off: none)",
)
# the Redis Streams broker (capture_lib mode="broker", the tracker's and manager's --broker;
# docs/deploy.md "Many machines")
BROKER_URL = Setting(
    "PROVML_BROKER_URL",
    None,
    str,
    "redis:// or rediss:// URL of the broker for the tracker and manager (--broker)",
)
BROKER_PASSWORD = Setting(
    "PROVML_BROKER_PASSWORD",
    None,
    str,
    "password for the broker when its URL holds none (never logged)",
    secret=True,
)
BROKER_STREAM = Setting(
    "PROVML_BROKER_STREAM", "provml:batches", str, "Redis stream the wire batches go to"
)
BROKER_GROUP = Setting(
    "PROVML_BROKER_GROUP", "provml-managers", str, "consumer group the managers read in"
)
BROKER_REPLICAS = Setting(
    "PROVML_BROKER_REPLICAS",
    0,
    int,
    "replicas that must hold a batch (Redis WAIT) before capture_lib or a tracker counts it sent",
)
BROKER_REPLAY_BYTES = Setting(
    "PROVML_BROKER_REPLAY_BYTES",
    64 << 20,
    int,
    "bytes of published batches a publisher keeps until a manager stored them, to publish "
    "again if the broker loses them (a failover or restart; 0: none kept)",
)
BROKER_CLAIM_IDLE = Setting(
    "PROVML_BROKER_CLAIM_IDLE",
    30.0,
    float,
    "seconds a batch may stay unacknowledged before another manager claims it",
)
QUEUE_MAX_BYTES = Setting(
    "PROVML_QUEUE_MAX_BYTES",
    1 << 30,
    int,
    "bytes the tracker's durable queue may hold before it answers 503 (back-pressure)",
)
ACK_WAIT = Setting(
    "PROVML_ACK_WAIT",
    2.0,
    float,
    "seconds the tracker waits for a queued batch to be stored before answering 202",
)
DRAIN_TIMEOUT = Setting(
    "PROVML_DRAIN_TIMEOUT",
    10.0,
    float,
    "seconds a stopping tracker spends delivering its queue (the rest waits on disk)",
)

# query limits (query/limits.py)
QUERY_TIMEOUT = Setting(
    "PROVML_QUERY_TIMEOUT",
    30.0,
    float,
    "seconds a query request (SPARQL, question, record, export) may take; past it: 503",
)
QUERY_MAX_ROWS = Setting(
    "PROVML_QUERY_MAX_ROWS",
    100_000,
    int,
    "rows (solutions or triples) one query request may read from the store; more: 422",
)
QUERY_MAX_RUNNING = Setting(
    "PROVML_QUERY_MAX_RUNNING",
    8,
    int,
    "query evaluations at once, timed-out ones still winding down included; more: 503",
)
QUERY_WORKERS = Setting(
    "PROVML_QUERY_WORKERS",
    4,
    int,
    "worker processes evaluating the embedded on-disk store's queries at once (started as "
    "needed), killed past their time or memory limit (0: in the server's process, where a "
    "query cannot be stopped)",
)
QUERY_MEMORY = Setting(
    "PROVML_QUERY_MEMORY",
    1024,
    int,
    "MiB of resident memory one query's worker may reach; past it the query is stopped "
    "(422 query_memory)",
)
QUERY_MAX_BYTES = Setting(
    "PROVML_QUERY_MAX_BYTES",
    64 * 1024,
    int,
    "largest SPARQL query text (bytes); larger: 413, refused before it is parsed",
)
MAX_REQUEST_BYTES = Setting(
    "PROVML_MAX_REQUEST_BYTES",
    64 * 1024 * 1024,
    int,
    "largest request body the services accept (bytes); larger: 413, refused by its "
    "announced length before it is read (a chunked body: read no further than the limit)",
)
IMPORT_MAX_BYTES = Setting(
    "PROVML_IMPORT_MAX_BYTES",
    8 * 1024 * 1024,
    int,
    "largest document POST /api/v1/import takes (bytes): parsing PROV-JSON/XML/N costs "
    "about 4 s and 19 MB of memory per MB of document; larger: 413",
)
# connections (provml/http_guard.py)
HEADER_TIMEOUT = Setting(
    "PROVML_HEADER_TIMEOUT",
    10.0,
    float,
    "seconds a connection may take to send a request's headers; longer: closed",
)
IDLE_TIMEOUT = Setting(
    "PROVML_IDLE_TIMEOUT",
    60,
    int,
    "seconds an idle connection is kept open",
)
MAX_CONNECTIONS = Setting(
    "PROVML_MAX_CONNECTIONS",
    1000,
    int,
    "connections the server holds at once (idle ones included); more wait to be accepted",
)


def _url_prefix(raw: str) -> str:
    """A path under which a reverse proxy serves provml: ``/provml`` (a leading ``/``,
    no trailing one, no query or fragment)."""
    prefix = "/" + raw.strip().strip("/")
    if prefix == "/":
        return ""
    if any(c in prefix for c in "?#\\ ") or "//" in prefix:
        raise ValueError(raw)
    return prefix


_url_prefix.wanted = "a path such as /provml"  # type: ignore[attr-defined]

URL_PREFIX = Setting(
    "PROVML_URL_PREFIX",
    "",
    _url_prefix,
    "the path under which a reverse proxy serves provml (e.g. /provml, the proxy passing "
    "the path on as it is): every route and every link of the web pages starts with it",
)

ALL: tuple[Setting[Any], ...] = tuple(_REGISTRY)
#: what the services read (into ``app.config``, when their app is made)
SERVER: tuple[Setting[Any], ...] = (
    QUEUE_MAX_BYTES,
    ACK_WAIT,
    DRAIN_TIMEOUT,
    QUERY_TIMEOUT,
    QUERY_MAX_ROWS,
    QUERY_MAX_RUNNING,
    QUERY_WORKERS,
    QUERY_MEMORY,
    QUERY_MAX_BYTES,
    MAX_REQUEST_BYTES,
    IMPORT_MAX_BYTES,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    URL_PREFIX,
)
