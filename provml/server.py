"""Assembling and running the services (``provml serve``).

All in one (the default): the tracker, the manager and the query service in one
process around one embedded store; the tracker hands batches to the manager by a direct
call. Split: any subset of components; a tracker without a manager in the same process
forwards to ``manager_url`` over HTTP. The manager and the query service must share a
process when the store is embedded, since only one process may open it.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask

from manager import app as manager_app
from manager.store import Store, open_store
from provml.core import config
from provml.core.errors import ConfigError
from provml.web import auth
from provml.web.app import make_app
from provml.web.audit import AuditLog
from provml.web.auth import Tokens
from provml.web.guard import guard, server_options
from query import app as query_app
from tracker import app as tracker_app
from tracker.forward import Forwarder, HttpForwarder, InProcessForwarder

log = logging.getLogger(__name__)

COMPONENTS = ("tracker", "manager", "query")


def build_app(
    components: Iterable[str] = COMPONENTS,
    *,
    store: Store | str | None = None,
    manager_url: str | None = None,
    queue_dir: str | None = None,
    tokens: Tokens | None = None,
    audit_log: AuditLog | None = None,
    manager_token: str | None = None,
    config: dict[str, Any] | None = None,
    broker: str | None = None,
) -> Flask:
    """One WSGI app with the chosen components, each installed by its own package's
    ``install`` (the path its ``create_app`` takes too). ``store``: a Store or a store URL.

    ``tokens``: the access tokens every route but the health checks requires (None or
    empty: no access control); ``audit_log``: where the audit events go;
    ``manager_token``: what a tracker forwarding to ``manager_url`` sends; ``config``:
    ``app.config`` entries, over the ``PROVML_*`` settings read from the environment;
    ``broker``: a Redis URL: a tracker publishes to its stream (no local queue), a
    manager consumes it (docs/deploy.md, "Many machines").
    """
    wanted = set(components)
    unknown = wanted - set(COMPONENTS)
    if unknown or not wanted:
        raise ConfigError(f"components must be among {COMPONENTS}, got {sorted(unknown)}")
    if "tracker" in wanted and "manager" not in wanted and not (manager_url or broker):
        raise ConfigError("a tracker without a manager needs --manager-url (or --broker)")
    st: Store | None = None
    if wanted & {"manager", "query"}:
        if store is None:
            raise ConfigError("the manager and the query service need a store")
        st = store if isinstance(store, Store) else open_store(store)
    app = make_app("provml", config=config)
    manager = None
    if st is not None and "manager" in wanted:
        # the batch route under /manager when the tracker shares the process
        manager = manager_app.install(app, st, "/manager" if "tracker" in wanted else "")
    if broker:
        _install_broker(app, broker, manager, "tracker" in wanted)
    if "tracker" in wanted and broker:
        tracker_app.install(app, app.extensions.pop("provml.broker_forwarder"), None)
    elif "tracker" in wanted:
        forwarder: Forwarder = (
            InProcessForwarder(manager)
            if manager is not None
            else HttpForwarder(manager_url or "", token=manager_token)
        )
        tracker_app.install(app, forwarder, queue_dir)
    if st is not None and "query" in wanted:
        query_app.install(app, st)
    if tokens is not None:  # also when empty: SIGHUP may bring some (reload_tokens)
        app.extensions["provml.auth"] = tokens
    if audit_log is not None:
        app.extensions["provml.audit"] = audit_log
    return app


def _install_broker(app: Flask, url: str, manager: Any, publish: bool) -> None:
    """The broker's consumer (for a manager) and publisher (for a tracker)."""
    from manager.broker import BrokerConsumer
    from provml.core.broker import BrokerURL
    from tracker.broker import BrokerForwarder

    address = BrokerURL.parse(url)
    stream = config.BROKER_STREAM.of(app.config)
    if manager is not None:
        consumer = BrokerConsumer(
            manager, address, stream=stream, group=config.BROKER_GROUP.of(app.config),
            claim_idle=config.BROKER_CLAIM_IDLE.of(app.config),
        )  # fmt: skip
        app.extensions["provml.broker_consumer"] = consumer.start()
        # /readyz says whether it consumes, /metrics what it did (its counts)
        app.extensions["provml.components"]["broker"] = consumer
    if publish:
        app.extensions["provml.broker_forwarder"] = BrokerForwarder(
            address, stream, replicas=config.BROKER_REPLICAS.of(app.config),
            replay_bytes=config.BROKER_REPLAY_BYTES.of(app.config),
        )  # fmt: skip


