"""What every probe shares: the scalar type, the per-process cache, reading small files,
and keeping secrets out of what is recorded (the command line, URLs, variable names)."""

from __future__ import annotations

import fnmatch
import logging
import os
import platform
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

Scalar = str | int | float | bool | None

MAX_FILE_BYTES = 1 << 20
"""At most this much is read of any /proc or node file."""

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
REDACTED = "***"

_cache: dict[tuple[str, Any], Any] = {}


def clear_cache() -> None:
    """Forget the cached packages, git states, container and GPUs."""
    _cache.clear()


def cached(kind: str, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per ``(kind, key)`` in this process (exceptions are not cached)."""
    try:
        return _cache[(kind, key)]
    except KeyError:
        pass
    value = compute()
    _cache[(kind, key)] = value
    return value


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def read_text(path: Path) -> str:
    """The start (:data:`MAX_FILE_BYTES`) of a file as text; empty if it cannot be read."""
    try:
        with path.open("rb") as f:
            return f.read(MAX_FILE_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def host() -> dict[str, Scalar]:
    """Host name, process id, Python, platform, operating system and CPU count."""
    out: dict[str, Scalar] = {}
    for key, fn in (
        ("hostname", socket.gethostname),
        ("pid", os.getpid),
        ("python", platform.python_version),
        ("platform", platform.platform),
        ("os", platform.system),
        ("cpu_count", os.cpu_count),
    ):
        try:
            out[key] = fn() or None
        except Exception:
            log.debug("provml: cannot get %s", key, exc_info=True)
    return out


def looks_secret(name: str) -> bool:
    """True if a variable or option name holds one of :data:`SECRET_WORDS`."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


# ---------------------------------------------------------------------------------------------
# command line


def command_line(args: Iterable[str]) -> str:
    """The command line, shell-quoted; secret-looking option values and URL credentials hidden."""
    words = [str(a) for a in args]
    hide_next = False
    for i, word in enumerate(words):
        if hide_next:
            hide_next = False
            if not word.startswith("-"):
                words[i] = REDACTED
                continue
        flag, eq, _ = word.partition("=")
        if _secret_flag(flag):
            if eq:
                words[i] = f"{flag}={REDACTED}"
            else:
                hide_next = True  # --password VALUE
            continue
        if "://" in word and "@" in word:
            words[i] = strip_credentials(word, mask=REDACTED)
    return shlex.join(words)


def _secret_flag(word: str) -> bool:
    """An option (``-p``-style options are not judged) whose name looks like a secret."""
    if not word.startswith("--") or word.startswith("--no-"):
        return False
    return looks_secret(word[2:].replace("-", "_"))


def strip_credentials(url: str, mask: str | None = None) -> str:
    """``url`` without a ``user:password@`` (or a bare ``token@``) in a URL with a scheme.

    With ``mask``, the credentials are replaced by ``mask@`` rather than dropped. A user name
    alone is kept for ssh (``ssh://git@host/repo``), where it is not a secret; scp-like
    addresses (``git@host:repo``) hold no password and are returned unchanged.

    >>> strip_credentials("https://user:pw@example.org/repo.git")
    'https://example.org/repo.git'
    >>> strip_credentials("https://tok@example.org/x", mask=REDACTED)
    'https://***@example.org/x'
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    netloc = host if mask is None else f"{mask}@{host}"
    if not has_password and user and parts.scheme.lower() in ("ssh", "git+ssh", "ssh+git"):
        netloc = f"{user}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------------------------------------
# allowed environment variables


def allowed_env(environ: Mapping[str, str], allow_env: Iterable[str]) -> dict[str, Scalar]:
    """``env.<NAME>`` for the variables ``allow_env`` names (see :func:`.collect`)."""
    if isinstance(allow_env, str):  # one name, not its characters
        allow_env = [allow_env]
    exact: set[str] = set()
    patterns: list[str] = []
    for entry in allow_env:
        if not isinstance(entry, str) or not entry:
            continue
        if any(c in entry for c in "*?["):
            patterns.append(entry)
        else:
            exact.add(entry)
    out: dict[str, Scalar] = {}
    for name in sorted(environ):
        if name in exact:
            out[f"env.{name}"] = str(environ[name])
        elif any(fnmatch.fnmatchcase(name, p) for p in patterns):
            if looks_secret(name):
                log.debug("provml: not recording %s: it looks like a secret", name)
                continue
            out[f"env.{name}"] = str(environ[name])
    return out
