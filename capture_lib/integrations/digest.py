"""In-memory data and fitted models named by their content, in a streaming way.

Training data passed to a framework is rarely a file: it is a numpy array, a pandas
frame, a scipy sparse matrix or a list. :func:`data_reference` names it by a SHA-256
computed over its bytes without copying more than :data:`CHUNK` bytes (one row, if a row
is larger) at a time:

* a **numpy array**: its dtype and shape, then its elements in C order (a C-contiguous
  array is hashed in place; any other layout a block of rows at a time, so the same
  values in C or Fortran order have the same digest); an object array a block of rows
  at a time as the pickle of its ``tolist()``;
* a **pandas DataFrame / Series** (recognised without importing pandas): its column
  names and dtypes, then each column in turn, a block of rows at a time (the index is
  left out: scikit-learn does not read it);
* a **scipy sparse matrix**: format, shape, dtype, then its ``data``/``indices``/
  ``indptr`` (``row``/``col``/``data`` for COO; other formats are converted to CSR, a
  copy);
* a **list or tuple**: the pickle of a block of items at a time;
* anything else with ``__array__`` is converted with ``numpy.asarray`` (which may copy, as
  the framework itself will); an iterator or an object with no array form cannot be
  named without consuming or guessing: :class:`Unhashable`.

**Very large inputs.** Up to ``limit`` bytes the whole content is hashed (``"hashing":
"full"``). Past it, :data:`SAMPLES` blocks of ``limit / SAMPLES`` bytes spread evenly over
the data (the first and the last included) are hashed with their offsets, after the
header (kind, shape, dtypes, total size); the reference then says ``"hashing":
"sampled"`` and ``"hashed_bytes"``. Two inputs that differ only outside the sampled
blocks would get one name: the price of a bounded cost, said in the record.

A fitted model is named by the SHA-256 of its pickle at the default protocol
(:func:`pickle_sha256`), streamed into the hash without being held in memory: a file
written later with ``pickle.dump(model, f)`` holds exactly those bytes, so it is the same
graph node.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from capture_lib import deferred

#: at most this many bytes are copied at a time (one row, if a row is larger)
CHUNK = 1 << 20
#: blocks hashed when the input is over the limit
SAMPLES = 64
#: bytes assumed per Python object (object arrays, lists) to choose blocks and sampling
_OBJECT_BYTES = 16
#: names of columns and dtypes kept in the record (all of them are hashed)
_LISTED = 100


class Unhashable(Exception):
    """The value cannot be named by its content (an iterator, an exotic object)."""


@dataclass
class _Segment:
    """A run of rows: an array, a frame's column, a sparse matrix's member, a list."""

    rows: int
    row_bytes: int
    chunk: Callable[[int, int], Iterable[Any]]  # rows [a, b) as buffers to hash

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes


def data_reference(value: Any, limit: int, kind: str = "dataset") -> dict[str, Any]:
    """``{"@data": kind, "sha256": …, …}`` naming ``value`` by content (see module doc)."""
    header, segments, exact = _describe(value)
    total = sum(s.nbytes for s in segments)
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    h.update(total.to_bytes(8, "little") if total > limit else b"")
    hashed = _sampled(h, segments, total, limit) if total > limit else _full(h, segments)
    ref: dict[str, Any] = {"@data": kind, "sha256": h.hexdigest()}
    if exact and total <= limit:
        ref["size"] = hashed
    ref.update({k: v for k, v in header.items() if k not in ("columns", "dtypes")})
    if "columns" in header:
        ref["columns"] = header["columns"][:_LISTED]
    if "dtypes" in header:
        ref["dtypes"] = header["dtypes"][:_LISTED]
    ref["hashing"] = "full" if total <= limit else "sampled"
    ref["hashed_bytes"] = hashed
    return ref


def _full(h: Any, segments: list[_Segment]) -> int:
    n = 0
    for seg in segments:
        step = max(1, CHUNK // max(1, seg.row_bytes))
        for start in range(0, seg.rows, step):
            for buf in seg.chunk(start, min(seg.rows, start + step)):
                h.update(buf)
                n += memoryview(buf).nbytes
    return n


def _sampled(h: Any, segments: list[_Segment], total: int, limit: int) -> int:
    """SAMPLES blocks of limit/SAMPLES bytes at evenly spaced offsets of the whole."""
    block = max(1, limit // SAMPLES)
    n = 0
    for i in range(SAMPLES):
        offset = (total - block) * i // (SAMPLES - 1)
        for j, seg in enumerate(segments):  # the segment holding that offset
            if offset < seg.nbytes:
                row = offset // max(1, seg.row_bytes)
                rows = max(1, block // max(1, seg.row_bytes))
                h.update(j.to_bytes(4, "little") + row.to_bytes(8, "little"))
                for buf in seg.chunk(row, min(seg.rows, row + rows)):
                    h.update(buf)
                    n += memoryview(buf).nbytes
                break
            offset -= seg.nbytes
    return n


def _describe(value: Any) -> tuple[dict[str, Any], list[_Segment], bool]:
    """(header, segments, whether the byte count is exact) of a value."""
    module = type(value).__module__.partition(".")[0]
    if module == "pandas" and hasattr(value, "iloc"):
        return _frame(value)
    if module == "scipy" and hasattr(value, "nnz") and hasattr(value, "format"):
        return _sparse(value)
    if isinstance(value, (list, tuple)):
        return _list(value)
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        data = pickle.dumps(value, protocol=4)
        return {"kind": type(value).__name__}, [_Segment(1, len(data), lambda a, b: (data,))], True
    if hasattr(value, "__next__") or not (
        hasattr(value, "__array__") or hasattr(value, "__array_interface__")
    ):
        raise Unhashable(f"cannot name a {type(value).__qualname__} by its content")
    import numpy as np

    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    header = {"kind": "ndarray", "shape": list(array.shape), "dtype": str(array.dtype)}
    if type(value) is not np.ndarray:
        header["type"] = f"{type(value).__module__}.{type(value).__qualname__}"
    return header, [_array(array)], not array.dtype.hasobject


def _array(array: Any) -> _Segment:
    """An array as rows (a 0-d array as one row)."""
    if array.ndim == 0:
        array = array.reshape(1)
    rows = array.shape[0]
    per_row = math.prod(array.shape[1:])
    if array.dtype.hasobject:
        return _Segment(rows, per_row * _OBJECT_BYTES, lambda a, b: _objects(array[a:b]))
    return _Segment(rows, per_row * array.dtype.itemsize, lambda a, b: _contiguous(array[a:b]))


def _contiguous(part: Any) -> tuple[Any]:
    import numpy as np

    if not part.flags.c_contiguous:
        part = np.ascontiguousarray(part)  # at most one block of rows is copied
    return (part.reshape(-1).view(np.uint8),)


def _objects(part: Any) -> tuple[bytes]:
    try:
        return (pickle.dumps(part.tolist(), protocol=4),)
    except Exception as exc:
        raise Unhashable(f"an element cannot be pickled: {exc}") from None


def _list(value: list[Any] | tuple[Any, ...]) -> tuple[dict[str, Any], list[_Segment], bool]:
    def chunk(a: int, b: int) -> tuple[bytes]:
        try:
            return (pickle.dumps(list(value[a:b]), protocol=4),)
        except Exception as exc:
            raise Unhashable(f"an item cannot be pickled: {exc}") from None

    rows = len(value)
    row_bytes = max(1, len(chunk(0, min(rows, 64))[0]) // max(1, min(rows, 64)))
    header = {"kind": type(value).__name__, "shape": [rows]}
    return header, [_Segment(rows, row_bytes, chunk)], True


def _frame(frame: Any) -> tuple[dict[str, Any], list[_Segment], bool]:
    import numpy as np

    if hasattr(frame, "columns"):  # a DataFrame
        columns = [frame.iloc[:, j] for j in range(frame.shape[1])]
        names = [str(c) for c in frame.columns]
        kind = "DataFrame"
    else:  # a Series
        columns, names, kind = [frame], [str(frame.name)], "Series"
    dtypes = [str(c.dtype) for c in columns]
    segments = []
    exact = True
    for col in columns:
        numeric = isinstance(col.dtype, np.dtype) and not col.dtype.hasobject
        exact = exact and numeric
        width = col.dtype.itemsize if numeric else _OBJECT_BYTES
        segments.append(_Segment(len(col), width, _column_chunk(col, numeric)))
    header = {"kind": kind, "shape": list(frame.shape), "columns": names, "dtypes": dtypes}
    return header, segments, exact


def _column_chunk(col: Any, numeric: bool) -> Callable[[int, int], Iterable[Any]]:
    def chunk(a: int, b: int) -> tuple[Any]:
        values = col.iloc[a:b].to_numpy()
        return _contiguous(values) if numeric else _objects(values)

    return chunk


def _sparse(matrix: Any) -> tuple[dict[str, Any], list[_Segment], bool]:
    fmt = matrix.format
    if fmt in ("csr", "csc", "bsr"):
        members = ("data", "indices", "indptr")
    elif fmt == "coo":
        members = ("row", "col", "data")
    else:  # lil, dok, dia: converted (a copy)
        matrix, fmt, members = matrix.tocsr(), "csr", ("data", "indices", "indptr")
    header = {"kind": "sparse", "format": fmt, "shape": list(matrix.shape),
              "dtype": str(matrix.dtype), "nnz": int(matrix.nnz)}  # fmt: skip
    return header, [_array(getattr(matrix, m)) for m in members], True


class _HashWriter:
    """A file-like object that hashes what is written to it, up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.limit = limit

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        if self.size > self.limit:
            raise _TooLarge
        self.sha.update(data)
        return n


