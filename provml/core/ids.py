"""Identifiers.

* A capture *session* (one process) is a UUIDv7 made by capture_lib when it starts.
* An *execution* (workflow, task or section run) and a *metric value* are numbered
  ``n = 1, 2, …`` within their session. The tracker turns (session, n) into a UUIDv7
  that keeps the session's timestamp and random bits and puts ``n`` in the low 32 bits
  (RFC 9562 §6.2, "fixed-length dedicated counter"): ids are time-ordered, unique, and
  the same record always gets the same id, so a replayed batch adds nothing.
* A *data value* is named by its content: a file, directory, dataset or model by its
  SHA-256, an inline JSON value by the SHA-256 of its canonical JSON. The same file used
  by two workflows is one node. A value a task *generates* inline (a prediction) is named
  after the generating execution instead, so two equal predictions stay two entities.
* *Plans* are named by the workflow, task and section names.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import orjson

from provml.core.vocab import ID_BASE, PREFIXES

#: the low 32 bits of a session id, where :func:`execution_uuid` puts the counter
LOW32 = (1 << 32) - 1


def uuid7(ms: int, rand: int) -> str:
    """The UUIDv7 (RFC 9562) of 48-bit Unix milliseconds ``ms`` and 74 bits ``rand``
    (the one layout every provml id is made with)."""
    rand &= (1 << 74) - 1
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def new_session_id(now_ms: int | None = None) -> str:
    """A fresh UUIDv7: Unix milliseconds, then 74 random bits of which the lowest 32
    are zeroed (:func:`execution_uuid` puts the counter there)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return uuid7(ms, int.from_bytes(os.urandom(10), "big") & ~LOW32)


def execution_uuid(session: str, n: int) -> str:
    """The UUIDv7 of the ``n``-th execution of ``session``.

    >>> s = "0190a4e2-7b1c-7d2e-8f00-012300000000"
    >>> execution_uuid(s, 5)
    '0190a4e2-7b1c-7d2e-8f00-012300000005'
    >>> execution_uuid(s, 5) < execution_uuid(s, 6)
    True
    """
    # the low 32 bits are the last 8 hex digits: no need to parse the UUID
    return f"{session[:-8]}{n & LOW32:08x}"


def execution_iri(session: str, n: int) -> str:
    return f"{ID_BASE}exec/{execution_uuid(session, n)}"


_EXEC_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def parse_execution_iri(iri: str) -> tuple[str, int]:
    """The (session, n) an execution's IRI was made from (:func:`execution_iri`'s inverse);
    the short form ``id:exec/…`` and the bare UUID are accepted. ValueError otherwise.

    >>> parse_execution_iri("https://provml.dev/id/exec/0190a4e2-7b1c-7d2e-8f00-012300000005")
    ('0190a4e2-7b1c-7d2e-8f00-012300000000', 5)
    """
    text = iri.strip()
    for prefix in (f"{ID_BASE}exec/", "id:exec/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.lower()
    if not _EXEC_UUID.fullmatch(text) or int(text[-8:], 16) == 0:
        raise ValueError(f"{iri.strip()[:200]!r} is not the IRI of an execution (…/id/exec/<uuid>)")
    return f"{text[:-8]}00000000", int(text[-8:], 16)


def metric_iri(session: str, n: int) -> str:
    """A metric value is numbered like an execution but lives under ``metric/``."""
    return f"{ID_BASE}metric/{execution_uuid(session, n)}"


def report_iri(session: str, n: int) -> str:
    """A capture_report record: what a capture session could not capture."""
    return f"{ID_BASE}report/{execution_uuid(session, n)}"


def run_iri(run_key: str, workflow: str) -> str:
    """The run of ``workflow`` that every rank of one batch job shares."""
    return f"{ID_BASE}run/{quote(run_key, safe='')}/{quote(workflow, safe='')}"


def content_iri(sha256_hex: str) -> str:
    """The IRI of a data value with this SHA-256 (files, datasets, models, inline values)."""
    return f"{ID_BASE}data/sha256/{sha256_hex}"


#: the short forms tables print IRIs in (the CLI's tables), read back by :func:`ref_iri`
SHORT_FORMS: dict[str, str] = {"id": ID_BASE, **PREFIXES}
_HEX = re.compile(r"[0-9a-fA-F]+")
_IRI_BAD = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def ref_iri(raw: str, data: bool = True) -> str:
    """The IRI a user means by ``raw``: an absolute IRI; a short form as tables print it
    (``id:exec/…``, ``provml:…``); with ``data``, the 64 hexadecimal digits of a SHA-256
    (or ``sha256:`` and them) for content-addressed data. ValueError says what is wrong."""
    text = raw.strip()
    prefix, colon, rest = text.partition(":")
    if data and (_HEX.fullmatch(text) or (prefix.lower() == "sha256" and colon)):
        digits = (rest if colon else text).lower()
        if len(digits) != 64 or not _HEX.fullmatch(digits):
            shown = digits[:80] + ("…" if len(digits) > 80 else "")
            raise ValueError(
                f"{shown!r} is not a SHA-256: give all 64 hexadecimal digits, a unique "
                "prefix of at least 8, or the IRI"
            )
        return content_iri(digits)
    if not data and prefix.lower() == "sha256":
        raise ValueError(f"{text[:80]!r}: a SHA-256 names data; give the IRI here")
    if colon and prefix in SHORT_FORMS and not rest.startswith("//"):
        text = SHORT_FORMS[prefix] + rest
    if not text or _IRI_BAD.search(text) or not colon:
        what = "an IRI or the SHA-256 of a file" if data else "an absolute IRI"
        raise ValueError(f"{raw.strip()[:200]!r} is not {what}")
    return text


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes of a value: sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def value_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def generated_value_iri(execution: str, role: str) -> str:
    return f"{execution}/generated/{quote(role, safe='')}"


def missing_data_iri(execution: str, direction: str, role: str) -> str:
    """Data an execution named but could not read (``direction``: used, generated): an
    entity of that one use or generation, never shared (it has no content to join on)."""
    return f"{execution}/missing/{direction}/{quote(role, safe='')}"


def plan_iri(*names: str) -> str:
    """``plan_iri("credit-scoring", "train")`` → ``…/plan/credit-scoring/train``."""
    return ID_BASE + "plan/" + "/".join(quote(n, safe="") for n in names)


def attribute_iri(plan: str, direction: str, name: str) -> str:
    """A declared input, output or parameter of a plan (``direction``: in, out, param)."""
    return f"{plan}/{direction}/{quote(name, safe='')}"


def persona_iri(user: str) -> str:
    return f"{ID_BASE}persona/{quote(user, safe='')}"
