"""ProvLake client records → provml wire batches.

The ProvLake client (PyPI ``provlake``) POSTs a JSON array of records (a *bag*) to
``<service_url>retrospective-provenance`` and writes the same arrays, one per line, to its
offline log files (``prov-<uuid4>.log``). A record is::

    {"act_type": "workflow" | "task" | "cycle", "dataflow_name": …,
     "custom_metadata": {…}?, "context": …?, "prov_obj": {…}}

This package turns a bag into validated provml wire batches (:mod:`provml.core.wire`), which
the tracker then resolves and queues exactly like ``POST /api/v1/batches``; so a workflow
instrumented with ProvLake ends in the same PROV-ML graph as one captured by capture_lib.
It is pure: no I/O, no Flask. What maps to what is ``docs/provlake.md``.

A task's ``Generate``, ``Input`` and ``Output`` records arrive in different requests (or
lines), so every identifier is a function of ProvLake's own identifiers: the workflow
execution's provml session of the dataflow name and ``wf_execution``; a task execution
of those and its data transformation name and task ``id`` (its own session and number,
so that tasks of one workflow never share an ``n``); a cycle iteration likewise of the
cycle name and ``iteration_id``. Start and end of one task meet whatever the order and
whatever else was sent in between, and sending a record twice adds nothing.

The parts: the JSON and its shared checks (:mod:`.messages`), prospective provenance
(:mod:`.prospective`), identifiers (:mod:`.identities`), the conversion
(:mod:`.retrospective`).
"""

from provml.interop.provlake.identities import execution_identity, workflow_session
from provml.interop.provlake.messages import loads, parse_bag
from provml.interop.provlake.prospective import DataflowSpec, TransformationSpec, parse_prospective
from provml.interop.provlake.retrospective import to_batches

__all__ = [
    "DataflowSpec",
    "TransformationSpec",
    "execution_identity",
    "loads",
    "parse_bag",
    "parse_prospective",
    "to_batches",
    "workflow_session",
]