class _TooLarge(Exception):
    pass


def pickle_sha256(obj: Any, limit: int) -> tuple[str, int] | None:
    """(SHA-256, size) of ``pickle.dump(obj, f)`` at the default protocol, streamed; None
    when the pickle would be over ``limit`` bytes (hashing stops there). Raises what
    pickling raises (an object that cannot be pickled)."""
    writer = _HashWriter(limit)
    try:
        pickle.dump(obj, writer, protocol=pickle.DEFAULT_PROTOCOL)
    except _TooLarge:
        return None
    return writer.sha.hexdigest(), writer.size


def snapshot_size(value: Any) -> int:
    """The bytes of ``value`` if it is a plain numpy array or a pandas frame or series of
    numbers (whose hashing releases the GIL, and which a memory copy can stand for);
    0 for anything else. Not a structured array: a copy leaves its padding bytes out, and
    its dtype, which the copy shares, can be renamed in place (``dtype.names = …``)."""
    module = type(value).__module__.partition(".")[0]
    if module == "numpy":
        import numpy as np

        if type(value) is not np.ndarray or value.dtype.hasobject or value.dtype.names:
            return 0
        return int(value.nbytes)
    if module != "pandas" or not hasattr(value, "iloc"):
        return 0
    import numpy as np

    dtypes = list(value.dtypes) if hasattr(value, "columns") else [value.dtype]
    if not all(isinstance(d, np.dtype) and not d.hasobject for d in dtypes):
        return 0
    return int(sum(d.itemsize for d in dtypes) * len(value))


