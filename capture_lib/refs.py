"""Data references: files, directories, datasets and models named by content.

``file(path)`` hashes the file's bytes with SHA-256, streamed in 1 MiB blocks, and
remembers the digest under (real path, size, mtime, inode): the same unchanged file
costs a ``stat`` the second time. A directory's digest is the SHA-256 of the sorted
``relative-path NUL file-digest LF`` lines of its files.

A reference carries where the file was (``path``, ``host``): the mapping puts those on the
task's use or generation of it, not on the content, which many runs may share. A path
that cannot be read is never named by content: it becomes ``{"@data": "missing", …}``,
an entity of that one use (see docs/capture.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from provml.core.wire import DATA_STRING_FIELDS

log = logging.getLogger(__name__)

_BLOCK = 1 << 20
_cache: dict[tuple[str, int, int, int], str] = {}
_cache_lock = threading.Lock()
CACHE_SIZE = 100_000
#: the host files are read on (a reference says where the file was, not only its bytes)
HOST = socket.gethostname()
#: ``stats()["lost"]`` reason for a named input or output that could not be read
UNREADABLE = "unreadable_input"


def sha256_file(path: str) -> tuple[str, int]:
    """(hex digest, size) of a file, from the cache when it has not changed."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(real, "rb") as f:
            while block := f.read(_BLOCK):
                h.update(block)
        digest = h.hexdigest()
        with _cache_lock:
            if len(_cache) >= CACHE_SIZE:
                _cache.clear()
            _cache[key] = digest
    return digest, st.st_size


def sha256_directory(path: str) -> tuple[str, int]:
    lines = []
    total = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest, size = sha256_file(full)
            total += size
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            lines.append(f"{rel}\0{digest}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(), total


def reference(
    kind: str,
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    count_lost: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A typed data reference for the wire (``{"@data": kind, "sha256": …}``).

    A path that cannot be read gives ``{"@data": "missing", "path", "host", "error"}``
    and is counted with ``count_lost(UNREADABLE)`` (capture_lib passes the running
    client's, so ``stats()["lost"]["unreadable_input"]`` rises): the workflow goes on, the graph
    says what was attempted, and two runs that both lacked ``raw.csv`` never share a node
    (an error message is not content).
    """
    try:
        p = os.fspath(path)
        if os.path.isdir(p):
            digest, size = sha256_directory(p)
            kind = "directory" if kind == "file" else kind
        else:
            digest, size = sha256_file(p)
    except (OSError, TypeError) as exc:
        return _missing(path, exc, count_lost)
    ref: dict[str, Any] = {"@data": kind, "sha256": digest, "path": p, "host": HOST, "size": size}
    for key, value in meta.items():
        if value is not None:
            # fields with a property of their own are strings on the wire: version=2 is "2"
            ref[key] = str(value) if key in DATA_STRING_FIELDS else value
    return ref


def _missing(path: Any, exc: Exception, count_lost: Callable[[str], None] | None) -> dict[str, Any]:
    log.warning("provml: cannot read %r: %s (recorded as missing data)", path, exc)
    if count_lost is not None:
        count_lost(UNREADABLE)
    error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return {"@data": "missing", "path": str(path), "host": HOST, "error": error}
