"""Reading disk-only segment files (``provml ingest``).

Two formats: ``native``, capture_lib's segments (``*.jsonl``, one wire batch per line,
sent to ``/api/v1/batches``), and ``provlake``, the ProvLake client's offline logs
(``prov-*.log``, one JSON array of ProvLake records per line, sent to the tracker's
ProvLake route, which converts them as it converts the client's online requests; see
docs/provlake.md).

Each line of a segment is one batch. A line that is not valid JSON — typically the last
line of a segment whose process was killed mid-write — is skipped and reported, never
fatal; so is a batch the tracker refuses. The :class:`Report` counts both by reason, and
``provml ingest`` exits non-zero when anything was skipped or refused. Batches are sent
one by one through the tracker's normal path, so disk-only and online capture end in
the same graph, and sending a file twice adds nothing (identifiers are derived from the
records).
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from manager.store.oxigraph import OxigraphStore
from provml.core.errors import ValidationError
from provml.interop.provlake import loads


@dataclass(frozen=True)
class Format:
    files: str  # which files of a directory are read (for messages)
    route: str  # where each line is POSTed on the tracker


FORMATS = {
    "native": Format("*.jsonl", "/api/v1/batches"),
    "provlake": Format("prov-*.log", "/provlake/retrospective-provenance"),
}


@dataclass
class Line:
    path: str
    number: int
    body: bytes
    error: str | None = None
    #: why the line is skipped, for the summary: ``torn_line``, ``not_json``,
    #: ``not_a_batch`` (``not_a_bag`` in the provlake format)
    reason: str | None = None


@dataclass
class Report:
    """What an ingest did: loaded, and what it skipped (lines that are not batches) or
    saw refused (batches that are not valid), each with its place and reason."""

    files: int = 0
    batches: int = 0
    records: int = 0
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    skipped_by: Counter[str] = field(default_factory=Counter)
    refused_by: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, message: str) -> None:
        self.skipped.append(message)
        self.skipped_by[reason] += 1

    def refuse(self, reason: str, message: str) -> None:
        self.refused.append(message)
        self.refused_by[reason] += 1

    @property
    def complete(self) -> bool:
        """True when every line was loaded: nothing skipped, nothing refused."""
        return not self.skipped and not self.refused

    def summary(self) -> str:
        """One line: what was loaded, and what was not, with counts by reason.

        >>> r = Report(files=2, batches=3, records=40)
        >>> r.skip("torn_line", "a.jsonl:9: torn last line")
        >>> r.refuse("invalid_request", "b.jsonl:1: invalid batch")
        >>> for part in r.summary().split("; "):
        ...     print(part)
        ingested 40 records in 3 batches from 2 files
        skipped 1 line (torn_line: 1)
        refused 1 batch (invalid_request: 1)
        """
        text = f"ingested {self.records} records in {self.batches} batches from {self.files} files"
        for what, unit, counts in (("skipped", "line", self.skipped_by),
                                   ("refused", "batch", self.refused_by)):  # fmt: skip
            total = sum(counts.values())
            if total:
                plural = unit + ("es" if unit == "batch" else "s") if total > 1 else unit
                reasons = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
                text += f"; {what} {total} {plural} ({reasons})"
        return text


def _wanted(name: str, fmt: str) -> bool:
    if fmt == "provlake":
        return name.startswith("prov-") and name.endswith(".log")
    return name.endswith(".jsonl")


def expand(paths: list[str], fmt: str = "native") -> list[str]:
    """Files as given; directories expanded to their ``*.jsonl`` files (``prov-*.log``
    for the provlake format), sorted."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                out.extend(os.path.join(root, f) for f in files if _wanted(f, fmt))
        else:
            out.append(p)
    return sorted(dict.fromkeys(out))