def snapshot(value: Any) -> Any:
    """A copy of ``value``, one that :func:`snapshot_size` measures, with the same digest:
    a memory copy costs a fraction of the hash, which can then be computed later,
    elsewhere (capture_lib.deferred)."""
    if type(value).__module__.startswith("numpy"):
        return _array_copy(value)
    return value.copy(deep=True)


#: bytes of copies kept for reuse (:func:`recycle`), all shapes together
SPARE_BYTES = 64 << 20
_spare: dict[tuple[Any, ...], list[Any]] = {}
_spare_ids: set[int] = set()  # id() of every copy in _spare
_spare_bytes = [0]
#: whether copies are kept (for reuse and comparison): not after autolog's disable
_keeping = [True]
_spare_lock = threading.Lock()  # guards the spare copies and the named ones (_named)
#: bytes of named copies kept (:func:`remember`), all shapes together
NAMED_BYTES = 64 << 20
#: id(copy) → ((shape, dtype, str(dtype)), the copy, its reference or a weak reference
#: to the deferred value naming it, the address of its data), the latest matched last
_named: OrderedDict[int, tuple[tuple[Any, ...], Any, Any, int]] = OrderedDict()
_named_bytes = [0]
#: (shape, dtype, str(dtype)) → how many copies of it are kept: past :data:`CANDIDATES`,
#: the least recently matched goes and its memory serves a new copy
_per_key: dict[tuple[Any, ...], int] = {}
#: bytes compared at a time by :func:`known` (a first block that differs ends it)
_COMPARE = 64 << 10
#: copies of one shape and dtype kept (and compared, the latest matched first) at most
CANDIDATES = 8


