"""Access tokens and their scopes (docs/security.md).

A token is a random string a client sends as ``Authorization: Bearer <token>``. The
services keep only its SHA-256, with a name (the label the audit log records, never
the token) and its scopes:

* ``capture``: write capture batches (``POST /api/v1/batches``, the ProvLake routes);
* ``read``: SPARQL, the named questions, records, exports, stats and metrics;
* ``admin``: everything, including ``POST /api/v1/import``.

Tokens come from a file (``PROVML_TOKENS_FILE``) and/or the environment
(``PROVML_TOKENS``). A file is either JSON::

    {"tokens": [{"name": "ci", "token": "…", "scopes": ["capture", "read"]},
                {"name": "ops", "sha256": "<64 hex>", "scopes": ["admin"]}]}

(or the bare list), or lines ``TOKEN SCOPE[,SCOPE…] [NAME]``, ``#`` starting a comment,
where TOKEN may be ``sha256:<64 hex>`` so that the file holds no token at all.
``PROVML_TOKENS`` holds such lines separated by ``;`` or newlines. A running server
re-reads them on SIGHUP (:func:`reload`), so tokens can be rotated without a restart.

This module does not import Flask: :mod:`provml.web.app` enforces the scopes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from provml.core.errors import ConfigError

log = logging.getLogger(__name__)

CAPTURE, READ, ADMIN = "capture", "read", "admin"
SCOPES = (CAPTURE, READ, ADMIN)
#: a token given in clear must be at least this long (``provml token`` makes 43)
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,63}$")
NAME_RULE = "a name is 1 to 64 letters, digits and _.@:+- (starting with a letter or digit)"


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def digest(token: str) -> bytes:
    """The SHA-256 of a token (what is kept and compared)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    """A fresh random token: 32 bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Identity:
    """Who a request is: a token's name and scopes (never the token)."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class _Entry:
    sha256: bytes
    identity: Identity


class Tokens:
    """The configured tokens. :meth:`check` compares in constant time with every one."""

    def __init__(self, entries: Iterable[_Entry] = ()) -> None:
        self._entries: tuple[_Entry, ...] = tuple(entries)
        self.source = ""
        #: where they were read from, for :func:`reload`
        self.path: str | None = None
        self.env_value: str | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def names(self) -> list[str]:
        return [e.identity.name for e in self._entries]

    def check(self, token: str) -> Identity | None:
        """The identity of ``token``, or None. Every stored hash is compared, with
        :func:`hmac.compare_digest`, whether or not one already matched."""
        presented = digest(token)
        found: Identity | None = None
        for entry in self._entries:  # one snapshot: :func:`reload` swaps the whole tuple
            if hmac.compare_digest(presented, entry.sha256):
                found = entry.identity
        return found


def credentials(header: str | None) -> str | None:
    """The token in an ``Authorization`` header: ``Bearer <token>``, or ``Basic`` with the
    token as the password (for clients that only take credentials in a URL, like the
    ProvLake client: ``http://provml:<token>@host:5000/provlake/``). None if absent or
    unreadable."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


# --- configuration --------------------------------------------------------------------


def load(path: str | None = None, env_value: str | None = None) -> Tokens:
    """The tokens of the file ``path`` and of ``env_value`` (PROVML_TOKENS' syntax).

    Errors name the file and the line, never the token."""
    entries: list[_Entry] = []
    sources = []
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the tokens file {path}: {exc}") from None
        entries += parse(text, where=path)
        sources.append(path)
        _warn_if_readable(path, text)
    if env_value:
        entries += parse_lines(re.split(r"[;\n]", env_value), where="PROVML_TOKENS")
        sources.append("PROVML_TOKENS")
    seen_names: set[str] = set()
    seen_hashes: set[bytes] = set()
    for entry in entries:
        if entry.identity.name in seen_names:
            raise ConfigError(f"two tokens are named {entry.identity.name!r}")
        if entry.sha256 in seen_hashes:
            raise ConfigError(f"the token named {entry.identity.name!r} is given twice")
        seen_names.add(entry.identity.name)
        seen_hashes.add(entry.sha256)
    tokens = Tokens(entries)
    tokens.source = " and ".join(sources)
    tokens.path, tokens.env_value = path, env_value
    return tokens


@dataclass(frozen=True)
class Reloaded:
    """What :func:`reload` changed, by token name (never a token)."""

    count: int
    source: str
    added: list[str]
    removed: list[str]
    changed: list[str]  # the same name with another token or other scopes

    def __str__(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed))
                 if names]  # fmt: skip
        return f"{self.count} tokens from {self.source}; " + ("; ".join(parts) or "no change")


def reload(tokens: Tokens) -> Reloaded:
    """Read ``tokens``' file again (with PROVML_TOKENS as it was at start) and put the
    result in place in one step: requests see the old set or the new one, never a mix.

    Raises :class:`ConfigError` and changes nothing if the file cannot be read or is not
    valid, or if it holds no tokens while some are in force (a running server never
    opens itself up: restart it to serve without tokens)."""
    if not tokens.path:
        raise ConfigError("no tokens file to re-read (the tokens come from PROVML_TOKENS only)")
    with _RELOADING:  # two reloads close together: the last one to run reads the file last
        return _reload(tokens)


_RELOADING = threading.Lock()


def _reload(tokens: Tokens) -> Reloaded:
    assert tokens.path is not None
    new = load(tokens.path, tokens.env_value)
    if not new and tokens:
        raise ConfigError(
            f"{tokens.path} holds no tokens now: keeping the {len(tokens)} in force "
            "(restart the server to serve without tokens)"
        )
    old = {e.identity.name: e for e in tokens._entries}
    fresh = {e.identity.name: e for e in new._entries}
    tokens._entries, tokens.source = new._entries, new.source
    return Reloaded(
        count=len(new),
        source=new.source,
        added=sorted(fresh.keys() - old.keys()),
        removed=sorted(old.keys() - fresh.keys()),
        changed=sorted(n for n in fresh.keys() & old.keys() if fresh[n] != old[n]),
    )


def parse(text: str, where: str) -> list[_Entry]:
    """A tokens file's content: JSON (an object with ``tokens``, or a list) or lines."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        if _nesting(text) > _MAX_NESTING:
            raise ConfigError(f"{where}: nested too deeply to be a tokens file")
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc.args[0]}") from None
        except RecursionError:
            raise ConfigError(f"{where}: nested too deeply to be a tokens file") from None
        items = doc.get("tokens") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise ConfigError(f'{where}: give a list of tokens, or {{"tokens": [...]}}')
        return [_json_entry(item, f"{where}: token {i + 1}") for i, item in enumerate(items)]
    return parse_lines(text.splitlines(), where)


