"""Real SPARQL servers for the tests, on loopback: the Oxigraph server (PyPI `oxigraph`)
and Virtuoso open source (Debian `virtuoso-opensource-7-bin`), started and stopped here.

Where a server is not installed the tests that need it are skipped, except under CI
(``CI`` set), where `make test` installs both and a missing one is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
import requests

from tests.conftest import free_port

VIRTUOSO_INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{isql}
NumberOfBuffers = 20000
MaxDirtyBuffers = 12000
DirsAllowed = ., {d}
ResultSetMaxRows = 1000000
MaxQueryExecutionTime = 60

[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {d}
MaxClientConnections = 10
ServerThreads = 10

[SPARQL]
ResultSetMaxRows = 1000000
MaxQueryExecutionTime = 60
"""


def _need(program: str) -> str:
    path = shutil.which(program) or (
        str(Path(sys.executable).parent / program)
        if (Path(sys.executable).parent / program).exists()
        else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is not installed (make test installs it)")
        pytest.skip(f"{program} is not installed (make test installs it)")
    return path


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, params={"query": "ASK {}"}, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: not ready after {timeout} s: {log.read_text()[-2000:]}")


class SparqlServer:
    def __init__(
        self, flavour: str, url: str, proc: subprocess.Popen[bytes], log: Path, out: IO[bytes]
    ) -> None:
        self.flavour, self.url, self.proc, self.log, self._out = flavour, url, proc, log, out

    @property
    def store_url(self) -> str:
        return f"{self.flavour}+{self.url}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def start_oxigraph(workdir: Path) -> SparqlServer:
    program = _need("oxigraph")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "oxigraph.log"
    out = log.open("wb")
    proc = subprocess.Popen(
        [program, "serve", "--location", str(workdir / "data"), "--bind", f"127.0.0.1:{port}",
         "--timeout-s", "60"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = SparqlServer("oxigraph", url, proc, log, out)
    try:
        _wait(url + "/query", proc, log)
    except BaseException:
        server.stop()  # never leave a process behind that nobody can reach
        raise
    return server


def start_virtuoso(workdir: Path) -> SparqlServer:
    program = _need("virtuoso-t")
    isql = _need("isql-vt")
    workdir.mkdir(parents=True, exist_ok=True)
    http, isql_port = free_port(), free_port()
    ini = workdir / "virtuoso.ini"
    ini.write_text(VIRTUOSO_INI.format(d=workdir, isql=isql_port, http=http))
    log = workdir / "virtuoso.out"
    out = log.open("wb")
    proc = subprocess.Popen(
        [program, "+foreground", "+configfile", str(ini)],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{http}"
    _wait(url + "/sparql", proc, log)
    # SPARQL updates and Graph Store writes by the anonymous SPARQL user
    subprocess.run(
        [isql, f"127.0.0.1:{isql_port}", "dba", "dba", 'exec=GRANT SPARQL_UPDATE TO "SPARQL";'],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SparqlServer("virtuoso", url, proc, log, out)