def _array_copy(array: Any) -> Any:
    """A C-ordered copy of ``array``, into a recycled one of its shape and dtype if there
    is one: writing into memory already mapped costs a third of what a new copy costs
    (the page faults of fresh memory), which matters on a short ``fit``."""
    import numpy as np

    key = (array.shape, array.dtype)  # the dtype itself: structured ones of one size differ
    with _spare_lock:
        spares = _spare.get(key)
        buf = spares.pop() if spares else None
        if buf is not None:
            _spare_bytes[0] -= buf.nbytes
            _spare_ids.discard(id(buf))
            if not spares:
                del _spare[key]
    if buf is None:
        return array.copy()
    np.copyto(buf, array)
    return buf


def recycle(copy: Any) -> None:
    """Keep a copy made by :func:`snapshot`, once named, for the next one of its shape
    (up to :data:`SPARE_BYTES` in all; past that it is let go)."""
    if type(copy).__module__ != "numpy" or not getattr(copy, "flags", None):
        return
    with _spare_lock:
        _recycle(copy)


def _recycle(copy: Any) -> None:  # _spare_lock held
    if not _keeping[0] or id(copy) in _spare_ids or id(copy) in _named:
        return  # never twice: two snapshots would share it (or write into a named one)
    if _spare_bytes[0] + copy.nbytes <= SPARE_BYTES:
        _spare.setdefault((copy.shape, copy.dtype), []).append(copy)
        _spare_ids.add(id(copy))
        _spare_bytes[0] += copy.nbytes


def _named_key(array: Any) -> tuple[Any, ...]:
    """(shape, dtype, the dtype's name): the name is in the digest's header."""
    return (array.shape, array.dtype, str(array.dtype))


def remember(copy: Any, ref: dict[str, Any] | deferred.Deferred) -> None:
    """Keep ``copy`` (made by :func:`snapshot`) for :func:`known`, with ``ref``: its
    reference once named in full, or before that the
    :class:`~capture_lib.deferred.Deferred` that will name it (held weakly: a table passed
    twice before the worker named it shares that value). Past :data:`NAMED_BYTES` in all,
    the least recently matched go: a named copy is recycled, one still waiting for the
    worker only let go. Anything but a plain numpy array named in full is recycled (or let
    go) at once."""
    if type(copy).__module__ != "numpy" or not getattr(copy, "flags", None):
        return
    if isinstance(ref, dict) and (ref.get("hashing") != "full" or copy.nbytes > NAMED_BYTES):
        recycle(copy)
        return
    if copy.nbytes > NAMED_BYTES:  # still the deferred value's: only not kept
        return
    held = dict(ref) if isinstance(ref, dict) else weakref.ref(ref)
    entry = (_named_key(copy), copy, held, copy.ctypes.data)  # a copy of ours never moves
    with _spare_lock:
        if not _keeping[0] or id(copy) in _spare_ids:
            return  # offered for reuse already (a snapshot may be writing into it), or off
        _unname(id(copy))  # the same copy, named since
        _per_key[entry[0]] = _per_key.get(entry[0], 0) + 1
        _named[id(copy)] = entry
        _named_bytes[0] += copy.nbytes
        if _per_key[entry[0]] > CANDIDATES:  # the comparisons stay bounded: reused instead
            _evict(next(i for i, e in _named.items() if e[0] == entry[0]))
        while _named_bytes[0] > NAMED_BYTES:
            _evict(next(iter(_named)))


def _unname(ident: int) -> tuple[tuple[Any, ...], Any, Any, int] | None:
    """Stop keeping a named copy (``_spare_lock`` held); what was kept, or None."""
    entry = _named.pop(ident, None)
    if entry is not None:
        _named_bytes[0] -= entry[1].nbytes
        left = _per_key.pop(entry[0]) - 1
        if left:
            _per_key[entry[0]] = left
    return entry


def _evict(ident: int) -> None:
    """Stop keeping a named copy and offer it for reuse, if named (``_spare_lock`` held):
    a copy still waiting for the worker is only let go."""
    entry = _unname(ident)
    if entry is not None and isinstance(entry[2], dict):
        _recycle(entry[1])


