"""The tracker's work: a batch checked whole, resolved, queued durably, delivered.

A batch is validated whole (any problem: 400 with every problem listed, nothing
queued), resolved (identifiers assigned, executions linked to their plans, see
:mod:`provml.core.resolve`) and appended to the durable queue (:mod:`tracker.queue`); only
then is it acknowledged. A forwarder thread delivers queued batches to the manager,
retrying with backoff while it is down, and resumes after a restart from the queue's
cursor. The tracker waits up to ``ack_wait`` seconds for the delivery so that a client
usually reads its own writes: 200 means written to the store, 202 means queued durably
and not yet written. A full queue answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from provml.core.errors import ProvmlError, UpstreamError, ValidationError
from provml.core.resolve import resolve_batch
from provml.core.wire import Batch, check_batch_size, parse_batch
from provml.interop import openlineage, provlake
from tracker.errors import QueueFull, ShuttingDown
from tracker.forward import Forwarder
from tracker.provlake import ProspectiveStore
from tracker.queue import DurableQueue, Entry

log = logging.getLogger(__name__)


class Tracker:
    ACK_WAIT = 2.0  # well under capture_lib's HTTP timeout (10 s)
    BACKOFF = (0.05, 5.0)  # first and largest wait between delivery attempts
    #: most batches, and bytes of them, the forwarder delivers at once (group commit)
    GROUP_BATCHES = 64
    GROUP_BYTES = 8 << 20
    #: most queued batches kept in memory, mapped, for the in-process forwarder (not
    #: parsed, checked and mapped again); past it, they are read back from the queue
    HELD = 256

    def __init__(
        self, forwarder: Forwarder, queue: DurableQueue | None = None, ack_wait: float = ACK_WAIT
    ) -> None:
        self.forwarder = forwarder
        self.queue = queue
        self.ack_wait = ack_wait
        self.counts: Counter[str] = Counter()
        # ProvLake prospective provenance, kept next to the queue
        self.prospective = ProspectiveStore(queue.path if queue is not None else None)
        self._lock = threading.Lock()
        self._closing = False
        self._stop = threading.Event()
        #: queue seq → the triples the store said a delivered batch mapped to
        self._triples: dict[int, int] = {}
        self._triples_lock = threading.Lock()
        #: queue seq → what the forwarder's prepare made of it, while queued (see HELD)
        self._resolved: dict[int, Any] = {}
        self._held_lock = threading.Lock()
        self._pump: threading.Thread | None = None
        if queue is not None:
            self._pump = threading.Thread(target=self._forward_loop, name="provml-forwarder",
                                          daemon=True)  # fmt: skip
            self._pump.start()

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def ingest(self, body: bytes) -> tuple[dict[str, Any], int]:
        if self._closing:
            raise ShuttingDown("the tracker is shutting down: retry later")
        try:
            batch = parse_batch(body)
        except ValidationError:
            self.count("batches_rejected")
            raise
        answers, status = self.accept([batch])
        return answers[0], status

    def ingest_provlake(self, body: bytes, owner: str | None = None) -> tuple[dict[str, Any], int]:
        """A ProvLake client's bag of records (:mod:`provml.interop.provlake`): converted to wire
        batches, one per workflow execution, checked whole (any problem: nothing is
        queued), then taken like any batch. Converted with ``owner``'s prospective
        provenance only (None: every dataflow's, for an admin or without tokens)."""
        if self._closing:
            raise ShuttingDown("the tracker is shutting down: retry later")
        try:
            check_batch_size(len(body))  # the same limit as a batch of capture_lib's
            bag = provlake.parse_bag(body)
            batches = provlake.to_batches(bag, self.prospective.specs(owner))
        except ValidationError as exc:
            # the client does not report refusals: say it here
            log.warning("refused ProvLake records: %s", exc.message)
            self.count("provlake_rejected")
            raise
        self.count("provlake_records_received", len(bag))
        answers, status = self.accept(batches)
        state = "stored" if status == 200 else "queued"
        # "error": [] is what the client reads when it asks for validation
        return {"records": len(bag), "batches": answers, "status": state, "error": []}, status

    def accept(self, batches: list[Batch]) -> tuple[list[dict[str, Any]], int]:
        """Resolve valid batches and append them to the durable queue (without a queue,
        deliver them at once); 200 once all are stored, 202 if some are only queued."""
        resolved = [resolve_batch(batch) for batch in batches]
        answers: list[dict[str, Any]] = []
        for batch in batches:
            answers.append(
                {"batch": batch.batch, "session": batch.session, "records": len(batch.records)}
            )
            self.count("batches_received")
            self.count("records_received", len(batch.records))
        if self.queue is None:  # no queue (tests, in-memory stores, a broker): at once
            for answer, one in zip(answers, resolved, strict=True):
                result = self.forwarder.forward(one)
                # "published": in the broker (tracker.broker), not yet in the store
                answer["status"] = result.get("status", "stored")
                if answer["status"] == "stored":
                    answer["triples"] = result.get("triples")
                self.count("batches_forwarded")
            stored = all(answer["status"] == "stored" for answer in answers)
            return answers, 200 if stored else 202
        return self._queue(answers, resolved, [orjson.dumps(one.to_json()) for one in resolved])

    def ingest_openlineage(self, body: bytes) -> tuple[dict[str, Any], int]:
        """OpenLineage events (one, or a JSON array): every one checked first (any
        problem: nothing is queued), then each queued as it came, the way a batch is;
        the manager maps them (:mod:`provml.interop.openlineage`, docs/openlineage.md)."""
        if self._closing:
            raise ShuttingDown("the tracker is shutting down: retry later")
        try:
            check_batch_size(len(body))  # the same limit as a batch of capture_lib's
            events = openlineage.parse_events(body)
        except ValidationError as exc:
            log.warning("refused OpenLineage events: %s", exc.message)
            self.count("openlineage_rejected")
            raise
        self.count("openlineage_events_received", len(events))
        bodies = [openlineage.envelope(event) for event in events]
        answers: list[dict[str, Any]] = [
            {"event": e.key, "eventType": e.event_type,
             "run": openlineage.run_iri(e.run_id) if e.run_id else None}
            for e in events
        ]  # fmt: skip
        if self.queue is None:  # at once: to the manager, or published to a broker
            for answer, one in zip(answers, bodies, strict=True):
                result = self.forwarder.forward_body(one)
                answer["status"] = result.get("status", "stored")
                if answer["status"] == "stored":
                    answer["triples"] = result.get("triples")
            stored = all(answer["status"] == "stored" for answer in answers)
            status = 200 if stored else 202
        else:
            answers, status = self._queue(answers, [None] * len(bodies), bodies)
        states = {answer["status"] for answer in answers}
        state = "stored" if status == 200 else "published" if states == {"published"} else "queued"
        return {"events": answers, "status": state}, status

    def _queue(
        self, answers: list[dict[str, Any]], resolved: Sequence[Batch | None], bodies: list[bytes]
    ) -> tuple[list[dict[str, Any]], int]:
        """Append ``bodies`` (resolved batches, or OpenLineage events: ``resolved`` None)
        to the durable queue and wait a little for their delivery."""
        assert self.queue is not None
        seqs = []
        for one, body in zip(resolved, bodies, strict=True):
            prepared = self._prepare(one) if one is not None else None
            try:
                with self._held_lock:  # held before the forwarder can look for it
                    seqs.append(self.queue.put(body))
                    if prepared is not None:
                        self._resolved[seqs[-1]] = prepared
            except QueueFull:
                self.count("batches_refused_full")
                raise
        seq = seqs[-1] if seqs else 0
        stored = seq == 0 or self.queue.wait_delivered(seq, self.ack_wait)
        for answer, one_seq in zip(answers, seqs or [0] * len(answers), strict=True):
            answer["status"] = "stored" if stored else "queued"
            with self._triples_lock:
                triples = self._triples.pop(one_seq, None) if stored else None
            if triples is not None:  # what the store said, as without a queue
                answer["triples"] = triples
        return answers, 200 if stored else 202

    def _prepare(self, batch: Batch) -> Any:
        """What the forwarder will need of a batch about to be queued (mapped here, in
        the request's thread, while the forwarder writes others), unless HELD are kept
        (None: the forwarder reads it back from the queue)."""
        if len(self._resolved) >= self.HELD:
            return None
        try:
            return self.forwarder.prepare(batch)
        except Exception:  # the forwarder will meet it again, from the queue
            log.exception("cannot prepare a batch")
            return None

    def _forward_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._forward_some()
            except Exception:  # never let the forwarder die: log, pause, go on
                log.exception("forwarder error")
                self.count("forward_errors")
                self._stop.wait(1.0)

    def _forward_some(self) -> None:
        """Deliver what is queued, several batches per delivery (group commit: the
        manager writes them in one transaction). A group the manager refuses is
        delivered again one batch at a time, so that only a bad batch is set aside."""
        assert self.queue is not None
        wait = self.BACKOFF[0]
        while not self._stop.is_set():
            entries = self.queue.next_many(timeout=0.2, count=self.GROUP_BATCHES,
                                           size=self.GROUP_BYTES)  # fmt: skip
            if not entries:
                continue
            try:
                results = self._deliver(entries)
            except UpstreamError as exc:  # the manager is down or failing: try again
                self.count("forward_retries")
                log.warning("delivery failed, retrying in %.2fs: %s", wait, exc)
                self._stop.wait(wait * (0.5 + random.random()))
                wait = min(wait * 2, self.BACKOFF[1])
                continue
            except Exception as exc:  # refused (or a bug): find the bad batch
                if len(entries) > 1:
                    self.count("forward_splits")
                    self._forward_each(entries)
                    wait = self.BACKOFF[0]
                    continue
                self._set_aside(entries[0], exc)
            else:
                self._delivered(entries, results)
            wait = self.BACKOFF[0]
            self.queue.ack_many(entries)

    def _forward_each(self, entries: list[Entry]) -> None:
        """Deliver a refused group one batch at a time: retrying each while the manager
        is failing, setting aside the one it refuses, acknowledging each as it goes."""
        assert self.queue is not None
        for entry in entries:
            wait = self.BACKOFF[0]
            while True:
                if self._stop.is_set():
                    return  # the rest stays queued
                try:
                    results = self._deliver([entry])
                except UpstreamError as exc:
                    self.count("forward_retries")
                    log.warning("delivery failed, retrying in %.2fs: %s", wait, exc)
                    self._stop.wait(wait * (0.5 + random.random()))
                    wait = min(wait * 2, self.BACKOFF[1])
                    continue
                except Exception as exc:
                    self._set_aside(entry, exc)
                else:
                    self._delivered([entry], results)
                break
            self.queue.ack(entry)

    def _deliver(self, entries: list[Entry]) -> list[dict[str, Any]]:
        with self._held_lock:
            held = [self._resolved.get(e.seq) if e.seq else None for e in entries]
        results = self.forwarder.forward_group([e.body for e in entries], held)
        if len(results) != len(entries):
            raise ProvmlError(f"{len(results)} answers for {len(entries)} batches")
        return results

    def _set_aside(self, entry: Entry, exc: Exception) -> None:
        if not isinstance(exc, ProvmlError):  # a bug: say so
            log.error("delivery failed", exc_info=exc)
        self.count("forward_errors")
        self._dead_letter(entry.body, exc)
        with self._held_lock:
            self._resolved.pop(entry.seq, None)

    def _delivered(self, entries: list[Entry], results: list[dict[str, Any]]) -> None:
        self.count("batches_forwarded", len(entries))
        last = entries[-1].seq
        with self._held_lock:  # delivered in order: what is held up to here is done
            for seq in [seq for seq in self._resolved if seq <= last] if last else []:
                del self._resolved[seq]
        with self._triples_lock:  # for the answers waiting on them (accept)
            for entry, result in zip(entries, results, strict=True):
                if entry.seq and isinstance(result.get("triples"), int):
                    if len(self._triples) >= 10_000:  # answers nobody waited for
                        self._triples.clear()
                    self._triples[entry.seq] = result["triples"]

    def _dead_letter(self, body: bytes, exc: Exception) -> None:
        """Keep a refused batch as it was queued (the error on the line before it)."""
        assert self.queue is not None
        path = os.path.join(self.queue.path, "refused.jsonl")
        log.error("the manager refused a batch (%s); kept in %s", exc, path)
        try:
            with open(path, "ab") as f:
                f.write(orjson.dumps({"error": str(exc)}) + b"\n" + body + b"\n")
        except OSError:
            log.exception("cannot keep the refused batch")

    def ready(self) -> bool:
        return not self._closing and (self._pump is None or self._pump.is_alive())

    def metrics(self) -> list[tuple[str, str, float]]:
        """(name, type, value) for the Prometheus exposition."""
        with self._lock:
            counts = dict(self.counts)
        out = [
            (f"provml_tracker_{key}_total", "counter", float(counts.get(key, 0)))
            for key in ("batches_received", "records_received", "batches_rejected",
                        "batches_refused_full", "batches_forwarded", "forward_retries",
                        "forward_errors", "forward_splits")
        ]  # fmt: skip
        extra = getattr(self.forwarder, "metrics", None)
        if extra is not None:
            out += extra()
        if self.queue is not None:
            out += [
                ("provml_tracker_queue_depth", "gauge", float(self.queue.depth)),
                ("provml_tracker_queue_bytes", "gauge", float(self.queue.bytes)),
                ("provml_tracker_forward_lag_seconds", "gauge", self.queue.oldest_age()),
            ]
        return out

    def close(self, timeout: float = 30.0) -> bool:
        """Stop accepting, deliver what is queued (up to ``timeout``), stop."""
        self._closing = True
        drained = True
        if self.queue is not None:
            deadline = time.monotonic() + timeout
            while self.queue.depth and time.monotonic() < deadline:
                time.sleep(0.05)
            drained = self.queue.depth == 0
            self._stop.set()
            if self._pump is not None:
                self._pump.join(5)
            self.queue.close()
        self.forwarder.close()
        return drained
