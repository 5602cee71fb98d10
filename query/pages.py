"""A named question answered one page at a time, with the link to the next page.

REST answers are paged: ``limit`` rows (default :data:`DEFAULT_LIMIT`) from ``offset``.
One row more than the page is read, so the answer knows whether a next page exists, and
says so in an HTTP ``Link: <…>; rel="next"`` header (RFC 8288) in every result format.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from provml.core.hashprefix import expand_params
from provml.core.queryable import Queryable
from query import kinds, questions
from query.questions import PAGING, Question, page

#: rows of a REST answer when the request gives no ``limit``
DEFAULT_LIMIT = 1_000


class Page:
    """At most ``limit`` rows of ``result``; ``more`` once a further row was seen."""

    def __init__(self, result: Any, limit: int, offset: int) -> None:
        self.variables = result.variables
        self.limit, self.offset = limit, offset
        self.more = False
        self._rows = iter(result)
        self._first = next(self._rows, None)  # read ahead: an empty answer is told apart

    @property
    def empty(self) -> bool:
        return self._first is None

    def __iter__(self) -> Iterator[Any]:
        if self._first is None:
            return
        rows = itertools.chain((self._first,), self._rows)
        for i, row in enumerate(rows):
            if i == self.limit:
                self.more = True
                return
            yield row


def ask(store: Queryable, question: Question, values: dict[str, str]) -> Page:
    """One page of ``question``'s answer (``values``: its parameters, ``limit``,
    ``offset``; data parameters may be hash prefixes, see :mod:`provml.core.hashprefix`)."""
    limit, offset = page(values)
    limit = DEFAULT_LIMIT if limit is None else limit
    own = expand_params(store, question, {k: v for k, v in values.items() if k not in PAGING})
    text = questions.chosen(store, question, own).text(own)
    text += f"\nLIMIT {limit + 1}" + (f"\nOFFSET {offset}" if offset else "")
    done = Page(store.query(text), limit, offset)
    if done.empty and not offset:
        kinds.check(store, question, own)  # an id of nothing, or of another kind: say so
    return done


def next_link(url: str, values: dict[str, str], done: Page) -> str:
    """The ``Link`` header value of the page after ``done``."""
    query = urlencode({**values, "limit": done.limit, "offset": done.offset + done.limit})
    return f'<{url}?{query}>; rel="next"'
