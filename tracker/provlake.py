"""The tracker's ProvLake side: the prospective provenance it was given.

The ProvLake client POSTs a dataflow's specification (its data transformations and
their input and output attributes) to ``<service_url>prospective-provenance``. The
tracker keeps the latest one per dataflow name, in ``provlake-prospective.json`` in its
queue directory (memory only without a queue), and converts the ProvLake records it
receives with it (:func:`provml.provlake.to_batches`): it tells which plain input values
are data rather than parameters, and may give a data transformation its stage. The
routes are in :mod:`tracker.app`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import orjson

from provml.errors import ProvmlError
from provml.provlake import DataflowSpec, parse_prospective

log = logging.getLogger(__name__)


class Conflict(ProvmlError):
    """A specification exists and the request did not ask to overwrite it."""

    status = 409
    code = "conflict"


class ProspectiveStore:
    FILE = "provlake-prospective.json"

    def __init__(self, directory: str | None = None) -> None:
        self.path = os.path.join(directory, self.FILE) if directory else None
        self._lock = threading.Lock()
        self._documents: dict[str, Any] = {}
        self._specs: dict[str, DataflowSpec] = {}
        if self.path and os.path.exists(self.path):
            try:
                with open(self.path, "rb") as f:
                    documents = orjson.loads(f.read())
                for doc in documents.values():
                    spec = parse_prospective(doc)
                    self._documents[spec.name] = doc
                    self._specs[spec.name] = spec
            except (OSError, ValueError, AttributeError, ProvmlError):
                log.exception("cannot read %s: starting without prospective provenance", self.path)

    def put(self, doc: Any, *, overwrite: bool) -> tuple[DataflowSpec, bool]:
        """Keep ``doc`` (checked first: a bad one changes nothing); return its spec and
        whether the dataflow had none before. Without ``overwrite``, a different document
        for the same dataflow is a :class:`Conflict`."""
        spec = parse_prospective(doc)
        with self._lock:
            before = self._documents.get(spec.name)
            if before is not None and before != doc and not overwrite:
                raise Conflict(
                    f"dataflow {spec.name!r} already has prospective provenance; "
                    "send it with ?overwrite=true (or PUT) to replace it"
                )
            documents = {**self._documents, spec.name: doc}
            if self.path:
                self._save(documents)
            self._documents = documents
            self._specs = {**self._specs, spec.name: spec}
        return spec, before is None

    def specs(self) -> dict[str, DataflowSpec]:
        """The current specifications by dataflow name (a snapshot)."""
        return self._specs

    def documents(self) -> dict[str, Any]:
        return self._documents

    def _save(self, documents: dict[str, Any]) -> None:
        assert self.path is not None
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(documents))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
