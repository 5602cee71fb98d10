"""A real ``redis-server`` for the broker tests (Debian's; ``make test`` installs it): on
a free loopback port, in its own directory, with AOF and ``appendfsync always`` (what
docs/deploy.md recommends), killed and restarted on the same port and files."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port


class RedisServer:
    def __init__(self, workdir: Path, *extra: str) -> None:
        program = shutil.which("redis-server")
        if program is None:
            pytest.skip("redis-server is not installed (make test installs it)")
        self.program = program
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.extra = extra
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--daemonize", "no", *self.extra],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self._wait()

    def client(self, **options: Any) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, protocol=2, **options)

    def _wait(self, timeout: float = 20.0) -> None:
        import redis

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                with self.client(socket_timeout=1) as r:
                    r.ping()
                    return
            except redis.AuthenticationError:
                return  # it answers: it wants a password
            except redis.ResponseError as exc:
                if "NOAUTH" in str(exc):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server not ready: {self.log()}")

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: a crash; what AOF (appendfsync always) acknowledged survives."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
