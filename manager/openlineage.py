"""OpenLineage events in the manager: an event mapped (:mod:`provml.interop.openlineage`),
and the join by place between OpenLineage's datasets and what capture_lib read or wrote.

capture_lib names data by content and keeps where it read or wrote it as the
``provml:path`` (and ``provml:hostname``) of that use or generation; an OpenLineage
dataset has a namespace and a name, and its ``provml:location`` is the path or URI they
denote (:func:`provml.interop.openlineage.locations`). An execution that used (generated)
data at a dataset's location used (generated) that dataset: ``prov:used`` (or
``prov:wasGeneratedBy``) is added, and the content node is a ``prov:specializationOf``
the dataset. Whichever side is written last adds the edges, so the order does not
matter; the manager then adds the derivation edges of the executions joined.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pyoxigraph import NamedNode, Quad

from manager.store.base import Store
from provml.core.vocab import PROV_NS
from provml.interop import openlineage

_MATCH = """
  {{ ?act prov:qualifiedUsage ?q . ?q prov:entity ?e . BIND("used" AS ?dir) }}
  UNION {{ ?q prov:activity ?act ; a prov:Generation . ?e prov:qualifiedGeneration ?q .
           BIND("generated" AS ?dir) }}
  OPTIONAL {{ ?ds provml:locationHost ?h }}
  FILTER(!BOUND(?h) || EXISTS {{ ?q provml:hostname ?h }})
  FILTER NOT EXISTS {{ ?act a provml:OpenLineageRun }}
  BIND(EXISTS {{ ?act a provml:InferenceExecution }} AS ?inference)
"""
#: the capture executions' uses and generations at a dataset's location
BY_EXECUTION = (
    "SELECT DISTINCT ?act ?ds ?dir ?e ?inference WHERE {{ VALUES ?act {{ {terms} }} "
    "?q provml:path ?p . ?ds provml:location ?p ." + _MATCH + "}}"
)
#: the uses and generations at these datasets' locations
BY_DATASET = (
    "SELECT DISTINCT ?act ?ds ?dir ?e ?inference WHERE {{ VALUES ?ds {{ {terms} }} "
    "?ds provml:location ?p . ?q provml:path ?p ." + _MATCH + "}}"
)
ANY_DATASET = "ASK { ?ds a provml:OpenLineageDataset }"
#: A run whose events do not all carry its parent facet (START without it, COMPLETE with
#: it) is mapped as a workflow run of its own by the first and part of its parent by the
#: second: it is part of its parent, so not its own task, and no workflow run unless it is
#: a parent itself. Run after each write of a run's events, whichever arrived last.
SETTLE = (
    "DELETE {{ ?r provml:partOf ?r }} WHERE {{ VALUES ?r {{ {terms} }} "
    "?r a provml:OpenLineageRun ; provml:partOf ?r, ?p . FILTER(?p != ?r) }} ; "
    "DELETE {{ ?r a provml:WorkflowExecution }} WHERE {{ VALUES ?r {{ {terms} }} "
    "?r a provml:OpenLineageRun ; provml:partOf ?p . FILTER(?p != ?r) "
    "FILTER NOT EXISTS {{ ?c provml:partOf ?r . FILTER(?c != ?r) }} }}"
)

_USED = NamedNode(PROV_NS + "used")
_GENERATED = NamedNode(PROV_NS + "wasGeneratedBy")
_SPECIALIZATION = NamedNode(PROV_NS + "specializationOf")


class Join:
    """The join by place, for one manager. Until the store holds an OpenLineage dataset
    a capture write costs no query but, every :data:`RECHECK` seconds, one ASK (another
    manager of the same store may have written one: its own write joins what was there)."""

    RECHECK = 30.0

    def __init__(self, store: Store) -> None:
        self.store = store
        self._any = False  # once the store holds an OpenLineage dataset, always
        self._checked = -self.RECHECK

    def quads(
        self, executions: Iterable[str], datasets: Iterable[str]
    ) -> tuple[list[Quad], set[str]]:
        """The join edges of capture ``executions`` and OpenLineage ``datasets`` just
        written, and the executions (but inference ones) that gained any: the manager
        adds their derivation edges."""
        executions, datasets = sorted(set(executions)), sorted(set(datasets))
        if datasets:
            self._any = True
        elif not executions or not self._seen():
            return [], set()
        rows: list[Any] = []
        for query, nodes in ((BY_EXECUTION, executions), (BY_DATASET, datasets)):
            for start in range(0, len(nodes), 500):
                terms = " ".join(str(NamedNode(n)) for n in nodes[start : start + 500])
                rows += list(self.store.query(query.format(terms=terms)))
        out: set[Quad] = set()
        joined: set[str] = set()
        for row in rows:
            act, ds, entity = row["act"], row["ds"], row["e"]
            if row["dir"].value == "used":
                out.add(Quad(act, _USED, ds))
            else:
                out.add(Quad(ds, _GENERATED, act))
            if isinstance(entity, NamedNode) and entity != ds:
                out.add(Quad(entity, _SPECIALIZATION, ds))
            if row["inference"].value != "true":  # no derivations through predictions
                joined.add(act.value)
        return sorted(out, key=str), joined

    def _seen(self) -> bool:
        if not self._any and time.monotonic() - self._checked >= self.RECHECK:
            self._checked = time.monotonic()
            self._any = bool(self.store.query(ANY_DATASET))
        return self._any


def settle_update(runs: Iterable[str]) -> str | None:
    """The update that makes the runs written part of their parent only (:data:`SETTLE`),
    or None without runs."""
    terms = " ".join(str(NamedNode(r)) for r in sorted(set(runs)))
    return SETTLE.format(terms=terms) if terms else None


def mapped_parts(obj: dict[str, Any]) -> tuple[str, set[Quad], list[str], list[str]]:
    """A queued OpenLineage event: its key, quads, runs and located datasets."""
    event = openlineage.from_envelope(obj)
    return (
        event.key,
        set(openlineage.event_quads(event)),
        openlineage.runs(event),
        openlineage.datasets(event),
    )
