"""OpenLineage events → provml's graph (docs/openlineage.md).

Airflow, Spark, dbt, Flink and any ``openlineage-python`` client POST OpenLineage events
(RunEvents, JobEvents, DatasetEvents of spec 1-0-x and 2-0-x) to
``<base URL>/api/v1/lineage``; the tracker checks them here (:mod:`.events`), queues each
event durably as it is (:func:`envelope`), and the manager maps it to quads
(:mod:`.graph`) named by OpenLineage's own names (:mod:`.names`). Pure: no I/O, no Flask.
"""

from __future__ import annotations

from typing import Any

import orjson

from provml.interop.openlineage.events import Event, decode_body, parse_events
from provml.interop.openlineage.graph import datasets, event_quads, runs
from provml.interop.openlineage.names import dataset_iri, job_iri, locations, run_iri

#: the member of a queued body that holds an OpenLineage event (a wire batch has none)
ENVELOPE = "openlineage"


def envelope(event: Event) -> bytes:
    """What the tracker queues for an event: the event as it came, checked."""
    return orjson.dumps({ENVELOPE: event.raw})


def is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and ENVELOPE in obj and "records" not in obj


def from_envelope(obj: dict[str, Any]) -> Event:
    """The event of a queued body, checked again (the manager trusts no one)."""
    (event,) = parse_events(orjson.dumps(obj[ENVELOPE]))
    return event


__all__ = [
    "ENVELOPE",
    "Event",
    "dataset_iri",
    "datasets",
    "decode_body",
    "envelope",
    "event_quads",
    "from_envelope",
    "is_envelope",
    "job_iri",
    "locations",
    "parse_events",
    "run_iri",
    "runs",
]
