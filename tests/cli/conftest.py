"""Fixtures of the CLI and client tests: a real provml server in this process (waitress
in a thread, on a free port), and an embedded store on disk made by the test."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.resolve import resolve_batch
from provml.core.wire import validate_batch
from provml.server import build_app, close_app
from tests.conftest import full_records, make_batch


class LiveServer:
    """``app`` served by waitress on a free loopback port, in a thread of this process."""

    def __init__(self, app: Flask) -> None:
        from waitress.server import create_server

        from provml.web.guard import guard, server_options

        self.app = app
        self.server: Any = create_server(
            app, host="127.0.0.1", port=0, threads=4, ident="provml", **server_options(app.config)
        )
        guard(self.server, app)  # as provml.server.serve does
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        def close_everything() -> None:  # in the server's loop: no race with it
            for channel in list(self.server._map.values()):
                channel.close()

        try:
            self.server.trigger.pull_trigger(close_everything)
        except OSError:
            # the trigger's pipe is gone (EBADF: its descriptor number closed under it, seen
            # once in CI): close the channels from here; the loop leaves once its map is
            # empty, within its 1 s poll
            close_everything()
        self.thread.join(10)
        self.server.task_dispatcher.shutdown()
        close_app(self.app, timeout=5)
        assert not self.thread.is_alive(), "the server thread did not stop"


def load(app: Flask, *batches: dict[str, Any]) -> None:
    """Store batches through the app's manager (not through the code under test)."""
    manager: Manager = app.extensions["provml.manager"]
    for batch in batches:
        manager.apply(resolve_batch(validate_batch(batch)))


def serve(tmp_path: Path, tokens: Any = None) -> LiveServer:
    app = build_app(store="memory:", queue_dir=str(tmp_path / "queue"), tokens=tokens)
    load(app, make_batch(full_records()), make_batch(full_records(t0=1_700_000_100.0)))
    return LiveServer(app)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """All three services around a memory store holding two runs of full_records()."""
    srv = serve(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose embedded store holds one run of full_records()."""
    data = tmp_path / "data"
    store = OxigraphStore(str(data / "store"))
    Manager(store).apply(resolve_batch(validate_batch(make_batch(full_records()))))
    store.close()
    del store
    gc.collect()  # the store's lock goes with the last reference to it
    return data
