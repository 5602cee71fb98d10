"""Records as the caller's thread makes them: tuples in the wire format's compact form.

A capture call builds one tuple, the cheapest Python container to build, and queues
it. A tuple is a compact record (see :data:`provml.core.wire.COMPACT_FIELDS`): the kind,
then the fields in a fixed order, None for an absent optional field. The worker
serialises the tuples as they are (orjson writes a tuple as a JSON array), after
redacting secret-looking parameter values (:data:`SECRET_FIELDS`); the tracker expands
them.
``session``/``parent_session`` are None unless the record's own execution or its parent
was numbered in another session (made before a ``fork``, used in the child).
"""

from __future__ import annotations

from provml.core.wire import COMPACT_FIELDS

WF_START = "workflow_start"
WF_END = "workflow_end"
TASK_START = "task_start"
TASK_END = "task_end"
SEC_START = "section_start"
SEC_END = "section_end"
METRIC = "metric"
REPORT = "capture_report"

#: kind → positions of the fields whose values may hold secrets: the worker redacts them
#: (:mod:`capture_lib.redact`) as it encodes a batch, off the caller's thread
SECRET_FIELDS: dict[str, tuple[int, ...]] = {
    kind: tuple(i for i, name in enumerate(fields) if name in ("params", "used", "generated"))
    for kind, fields in COMPACT_FIELDS.items()
}

#: kind → position of the error message, for the records that carry one: secrets in it
#: are redacted and its length cut (:meth:`capture_lib.redact.Redactor.text`)
ERROR_FIELD: dict[str, int] = {
    kind: fields.index("error") for kind, fields in COMPACT_FIELDS.items() if "error" in fields
}

#: kind → positions of the fields holding values (params, used, generated): the ones the
#: wire format's per-value size limit applies to (:mod:`capture_lib.oversize`)
VALUE_FIELDS = SECRET_FIELDS

__all__ = ["COMPACT_FIELDS", "ERROR_FIELD", "SECRET_FIELDS", "VALUE_FIELDS"]
