"""The tracker's durable work queue: an append-only log of batches on disk.

A batch is acknowledged to its sender only once it is in this queue and fsynced
(``fsync=True``, the default); the forwarder then delivers it to the manager and moves
the cursor past it. Layout: ``<dir>/q-<k>.jsonl`` segments (one resolved batch per line,
rolled at :attr:`SEGMENT_BYTES`) and ``<dir>/cursor`` (the segment and offset up to which
batches were delivered), replaced atomically. The cursor is written after every delivery
but fsynced only every :attr:`CURSOR_SYNC_EVERY` deliveries: after a machine crash a few
batches may be delivered again, which changes nothing because the manager's writes are
idempotent. A line torn by a crash in the middle of an append (never acknowledged) is cut
off when the queue is opened.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from tracker.errors import QueueFull


@dataclass(frozen=True)
class Entry:
    segment: int
    start: int
    end: int  # offset just past this entry's newline
    seq: int  # 1, 2, … in the order of appends since the queue was opened
    body: bytes
    queued_at: float


class DurableQueue:
    SEGMENT_BYTES = 64 * 1024 * 1024
    CURSOR_SYNC_EVERY = 100

    def __init__(self, path: str, *, max_bytes: int = 1 << 30, fsync: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.fsync = fsync
        os.makedirs(path, exist_ok=True)
        self._owner = self._take_ownership(path)
        self._lock = threading.Condition()
        self._cursor = self._read_cursor()
        self._segments = self._recover()
        self._fd: int | None = None
        self._write_segment = self._segments[-1] if self._segments else self._cursor[0]
        self._write_offset = self._size(self._write_segment)
        self._read = self._cursor
        self._appended = 0  # seq of the last append
        self._delivered = 0  # seq of the last delivered entry appended since opening
        self._acks_since_sync = 0
        self._times: dict[int, float] = {}
        self._backlog = self._count_backlog()
        self._old = self._backlog  # entries left from before this process opened the queue

    @staticmethod
    def _take_ownership(path: str) -> int:
        """One tracker per queue directory: two would deliver the same entries and
        overwrite each other's cursor. An advisory lock, released when the process ends."""
        import fcntl

        from provml.core.errors import ConfigError

        fd = os.open(os.path.join(path, "owner.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                f"the queue in {path} is in use by another tracker: give each tracker its "
                "own --data-dir"
            ) from None
        return fd

    # ---- files ---------------------------------------------------------------
    def _file(self, segment: int) -> str:
        return os.path.join(self.path, f"q-{segment:08d}.jsonl")

    def _size(self, segment: int) -> int:
        try:
            return os.path.getsize(self._file(segment))
        except FileNotFoundError:
            return 0

    def _read_cursor(self) -> tuple[int, int]:
        try:
            with open(os.path.join(self.path, "cursor")) as f:
                data = json.load(f)
            return int(data["segment"]), int(data["offset"])
        except (OSError, ValueError, KeyError):
            return 1, 0

    def _recover(self) -> list[int]:
        """Segments on disk, in order; a torn last line (a crash mid-append) cut off."""
        segments = sorted(
            int(name[2:10]) for name in os.listdir(self.path)
            if name.startswith("q-") and name.endswith(".jsonl")
        )  # fmt: skip
        if segments:
            last = self._file(segments[-1])
            with open(last, "rb+") as f:
                data = f.read()
                keep = data.rfind(b"\n") + 1
                if keep != len(data):
                    f.truncate(keep)
        return segments

    def _count_backlog(self) -> int:
        count, size = 0, 0
        segment, offset = self._cursor
        for s in self._segments:
            if s < segment:
                continue
            with open(self._file(s), "rb") as f:
                if s == segment:
                    f.seek(offset)
                data = f.read()
            count += data.count(b"\n")
            size += len(data)
        self._backlog_bytes = size
        return count

    # ---- producer side -------------------------------------------------------
    def put(self, body: bytes) -> int:
        """Append one batch and make it durable; return its sequence number."""
        line = body + b"\n"
        with self._lock:
            if self._backlog_bytes + len(line) > self.max_bytes:
                raise QueueFull(
                    f"the tracker's queue holds {self._backlog_bytes} bytes of its "
                    f"{self.max_bytes}: retry later"
                )
            if self._fd is None or self._write_offset >= self.SEGMENT_BYTES:
                self._roll()
            assert self._fd is not None
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                # undo a partial append so the next one starts on a clean line
                try:
                    os.ftruncate(self._fd, self._write_offset)
                except OSError:
                    os.close(self._fd)
                    self._fd = None  # reopened (and the torn tail cut) on the next put
                    self._recover()
                raise QueueFull(f"cannot write to the tracker's queue: {exc}") from exc
            self._write_offset += len(line)
            self._appended += 1
            self._times[self._appended] = time.time()
            self._backlog += 1
            self._backlog_bytes += len(line)
            self._lock.notify_all()
            return self._appended

    def _roll(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._write_segment += 1
            self._write_offset = 0
        self._fd = os.open(
            self._file(self._write_segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        if self._write_segment not in self._segments:
            self._segments.append(self._write_segment)
            if self.fsync:  # the new file's name must survive a crash too
                dir_fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    # ---- consumer side (one forwarder thread) --------------------------------
    def next(self, timeout: float | None = None) -> Entry | None:
        """The first undelivered batch, waiting up to ``timeout`` for one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                entry = self._peek()
                if entry is not None:
                    return entry
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def next_many(
        self, timeout: float | None = None, *, count: int = 64, size: int = 8 << 20
    ) -> list[Entry]:
        """The first undelivered batches in order (waiting up to ``timeout`` for one):
        up to ``count`` of them and ``size`` bytes, at least one; [] on a timeout. For a
        forwarder that writes several in one request (group commit)."""
        first = self.next(timeout)
        if first is None:
            return []
        with self._lock:
            return self._peek_many(count, size)

    def _peek(self) -> Entry | None:
        entries = self._peek_many(1, 0)
        return entries[0] if entries else None

    def _peek_many(self, count: int, size: int) -> list[Entry]:
        """Up to ``count`` entries from the read position (the first whatever its size,
        the others while their bytes stay within ``size``), from one segment."""
        segment, offset = self._read
        while True:
            limit = self._write_offset if segment == self._write_segment else self._size(segment)
            if offset < limit:
                break
            later = [s for s in self._segments if s > segment]
            if not later:
                return []
            segment, offset = later[0], 0
            self._read = (segment, 0)
        out: list[Entry] = []
        taken = 0
        with open(self._file(segment), "rb") as f:
            f.seek(offset)
            while len(out) < count and offset < limit:
                line = f.readline()
                if not line.endswith(b"\n") or (out and taken + len(line) > size):
                    break
                k = len(out)  # entries left from before this process come first, seq 0
                seq = 0 if k < self._old else self._delivered + 1 + k - self._old
                out.append(Entry(segment, offset, offset + len(line), seq, line[:-1],
                                 self._times.get(seq, time.time())))  # fmt: skip
                offset += len(line)
                taken += len(line)
        return out

    def ack(self, entry: Entry) -> None:
        """Mark ``entry`` delivered: move the cursor past it, drop finished segments."""
        self.ack_many([entry])

    def ack_many(self, entries: list[Entry]) -> None:
        """Mark ``entries`` (the first undelivered ones, in order) delivered: the cursor
        written once, past the last."""
        if not entries:
            return
        with self._lock:
            for entry in entries:
                if entry.seq:
                    self._delivered = entry.seq
                    self._times.pop(entry.seq, None)
                else:
                    self._old -= 1
                self._backlog -= 1
                self._backlog_bytes -= entry.end - entry.start
            entry = entries[-1]
            self._read = (entry.segment, entry.end)
            self._write_cursor(entry.segment, entry.end)
            for s in [s for s in self._segments if s < entry.segment]:
                self._segments.remove(s)
                os.remove(self._file(s))
            self._lock.notify_all()

    def _write_cursor(self, segment: int, offset: int) -> None:
        tmp = os.path.join(self.path, "cursor.tmp")
        with open(tmp, "w") as f:
            json.dump({"segment": segment, "offset": offset}, f)
            self._acks_since_sync += 1
            if self.fsync and self._acks_since_sync >= self.CURSOR_SYNC_EVERY:
                f.flush()
                os.fsync(f.fileno())
                self._acks_since_sync = 0
        os.replace(tmp, os.path.join(self.path, "cursor"))

    def wait_delivered(self, seq: int, timeout: float) -> bool:
        """Wait until the batch appended as ``seq`` is delivered (or the timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._delivered < seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    # ---- state ---------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._backlog

    @property
    def bytes(self) -> int:
        return self._backlog_bytes

    def oldest_age(self) -> float:
        """Seconds the oldest undelivered batch (appended since opening) has waited."""
        with self._lock:
            if not self._backlog:
                return 0.0
            first = min(self._times.values(), default=None)
            return 0.0 if first is None else max(0.0, time.time() - first)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._write_cursor(*self._read)
            if self._owner >= 0:
                os.close(self._owner)  # releases the lock
                self._owner = -1