def close_app(app: Flask, timeout: float | None = None) -> None:
    """Shut down in order: the tracker delivers what it queued, then the store closes."""
    tracker = app.extensions.get("provml.tracker")
    wait = config.DRAIN_TIMEOUT.of(app.config) if timeout is None else timeout
    if tracker is not None and not tracker.close(wait):
        log.warning("stopped with batches still queued: they are delivered at the next start")
    consumer = app.extensions.get("provml.broker_consumer")
    if consumer is not None:  # the batch being written is written and acknowledged
        consumer.close()
    runner = app.extensions.get("provml.query_runner")
    if runner is not None:
        runner.close()  # its query worker processes, before the store they read
    store = app.extensions.get("provml.store")
    if store is not None:
        store.close()
    audit_log = app.extensions.get("provml.audit")
    if audit_log is not None:
        audit_log.close()


def reload_tokens(app: Flask) -> bool:
    """Re-read the app's tokens file (on SIGHUP); logged and audited. On an error the
    tokens in force stay as they were."""
    tokens = app.extensions.get("provml.auth")
    audit_log = app.extensions.get("provml.audit")
    if tokens is None:
        return False
    try:
        done = auth.reload(tokens)
    except Exception as exc:  # whatever it is, the tokens in force stay
        reason = exc.message if isinstance(exc, ConfigError) else type(exc).__name__
        log.error("tokens not reloaded: %s", reason)
        if audit_log is not None:
            audit_log.write("tokens_reload_failed", who="system", reason=reason)
        return False
    log.warning("tokens reloaded: %s", done)
    if audit_log is not None:
        audit_log.write("tokens_reloaded", who="system", count=done.count, added=done.added,
                        removed=done.removed, changed=done.changed)  # fmt: skip
    return True


def serve(app: Flask, host: str, port: int, *, threads: int = 8, ready: Any = None) -> None:
    """Serve ``app`` with waitress until Ctrl-C or SIGTERM, then close the store.

    ``ready`` (a callable) is called with the bound URL once the socket listens.
    """
    from waitress.server import create_server

    try:
        server = create_server(
            app, host=host, port=port, threads=threads, ident="provml",
            **server_options(app.config),
        )  # fmt: skip
    except (OSError, ValueError) as exc:  # the port taken, the address not ours …
        close_app(app, timeout=0)
        why = getattr(exc, "strerror", None) or str(exc)
        hint = ""
        if getattr(exc, "errno", None) == errno.EADDRINUSE:
            hint = ": another process listens there; choose another --port (0: any free one)"
        raise ConfigError(f"cannot listen on {host}:{port}: {why}{hint}") from None
    guard(server, app)
    bound_port = server.effective_port  # type: ignore[union-attr]
    url = f"http://{display_host(host)}:{bound_port}{config.URL_PREFIX.of(app.config)}"

    def stop(signum: int, frame: Any) -> None:
        # waitress's run() treats KeyboardInterrupt as "finish in-flight requests, stop"
        log.info("signal %s: shutting down", signum)
        raise KeyboardInterrupt

    def hangup(signum: int, frame: Any) -> None:
        # off the signal handler: reading files and writing the audit log take locks
        threading.Thread(target=reload_tokens, args=(app,), name="provml-reload").start()

    tokens = app.extensions.get("provml.auth")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        # only with a tokens file to re-read; otherwise SIGHUP stops the server, as usual
        if hasattr(signal, "SIGHUP") and tokens is not None and tokens.path:
            signal.signal(signal.SIGHUP, hangup)
    try:
        if ready is not None:
            threading.Thread(target=ready, args=(url,), name="provml-ready", daemon=True).start()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        close_app(app)
        log.info("stopped")


def store_url(data_dir: str) -> str:
    return "oxigraph:" + os.path.join(data_dir, "store")


def display_host(host: str) -> str:
    """A host clients can use: loopback for a wildcard bind, brackets for IPv6."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
