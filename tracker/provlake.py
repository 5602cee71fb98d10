"""The tracker's ProvLake side: the prospective provenance it was given.

The ProvLake client POSTs a dataflow's specification (its data transformations and
their input and output attributes) to ``<service_url>prospective-provenance``. The
tracker keeps the latest one per dataflow name, one file per dataflow in
``provlake-prospective/`` in its queue directory (memory only without a queue), and
converts the ProvLake records it receives with it (:func:`provml.interop.provlake.to_batches`):
it tells which plain input values are data rather than parameters, and may give a data
transformation its stage. The routes are in :mod:`tracker.app`.

Bounds and owners: a specification is at most :data:`MAX_SPEC_BYTES` of JSON, all of
them together :data:`MAX_TOTAL_BYTES`, at most :data:`MAX_DATAFLOWS` (past any: 413);
a write rewrites only its own dataflow's file, on disk before in memory. Each dataflow
belongs to the token that first stored it: another token may neither replace it (403)
nor read it, nor have its own records converted with it, unless it has the ``admin``
scope (without tokens, everyone is one caller).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

import orjson

from provml.core.errors import ProvmlError, StoreError
from provml.interop.provlake import DataflowSpec, parse_prospective

log = logging.getLogger(__name__)


class Conflict(ProvmlError):
    """A specification exists and the request did not ask to overwrite it."""

    status = 409
    code = "conflict"


class NotYours(ProvmlError):
    """Another token's dataflow, and the caller is no admin."""

    status = 403
    code = "forbidden"


#: bytes of JSON of one dataflow's specification, and of all of them
MAX_SPEC_BYTES = 1 << 20
MAX_TOTAL_BYTES = 64 << 20
MAX_DATAFLOWS = 10_000


class ProspectiveStore:
    DIRECTORY = "provlake-prospective"
    #: the single file older versions kept every specification in (read once, then split)
    OLD_FILE = "provlake-prospective.json"

    def __init__(self, directory: str | None = None) -> None:
        self.path = os.path.join(directory, self.DIRECTORY) if directory else None
        self._lock = threading.Lock()
        self._documents: dict[str, Any] = {}
        self._owners: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        self._total = 0
        self._specs: dict[str, DataflowSpec] = {}
        if self.path:
            self._load(directory or "")

    def _load(self, directory: str) -> None:
        assert self.path is not None
        os.makedirs(self.path, exist_ok=True)
        for name in sorted(os.listdir(self.path)):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.path, name), "rb") as f:
                    kept = orjson.loads(f.read())
                self._keep(kept["document"], kept.get("owner") or "anonymous")
            except (OSError, ValueError, KeyError, TypeError, AttributeError, ProvmlError):
                log.exception("cannot read %s: that dataflow's specification is left out", name)
        old = os.path.join(directory, self.OLD_FILE)
        if os.path.exists(old):  # an older version's single file: split, then remove
            try:
                with open(old, "rb") as f:
                    for doc in orjson.loads(f.read()).values():
                        spec = self._keep(doc, "anonymous")
                        self._write(spec.name, "anonymous", doc)
                os.remove(old)
            except (OSError, ValueError, AttributeError, ProvmlError):
                log.exception("cannot read %s: starting without its specifications", old)

    def _keep(self, doc: Any, owner: str) -> DataflowSpec:
        spec = parse_prospective(doc)
        size = len(orjson.dumps(doc))
        self._total += size - self._sizes.get(spec.name, 0)
        self._documents = {**self._documents, spec.name: doc}
        self._owners[spec.name] = owner
        self._sizes[spec.name] = size
        self._specs = {**self._specs, spec.name: spec}
        return spec

    def put(
        self, doc: Any, *, overwrite: bool, owner: str = "anonymous", admin: bool = True
    ) -> tuple[DataflowSpec, bool]:
        """Keep ``doc`` (checked first: a bad one changes nothing); return its spec and
        whether the dataflow had none before. Without ``overwrite``, a different document
        for the same dataflow is a :class:`Conflict`; another ``owner``'s dataflow is
        :class:`NotYours` unless ``admin``; over a size bound, :class:`TooLarge`."""
        from provml.core.wire import TooLarge

        size = len(orjson.dumps(doc))
        if size > MAX_SPEC_BYTES:
            raise TooLarge(
                f"a dataflow's prospective provenance is {size} bytes of JSON, over the "
                f"limit of {MAX_SPEC_BYTES}: it names transformations and attributes only"
            )
        spec = parse_prospective(doc)
        with self._lock:
            before = self._documents.get(spec.name)
            kept_by = self._owners.get(spec.name, owner)
            if before is not None and kept_by != owner and not admin:
                raise NotYours(
                    f"dataflow {spec.name!r} belongs to another token ({kept_by!r}): only "
                    "it, or a token with the admin scope, may replace it"
                )
            if before is not None and before != doc and not overwrite:
                raise Conflict(
                    f"dataflow {spec.name!r} already has prospective provenance; "
                    "send it with ?overwrite=true (or PUT) to replace it"
                )
            total = self._total - self._sizes.get(spec.name, 0) + size
            if total > MAX_TOTAL_BYTES or (
                before is None and len(self._documents) >= MAX_DATAFLOWS
            ):
                raise TooLarge(
                    f"the tracker keeps at most {MAX_DATAFLOWS} dataflows and {MAX_TOTAL_BYTES} "
                    "bytes of prospective provenance, and this one would pass that"
                )
            if self.path:  # on disk first: a failed write changes nothing
                self._write(spec.name, kept_by, doc)
            self._keep(doc, kept_by)
        return spec, before is None

    def specs(self, owner: str | None = None) -> dict[str, DataflowSpec]:
        """The current specifications by dataflow name (a snapshot): all of them, or
        ``owner``'s (another token's specification never changes how a caller's records
        are read)."""
        specs = self._specs
        if owner is None:
            return specs
        return {k: v for k, v in specs.items() if self._owners.get(k) == owner}

    def documents(self, owner: str | None = None) -> dict[str, Any]:
        """The documents kept, all of them or those of ``owner``."""
        docs = self._documents
        return {k: v for k, v in docs.items() if owner is None or self._owners.get(k) == owner}

    def _write(self, name: str, owner: str, doc: Any) -> None:
        """Rewrite one dataflow's file (atomically, fsynced; nothing left on failure)."""
        assert self.path is not None
        import hashlib

        file = os.path.join(self.path, hashlib.sha256(name.encode()).hexdigest() + ".json")
        tmp = file + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(orjson.dumps({"owner": owner, "document": doc}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, file)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise StoreError(f"cannot keep the prospective provenance: {exc}") from exc
