"""Refusing federated queries (``SERVICE``) on the read-only endpoint.

pyoxigraph has an HTTP client and evaluates ``SERVICE <url> { … }`` by fetching the URL
(measured: ``SERVICE <http://127.0.0.1:…/>`` is attempted), which would let any client
make the server fetch internal URLs and echo their answers. So a query that uses SERVICE
is refused before it runs.

A keyword search on the text alone cannot be exact: ``<`` starts an IRI in a triple
pattern but is "less than" in an expression, and what looks like an IRI holding ``#`` to
a scanner is, to the parser, an operator followed by a comment. So:

1. A query whose text never holds the letters ``service`` in any case, neither as they
   stand nor after expanding ``\\uXXXX``/``\\UXXXXXXXX`` escapes (which SPARQL expands
   before parsing), is fine: the common case, one regex search.
2. Otherwise it must pass two checks, and passes only if both agree there is no SERVICE:
   a scanner that skips strings, comments and IRIs and flags any other ``service`` that
   is not part of a variable or a prefixed name; and rdflib's SPARQL parser, a grammar
   parser like pyoxigraph's, whose parse tree must hold no ``ServiceGraphPattern``. A
   query rdflib cannot parse is refused too (it mentions SERVICE and cannot be checked).

False positives (refused, 403): a query that mentions ``service`` in a way the scanner
cannot tell from the keyword, e.g. a bare prefixed name ``service:x``. No false
negatives are known; tests/query/test_limits.py holds the tricks tried.
"""

from __future__ import annotations

import re
from typing import Any

from provml.core.errors import ForbiddenOperation, QueryError
from provml.core.sparql_text import OPAQUE

MESSAGE = "federated queries (SERVICE) are not allowed on this endpoint"

_WORD = re.compile(r"service", re.IGNORECASE)
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
# the characters of a variable or prefixed name run that may precede an occurrence
_NAME_RUN = re.compile(r"[\w.\-:%\\\u00b7]*\Z")


def check(text: str) -> None:
    """Raise :class:`ForbiddenOperation` if ``text`` may use SERVICE (module docstring)."""
    expanded = _expand(text)
    if not (_WORD.search(text) or _WORD.search(expanded)):
        return
    for variant in dict.fromkeys((text, expanded)):
        if _scanner_finds(variant):
            raise ForbiddenOperation(MESSAGE)
    if _parser_finds(expanded):
        raise ForbiddenOperation(MESSAGE)


#: pyoxigraph parses and evaluates recursively: measured on an 8 MiB stack, 10,000 nested
#: groups or parentheses, or 8,000-12,000 chained operators (``/``, ``|``, ``+``, ``||``,
#: UNION) make it overflow its stack, which kills the whole process (SIGSEGV). So brackets
#: may nest at most this deep …
MAX_NESTING = 200
#: … and a query may hold at most this many operators and pattern keywords
MAX_OPERATORS = 2_000
_BRACKETS = re.compile(r"[(){}\[\]]")
# names and numbers hold dots, dashes and colons that are no operators
_NAMES = re.compile(r"[?$][\w\u00b7]+|[\w.\-\u00b7]*:[\w.:%\-\\\u00b7]*|\d*\.?\d+(?:[eE][+-]?\d+)?")
_OPERATORS = re.compile(
    r"\|\||&&|!=|<=|>=|\^\^|[/|+*=<>!^;,.\-]|\b(?:UNION|OPTIONAL|MINUS|FILTER|BIND|GRAPH)\b",
    re.IGNORECASE,
)


def check_nesting(text: str, limit: int = MAX_NESTING, operators: int = MAX_OPERATORS) -> None:
    """Raise :class:`QueryError` if brackets outside strings, comments and IRIs nest
    deeper than ``limit``, or the query chains more than ``operators`` operators."""
    visible = OPAQUE.sub(" ", text)
    depth = 0
    for m in _BRACKETS.finditer(visible):
        if m.group(0) in "({[":
            depth += 1
            if depth > limit:
                raise QueryError(f"the query nests brackets deeper than {limit} levels")
        else:
            depth -= 1
    count = sum(1 for _ in _OPERATORS.finditer(_NAMES.sub(" ", visible)))
    if count > operators:
        raise QueryError(
            f"the query holds {count} operators and pattern keywords; at most {operators}"
        )


def _expand(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = int(m.group(1) or m.group(2), 16)
        return chr(code) if code <= 0x10FFFF else m.group(0)

    return _UCHAR.sub(one, text)


def _scanner_finds(text: str) -> bool:
    visible = OPAQUE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _WORD.finditer(visible):
        window = visible[max(0, m.start() - 512) : m.start()]
        run = _NAME_RUN.search(window)
        before = run.group(0) if run else ""
        start = m.start() - len(before)
        if "." in before:  # "x.SERVICE" may be a triple's end and the keyword
            return True
        if ":" in before:  # the local part of a prefixed name
            continue
        if start > 0 and visible[start - 1] in "?$":  # part of a variable's name
            continue
        return True
    return False


def _parser_finds(text: str) -> bool:
    from rdflib.plugins.sparql.parser import parseQuery

    try:
        tree = parseQuery(text)
    except Exception as exc:  # rdflib raises pyparsing's errors, and others on odd input
        raise ForbiddenOperation(f"{MESSAGE}: {_unparsed(text, exc)}") from None
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if getattr(node, "name", None) == "ServiceGraphPattern":
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)) or type(node).__name__ == "ParseResults":
            stack.extend(list(node))
    return False


def _unparsed(text: str, exc: Exception) -> str:
    """Why a query that mentions SERVICE could not be checked, in one line: where the
    parser stopped (pyparsing's 1-based line and column) and what it found there."""
    line, col = getattr(exc, "lineno", None), getattr(exc, "col", None)
    if not isinstance(line, int) or not isinstance(col, int):
        return f"the query mentions 'service' and cannot be parsed ({type(exc).__name__})"
    lines = text.split("\n")
    rest = lines[line - 1][col - 1 :].strip() if line <= len(lines) else ""
    found = repr(rest.split()[0][:30]) if rest else "the end of the line"
    return (
        "the query mentions 'service' and cannot be checked for it: it does not parse "
        f"at line {line}, column {col} (found {found})"
    )