#: arrays and objects in one another at most in a tokens file (it needs three)
_MAX_NESTING = 32


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in a JSON text (brackets in strings left out), at
    least up to one past :data:`_MAX_NESTING`. Read before parsing: the parser would
    otherwise recurse to the interpreter's limit first, and anything that runs in there
    (a finalizer the garbage collector calls) fails for want of stack."""
    if text.count("[") + text.count("{") <= _MAX_NESTING:
        return 0  # cannot nest deeper than it has brackets
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _MAX_NESTING:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def parse_lines(lines: Iterable[str], where: str) -> list[_Entry]:
    entries = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        line = "" if line.startswith("#") else re.sub(r"\s+#.*$", "", line)
        if not line:
            continue
        words = line.split()
        here = f"{where}: line {number}" if where != "PROVML_TOKENS" else f"{where}: entry {number}"
        if len(words) not in (2, 3):
            raise ConfigError(f"{here}: write TOKEN SCOPE[,SCOPE…] [NAME]")
        secret, scopes, name = words[0], words[1].split(","), words[2] if len(words) == 3 else None
        if secret.startswith("sha256:"):
            entries.append(_entry(None, secret[len("sha256:") :], scopes, name, here))
        else:
            entries.append(_entry(secret, None, scopes, name, here))
    return entries


def _json_entry(item: object, here: str) -> _Entry:
    if not isinstance(item, dict):
        raise ConfigError(f"{here}: must be an object with token (or sha256) and scopes")
    unknown = set(item) - {"name", "token", "sha256", "scopes"}
    if unknown:
        raise ConfigError(f"{here}: unknown members {sorted(unknown)}")
    scopes = item.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.split(",")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError(f"{here}: scopes must be a list of {', '.join(SCOPES)}")
    token, sha = item.get("token"), item.get("sha256")
    name = item.get("name")
    if (token is None) == (sha is None):
        raise ConfigError(f"{here}: give either token or sha256")
    if not isinstance(token or sha, str) or (name is not None and not isinstance(name, str)):
        raise ConfigError(f"{here}: token, sha256 and name are strings")
    return _entry(token, sha, scopes, name, here)


def _entry(
    token: str | None, sha: str | None, scopes: list[str], name: str | None, here: str
) -> _Entry:
    if token is not None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{here}: a token must have at least {MIN_TOKEN_LENGTH} characters "
                "(`provml token` makes one)"
            )
        hashed = digest(token)
    else:
        assert sha is not None
        sha = sha.lower()
        if not _HEX64.match(sha):
            raise ConfigError(f"{here}: sha256 must be 64 hexadecimal digits")
        hashed = bytes.fromhex(sha)
    wanted = frozenset(s.strip() for s in scopes if s.strip())
    bad = sorted(wanted - set(SCOPES))
    if bad or not wanted:
        # the values are not echoed: a line in the wrong order would show its token
        raise ConfigError(f"{here}: scopes are among {', '.join(SCOPES)}, comma-separated")
    if name is None:
        name = "token-" + hashed.hex()[:8]
    elif not _NAME.match(name):
        raise ConfigError(f"{here}: {NAME_RULE}")
    return _Entry(hashed, Identity(name, wanted))


def _warn_if_readable(path: str, text: str) -> None:
    """A file holding tokens in clear should be readable by its owner only."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    clear = (
        any(
            not line.split()[0].startswith("sha256:")
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "{", "[", "}", "]"))
        )
        or '"token"' in text
    )
    if clear and mode & 0o077:
        log.warning(
            "the tokens file %s holds tokens and is readable by others: chmod 600 it, "
            "or keep only their sha256",
            path,
        )


# --- where a server may listen without tokens ----------------------------------------


def is_loopback(host: str) -> bool:
    """True if ``host`` (an address or a name) is only reachable from this machine."""
    name = host.strip("[]")
    if name in ("", "*"):
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if name.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    try:
        return bool(addresses) and all(
            ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
        )
    except ValueError:
        return False