def read_lines(path: str, fmt: str = "native") -> Iterator[Line]:
    """Every non-empty line of a segment, flagged if it is not a JSON object (for the
    provlake format: not a JSON array; empty arrays are left out)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            body = raw.strip()
            if not body:
                continue
            try:
                obj = loads(body) if fmt == "provlake" else orjson.loads(body)
            except (orjson.JSONDecodeError, ValidationError) as exc:
                if not raw.endswith(b"\n"):
                    why = "torn last line (process killed mid-write?)"
                    yield Line(path, number, body, why, "torn_line")
                else:
                    why = exc.message if isinstance(exc, ValidationError) else f"not JSON: {exc}"
                    yield Line(path, number, body, why, "not_json")
                continue
            if fmt == "provlake":
                if not isinstance(obj, list):
                    why = "not a ProvLake bag (a JSON array of records)"
                    yield Line(path, number, body, why, "not_a_bag")
                elif obj:  # the client writes [] when asked to log prospective provenance
                    yield Line(path, number, body)
            elif not isinstance(obj, dict):
                yield Line(path, number, body, "not a batch object", "not_a_batch")
            else:
                yield Line(path, number, body)


# ---- straight into an embedded store -----------------------------------------------------

#: most lines, and bytes of them, per unit of work handed to a mapping process (at least
#: one line): small enough that every worker has work from the start, and that a batch
#: of thousands of records (one line) does not make a chunk of millions of triples
CHUNK_LINES = 64
CHUNK_BYTES = 256 * 1024
#: N-Quads gathered from the workers before one bulk load. Each load writes its own files,
#: which the compaction after the load then merges; but loads run in a thread beside the
#: mapping (the loader uses one core), and smaller ones start it sooner: 16 MiB loaded
#: 324 k triples in 5.5 s where 64 MiB (one load, after all the mapping) took 6.7 s
LOAD_BYTES = 16 * 1024 * 1024


#: N-Quads, executions to derive edges for, batches, records, refusals (reason, message)
Mapped = tuple[bytes, list[str], int, int, list[tuple[str, str]]]


def _map_chunk(job: tuple[str, list[tuple[str, int, bytes]]]) -> Mapped:
    """In a worker process: validate, resolve and map some lines. Returns the N-Quads,
    the executions to derive edges for, the batches and records mapped, and refusals."""
    from provml.core.mapping import batch_to_nquads, deriving_executions
    from provml.core.resolve import resolve_batch
    from provml.core.wire import check_batch_size, parse_batch
    from provml.interop.provlake import parse_bag, to_batches

    fmt, lines = job
    quads: list[bytes] = []  # N-Quads text: no pyoxigraph term is built (see batch_to_nquads)
    executions: list[str] = []
    records = batches_done = 0
    refused: list[tuple[str, str]] = []
    for where, number, body in lines:
        try:
            if fmt == "provlake":
                check_batch_size(len(body))  # as the tracker's ProvLake route does
                batches = to_batches(parse_bag(body))
            else:
                batches = [parse_batch(body)]
        except ValidationError as exc:  # the reason as the tracker would answer it
            refused.append((exc.code, f"{where}:{number}: {exc.message}"))
            continue
        for batch in batches:
            resolved = resolve_batch(batch)
            quads.append(batch_to_nquads(resolved))
            executions.extend(deriving_executions(resolved))
            records += len(batch.records)
            batches_done += 1
    return b"".join(quads), executions, batches_done, records, refused


_MODEL_TYPE = re.compile(
    rb"^<([^>]*)> <http://www\.w3\.org/1999/02/22-rdf-syntax-ns#type> "
    rb"<https://provml\.dev/ns#Model> \.$",
    re.MULTILINE,
)


def models_in(nquads: list[bytes]) -> set[str]:
    """The nodes typed ``provml:Model`` in the default graph of N-Quads chunks (for the
    lineage index: :meth:`manager.lineage.Index.maintain`)."""
    return {m.group(1).decode() for chunk in nquads for m in _MODEL_TYPE.finditer(chunk)}


def load_direct(
    files: list[str],
    store: OxigraphStore,
    fmt: str = "native",
    progress: Any = None,
    workers: int = 1,
) -> Report:
    """Load segment files straight into an embedded store (no server): the tracker's
    validation and identifiers, the manager's mapping and derivation edges, and
    pyoxigraph's bulk loader. Worker processes map while this one loads; memory stays
    bounded by two chunks (``CHUNK_LINES``, ``CHUNK_BYTES``) per worker in flight and
    three times ``LOAD_BYTES`` of N-Quads (one load gathered, one waiting, one loading).

    Not one transaction per batch, as through the manager: a load cut short leaves the
    batches before the cut, and loading the same files again completes it (the same
    triples: nothing is added twice)."""
    import multiprocessing

    from manager import lineage
    from provml.core.mapping import derivation_update

    report = Report(files=len(files))
    index = lineage.Index(store)
    index.prepare()

    def jobs() -> Iterator[tuple[str, list[tuple[str, int, bytes]]]]:
        chunk: list[tuple[str, int, bytes]] = []
        size = 0
        for path in files:
            for line in read_lines(path, fmt):
                if progress is not None:
                    progress(len(line.body) + 1)
                where = f"{os.path.basename(path)}:{line.number}"
                if line.error:
                    report.skip(line.reason or "not_json", f"{where}: {line.error}")
                    continue
                chunk.append((os.path.basename(path), line.number, line.body))
                size += len(line.body)
                if len(chunk) >= CHUNK_LINES or size >= CHUNK_BYTES:
                    yield fmt, chunk
                    chunk, size = [], 0
        if chunk:
            yield fmt, chunk

    pending: list[bytes] = []  # N-Quads not yet loaded, and the executions they hold
    deriving: list[str] = []
    counted = [0, 0]  # batches, records mapped and not yet handed to the loader
    # the loader thread: pyoxigraph's bulk load releases the GIL and runs on one core, so
    # this thread goes on reading lines and feeding the workers meanwhile (one load waiting
    # at the most: memory stays bounded)
    loads: queue.Queue[tuple[bytes, list[str], int, int] | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []

    def loader() -> None:
        while (item := loads.get()) is not None:
            if failed:
                continue  # drain: the load failed, the caller re-raises
            data, executions, batches, records = item
            try:
                if data:
                    store.bulk_load(data)
                update = derivation_update(executions)  # after the load: see derivation_update
                if update is not None:
                    store.update(update)
                index.maintain(executions, models=models_in([data]))
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)
                continue
            report.batches += batches
            report.records += records

    def load() -> None:
        if failed:
            raise failed[0]
        loads.put((b"".join(pending), list(deriving), counted[0], counted[1]))
        pending.clear()
        deriving.clear()
        counted[:] = [0, 0]

    def write(done: Mapped) -> None:
        data, executions, batches, records, refused = done
        for reason, message in refused:
            report.refuse(reason, message)
        if data:
            pending.append(data)
        deriving.extend(executions)
        counted[0] += batches
        counted[1] += records
        if sum(map(len, pending)) >= LOAD_BYTES:
            load()

    ctx = multiprocessing.get_context("spawn")
    thread = threading.Thread(target=loader, name="provml-bulk-load", daemon=True)
    thread.start()
    try:
        # at most two chunks per worker in flight (Pool.imap would read every file ahead)
        in_flight: deque[Any] = deque()
        with ctx.Pool(max(1, workers)) as pool:
            for job in jobs():
                in_flight.append(pool.apply_async(_map_chunk, (job,)))
                if len(in_flight) >= 2 * max(1, workers):
                    write(in_flight.popleft().get())
            while in_flight:
                write(in_flight.popleft().get())
        load()
    finally:
        loads.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return report
