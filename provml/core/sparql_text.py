"""Reading SPARQL text without parsing it: the parts where words do not count."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

#: strings, comments and IRIs, by the grammar's own terminals (IRIREF without its UCHAR:
#: expand escapes first where they matter). Text outside these is where keywords live.
OPAQUE = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""'
    r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n\r]|\\.)*"'
    r"|'(?:[^'\\\n\r]|\\.)*'"
    r"|#[^\n\r]*"
    r'|<[^<>"{}|^`\\\x00-\x20]*>',
    re.DOTALL,
)

# --- what a request is, and what went wrong with it ----------------------------------

#: the prologue (RFC-style: BASE, PREFIX, SPARQL 1.2's VERSION) and comments, before the
#: first keyword that says what a request is
_PROLOGUE = re.compile(
    r"(?:\s+|#[^\n\r]*"
    r"|BASE\s*<[^<>\s]*>"
    r"|PREFIX\s*[^\s:]*:\s*<[^<>\s]*>"
    r"|VERSION\s*(?:\"[^\"\n\r]*\"|'[^'\n\r]*'))*",
    re.IGNORECASE,
)
_WORD_AT = re.compile(r"[A-Za-z]+")
QUERY_FORMS = ("SELECT", "CONSTRUCT", "DESCRIBE", "ASK")
UPDATE_KEYWORDS = frozenset(
    ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH")
)
#: a prefixed name's prefix (PNAME_NS), not inside a variable, a blank node label or a name
_PNAME_NS = re.compile(r"(?<![\w.\-?$:\\\u00b7])([A-Za-z\u00c0-\U000effff][\w.\-\u00b7]*)?:")
_DECLARED = re.compile(r"PREFIX\s*([^\s:]*):", re.IGNORECASE)
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_POSITION = re.compile(r"error at (\d+):(\d+):\s*(.*)", re.DOTALL)
# one item of the parser's "expected one of …" list: a quoted token, a character class,
# or a bare word (a keyword, or a description such as "Prefix not found")
_EXPECTED_ITEM = re.compile(r'"[^"]*"|\[(?:[^\]\'\\]|\'[^\']*\'|\\.)*\]|[^,\s][^,]*')


def first_keyword(text: str) -> tuple[str, int]:
    """The first word after the prologue and comments, upper-cased ("" if none), and
    where it starts in ``text``."""
    start = _PROLOGUE.match(text)
    at = start.end() if start else 0
    word = _WORD_AT.match(text, at)
    return (word.group(0).upper() if word else ""), at


def is_update(text: str) -> bool:
    """Whether ``text`` is a SPARQL update request (its first keyword is an update's),
    so that it can be refused as one rather than reported as a broken query."""
    return first_keyword(text)[0] in UPDATE_KEYWORDS


def line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``index`` in ``text``."""
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def syntax_message(text: str, error: str, predeclared: Iterable[str] = ()) -> str:
    """One readable line for a query the parser refused with ``error``: where (line and
    column), what was expected and what was found.

    pyoxigraph's parser reports the furthest point any rule reached, which is not where
    the mistake is for the two commonest ones: a misspelt query form (``SELEC`` says
    "expected CONSTRUCT" at the end of the query) and an undeclared prefix (it lists
    Unicode ranges). Those two are found here from the text itself; for the rest, the
    parser's position stays and its list of expectations is cut to the tokens a reader
    can type.

    >>> syntax_message("SELEC * {}", "error at 1:10: expected CONSTRUCT")
    "line 1, column 1: expected SELECT, CONSTRUCT, DESCRIBE or ASK, found 'SELEC'"
    """
    word, at = first_keyword(text)
    if word not in QUERY_FORMS:
        line, col = line_column(text, at)
        expected = f"expected {', '.join(QUERY_FORMS[:-1])} or {QUERY_FORMS[-1]}"
        return f"line {line}, column {col}: {expected}, found {_found(text, at)}"
    match = _POSITION.match(error.strip())
    if match is None:  # not the parser's usual shape: keep it, on one line
        return " ".join(error.split())
    # the parser says "Prefix not found" only now and then (an undeclared prefix before
    # a variable gets "expected OPTIONAL"): any undeclared prefix is the mistake to name
    unclosed = _unclosed_string(text)
    if unclosed is not None:
        line, col = line_column(text, unclosed)
        return f"line {line}, column {col}: a string starts here and is not closed on its line"
    match_word = _unknown_word(text)
    stuck = _index_of(text, int(match.group(1)), int(match.group(2)))
    if match_word is not None and (stuck is None or match_word[1] <= stuck):
        word, index = match_word
        line, col = line_column(text, index)
        close = difflib.get_close_matches(word.upper(), sorted(KEYWORDS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"line {line}, column {col}: {word!r} is no SPARQL keyword or function{hint}"
    unknown = _undeclared_prefix(text, predeclared)
    if unknown is not None:
        prefix, index = unknown
        line, col = line_column(text, index)
        known = ", ".join(f"{p}:" for p in sorted(predeclared))
        hint = f"; predeclared: {known}" if known else ""
        return (
            f"line {line}, column {col}: unknown prefix {prefix}: "
            f"(declare it: PREFIX {prefix}: <…>{hint})"
        )
    line, col, rest = int(match.group(1)), int(match.group(2)), match.group(3)
    tokens = _expected_tokens(rest)
    at_index = _index_of(text, line, col)
    found = _found(text, at_index) if at_index is not None else "the end of the query"
    expected = (
        f"expected {tokens[0]}"
        if len(tokens) == 1
        else f"expected one of {', '.join(tokens)}"
        if tokens
        else "unexpected input"
    )
    return f"line {line}, column {col}: {expected}, found {found}"


#: the words SPARQL 1.1 (and pyoxigraph's 1.2 additions) spell out: keywords, built-in
#: functions and aggregates; a bare word outside them is a misspelling
_KEYWORD_TEXT = """
    BASE PREFIX VERSION SELECT CONSTRUCT DESCRIBE ASK DISTINCT REDUCED AS FROM NAMED WHERE
    GROUP BY HAVING ORDER ASC DESC LIMIT OFFSET VALUES UNDEF OPTIONAL GRAPH SERVICE SILENT
    BIND MINUS FILTER UNION NOT IN EXISTS A TRUE FALSE LOAD CLEAR DROP CREATE ADD MOVE COPY
    TO INTO INSERT DELETE DATA WITH USING DEFAULT ALL LATERAL
    COUNT SUM MIN MAX AVG SAMPLE GROUP_CONCAT SEPARATOR
    STR LANG LANGMATCHES DATATYPE BOUND IRI URI BNODE RAND ABS CEIL FLOOR ROUND CONCAT
    STRLEN UCASE LCASE ENCODE_FOR_URI CONTAINS STRSTARTS STRENDS STRBEFORE STRAFTER YEAR
    MONTH DAY HOURS MINUTES SECONDS TIMEZONE TZ NOW UUID STRUUID MD5 SHA1 SHA256 SHA384
    SHA512 COALESCE IF STRLANG STRDT SAMETERM ISIRI ISURI ISBLANK ISLITERAL ISNUMERIC REGEX
    SUBSTR REPLACE TRIPLE SUBJECT PREDICATE OBJECT ISTRIPLE LANGDIR STRLANGDIR HASLANG
    HASLANGDIR ADJUST"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())
#: a bare word: not a variable, a prefixed name, a language tag, a number or a blank node
_BARE_WORD = re.compile(r"(?<![\w?$:@.\-])([A-Za-z][A-Za-z0-9_]*)(?![\w:.\-(]*:)")


def _unknown_word(text: str) -> tuple[str, int] | None:
    """The first bare word outside strings, IRIs and comments that SPARQL does not know
    (``LIMT``), with where it is; None if there is none."""
    visible = OPAQUE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _BARE_WORD.finditer(visible):
        word = m.group(1)
        if len(word) < 3 or word.upper() in KEYWORDS or visible[m.end() : m.end() + 1] == ":":
            continue  # (one or two letters: no misspelt keyword; the parser's list says more)
        return word, m.start()
    return None


def _unclosed_string(text: str) -> int | None:
    """Where a quoted string starts that its line does not close (short strings cannot
    span lines; long ones must end), outside comments and IRIs; None if every one ends."""
    i = 0
    while True:
        m = OPAQUE.search(text, i)
        gap = text[i : m.start()] if m else text[i:]
        quote = re.search(r"[\"']", gap)
        if quote is not None:
            return i + quote.start()
        if m is None:
            return None
        i = m.end()


def _undeclared_prefix(text: str, predeclared: Iterable[str]) -> tuple[str, int] | None:
    """The first prefixed name whose prefix is declared neither in the query nor ahead of
    it, with its position; None if every one is."""
    visible = OPAQUE.sub(lambda m: " " * len(m.group(0)), text)
    declared = set(predeclared) | {m.group(1) for m in _DECLARED.finditer(visible)}
    for m in _PNAME_NS.finditer(visible):
        prefix = m.group(1) or ""
        before = visible[: m.start()].rstrip()
        if before[-6:].upper() == "PREFIX":  # the declaration itself
            continue
        if prefix not in declared:
            return prefix, m.start()
    return None


def _expected_tokens(rest: str) -> list[str]:
    body = rest.removeprefix("expected one of").removeprefix("expected").strip()
    tokens: list[str] = []
    for item in _EXPECTED_ITEM.findall(body):
        item = item.strip()
        if item.startswith("[") or item in ("Prefix not found", '"<unreported>"'):
            continue  # character classes and placeholders: nothing a reader would type
        token = item[1:-1] if item.startswith('"') and item.endswith('"') else item
        if token and token not in tokens:
            tokens.append(token if _KEYWORD.fullmatch(token) else f"'{token}'")
    return tokens


def _index_of(text: str, line: int, col: int) -> int | None:
    """The index of a 1-based line and column in ``text``; None past its end."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or col < 1:
        return None
    index = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    return index if index < len(text) else None


def _found(text: str, index: int) -> str:
    rest = text[index:].lstrip()
    if not rest:
        return "the end of the query"
    token = re.match(r"[\w:?$]+|\S", rest)
    return repr(token.group(0)[:30] if token else rest[:1])
