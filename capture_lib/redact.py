"""Keeping secrets out of what a workflow records: parameters and data metadata.

Before a record is queued, the values of ``params``, ``used`` and ``generated`` (and the
metadata of ``cl.file``/``cl.dataset``/``cl.model``) pass through a :class:`Redactor`:

* the value of a key whose name matches a secret pattern becomes ``"***"``, at any depth
  (``{"db": {"password": …}}`` too). Names are compared lowercased, with camelCase and
  dashes turned into underscores (``apiKey`` → ``api_key``), against shell-style
  patterns: :data:`DEFAULT_PATTERNS`, plus ``PROVML_REDACT_KEYS`` (comma-separated) or
  ``init(redact_keys=[…])``, which add to them, never remove;
* a string holding a URL with credentials (``postgres://user:pw@host/db``) keeps the URL
  with ``***`` for the credentials.

An execution's error message (``str`` of the exception a task raised, or what
``end(error=…)`` was given) is free text: :meth:`Redactor.text` hides the value of every
``name=value``, ``name: value`` and ``"name": "value"`` whose name is a secret's, a
``Bearer``/``Basic`` credential and a URL's credentials, and cuts the message to
:data:`MAX_ERROR_CHARS` characters.

>>> Redactor().text('connect failed: password=hunter2 url=https://u:p@db/x, "api_key": "k1"')
'connect failed: password=*** url=https://***@db/x, "api_key": "***"'

>>> r = Redactor()
>>> r({"lr": 0.1, "max_tokens": 512, "apiKey": "sk-1", "db": {"url": "https://u:p@h/x"}})
{'lr': 0.1, 'max_tokens': 512, 'apiKey': '***', 'db': {'url': 'https://***@h/x'}}

The caller's dictionaries are never changed: what changes is copied. Environment
variables are not recorded at all unless allow-listed (:mod:`capture_lib.environment`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from capture_lib.environment.core import REDACTED, strip_credentials

#: what a secret's name looks like (after normalising, see the module docstring);
#: ``*_token`` and not ``*token*``: ``max_tokens`` and ``tokenizer`` are hyperparameters
DEFAULT_PATTERNS: tuple[str, ...] = (
    "*password*", "*passwd*", "pwd", "*_pwd", "*secret*", "*credential*", "token",
    "*_token", "*_token_*", "*apikey*", "*api_key*", "*access_key*", "*private_key*",
    "*signing_key*", "*encryption_key*", "auth", "*_auth", "authorization", "*_authorization",
    "bearer", "cookie", "*_cookie", "*session_key*", "*connection_string*", "dsn",
)  # fmt: skip
#: nested deeper than this, a value is left as it is (the tracker refuses it anyway)
MAX_DEPTH = 40

#: characters of an error message kept (the rest cut, saying how much)
MAX_ERROR_CHARS = 4_000
#: ``name=`` / ``name:`` / ``"name":`` in free text (the value follows: _VALUE)
#: (a name starts a word and is at most 64 characters: a long run of word characters
#: otherwise costs quadratic backtracking, 7 s for 16,000 of them)
_KEY = re.compile(r"""(?<![\w.-])(["']?)([A-Za-z_][\w.-]{0,63})\1(\s*[=:]\s*)""")
_VALUE = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|\{[^}]*\}|[^\s,;&)\]}]+""")
_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_URL_USER = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/\s]*@")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise(key: str) -> str:
    return _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_")


class Redactor:
    def __init__(self, extra: Iterable[str] = ()) -> None:
        if isinstance(extra, str):
            extra = [extra]
        patterns = list(DEFAULT_PATTERNS) + [normalise(p.strip()) for p in extra if p.strip()]
        self.patterns = tuple(dict.fromkeys(patterns))
        self._match = re.compile("|".join(fnmatch.translate(p) for p in self.patterns)).match
        self._known: dict[str, bool] = {}
        #: the keys known not to be secrets: the worker passes over a dict of plain values
        #: under these keys without calling the redactor (capture_lib.worker.scrub)
        self.plain: set[str] = set()

    def secret(self, key: str) -> bool:
        """Whether a key's value is redacted."""
        known = self._known.get(key)
        if known is None:
            known = bool(self._match(normalise(key)))
            if len(self._known) < 10_000:
                self._known[key] = known
                if not known:
                    self.plain.add(key)
        return known

    def text(self, message: str) -> str:
        """Free text (an error message) with secrets hidden and its length cut."""
        cut = 0
        if len(message) > 4 * MAX_ERROR_CHARS:  # bounded work; then redact, then cut
            cut, message = len(message) - 4 * MAX_ERROR_CHARS, message[: 4 * MAX_ERROR_CHARS]

        message = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", message)
        out, at = [], 0
        for m in _KEY.finditer(message):
            if m.start() < at or not self.secret(m.group(2)):
                continue
            value = _VALUE.match(message, m.end())
            if value is None:
                continue
            quote = value.group(0)[0] if value.group(0)[:1] in ("'", '"') else ""
            out += [message[at : m.end()], quote, REDACTED, quote]
            at = value.end()
        message = "".join([*out, message[at:]])
        message = _URL_USER.sub(lambda m: f"{m.group(1)}{REDACTED}@", message)
        if len(message) > MAX_ERROR_CHARS:
            cut += len(message) - MAX_ERROR_CHARS
            message = message[:MAX_ERROR_CHARS]
        return f"{message}… ({cut} more characters cut)" if cut else message

    def __call__(self, value: Any, depth: int = 0) -> Any:
        """``value`` with secrets hidden; the same object when there is none."""
        if depth > MAX_DEPTH:
            return value
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for key, item in value.items():
                if isinstance(key, str) and item is not None and self.secret(key):
                    new = REDACTED
                else:
                    new = self(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        if isinstance(value, (list, tuple)):
            items = [self(item, depth + 1) for item in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, str) and "://" in value and "@" in value:
            masked = strip_credentials(value, mask=REDACTED)
            return value if masked == value else masked
        return value