def known(value: Any) -> dict[str, Any] | deferred.Deferred | None:
    """What names ``value`` if its bytes are those of a copy kept by :func:`remember`,
    compared now: exactly the reference :func:`data_reference` computes, or the deferred
    value that will compute it, at the cost of a memory comparison (a tenth of the hash).
    None if there is none: ``value`` is not a plain C-ordered numpy array of numbers, or
    none of the :data:`CANDIDATES` copies of its shape and dtype kept last matched has
    its bytes (a copy whose deferred value is gone, or failed, is let go); a table that
    differs most often does so in the first block compared. Never raises."""
    try:
        return _known(value)
    except Exception:  # a case not foreseen: the caller copies and hashes, as without
        return None


def _known(value: Any) -> dict[str, Any] | deferred.Deferred | None:
    if type(value).__module__ != "numpy":
        return None
    import numpy as np

    if (
        type(value) is not np.ndarray
        or not value.flags.c_contiguous
        or value.dtype.hasobject
        or value.dtype.names  # structured: see snapshot_size
    ):
        return None
    key = _named_key(value)
    address = value.ctypes.data
    found: tuple[int, Any] | None = None
    stale = []
    with _spare_lock:  # a named copy is recycled (then written into) only under the lock
        for ident, (k, copy, held, at) in reversed(_named.items()):
            if k != key:  # at most CANDIDATES are kept of a key (remember)
                continue
            if not isinstance(held, dict):
                later = held()
                if later is None or later.computed():  # dropped, or failed: never named
                    stale.append(ident)
                    continue
                held = later
            if _same_bytes(value, copy, address, at):
                found = ident, held
                break
        for ident in stale:
            _unname(ident)
        if found is None:
            return None
        _named.move_to_end(found[0])
    held = found[1]
    if not isinstance(held, dict):
        return held
    return {k: list(v) if isinstance(v, list) else v for k, v in held.items()}


def _libc_memcmp() -> Any:
    """The C library's ``memcmp`` (it stops at the first difference, makes no temporary,
    and ctypes lets the GIL go during it), or None where it cannot be found."""
    try:
        import ctypes

        memcmp = ctypes.CDLL(None).memcmp
        memcmp.restype = ctypes.c_int
        memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        return memcmp
    except Exception:  # no C library by that name (Windows): numpy compares
        return None


_memcmp = _libc_memcmp()


def _same_bytes(a: Any, b: Any, a_at: int, b_at: int) -> bool:
    """Whether two C-ordered arrays of one size in bytes, whose data start at ``a_at`` and
    ``b_at``, hold the same bytes (bits, never numbers: ``-0.0`` is not ``0.0``): ``memcmp``
    (the addresses read once: ``ndarray.ctypes`` costs microseconds), else numpy over
    8-byte words (or bytes) a block at a time, a first block of :data:`_COMPARE` bytes then
    blocks of :data:`CHUNK` bytes (each comparison makes a temporary of a block's items)."""
    if _memcmp is not None:
        return bool(_memcmp(a_at, b_at, a.nbytes) == 0)
    import numpy as np

    a, b = a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8)
    if a.size % 8 == 0:  # any item size: bytes first, then words
        a, b = a.view(np.uint64), b.view(np.uint64)
    width = a.itemsize
    start, step = 0, _COMPARE // width
    while start < a.size:
        if not np.array_equal(a[start : start + step], b[start : start + step]):
            return False
        start, step = start + step, CHUNK // width
    return True


def forget_copies() -> None:
    """Let every copy kept for reuse or comparison go, and keep none from now on, not
    even those the worker names later (``cl.autolog(disable=True)``)."""
    with _spare_lock:
        _keeping[0] = False
        _forget()


def keep_copies() -> None:
    """Keep copies again (``cl.autolog()``)."""
    _keeping[0] = True


def _forget() -> None:  # _spare_lock held, or a forked child's only thread
    _spare.clear()
    _spare_ids.clear()
    _spare_bytes[0] = 0
    _named.clear()
    _per_key.clear()
    _named_bytes[0] = 0


def _after_fork() -> None:
    """In a forked child: a new lock (another thread of the parent may have held it), and
    nothing kept (another thread may have been changing what was)."""
    global _spare_lock
    _spare_lock = threading.Lock()
    _forget()


os.register_at_fork(after_in_child=_after_fork)
