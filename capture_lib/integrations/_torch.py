"""PyTorch tensors, modules, datasets and outputs named by their content.

Shared by the Lightning integration (and the Keras one, for a torch ``DataLoader``);
importing this module imports nothing of torch: each function imports it when called.

* :func:`array`: a tensor as a numpy array, without a copy for a CPU tensor (a tensor on
  an accelerator is copied to the host; a dtype numpy has not, ``bfloat16``, is seen as
  its bytes), so a tensor made with ``torch.from_numpy(x)`` has the digest of ``x``.
* :func:`state_digest`: a module's weights (its ``state_dict``: names, dtypes, shapes,
  values) as one SHA-256, whole up to :data:`STATE_HASH_LIMIT` bytes, sampled past it
  (each tensor's share of the limit, :mod:`capture_lib.integrations.digest`). It is
  remembered per module until one of its tensors is changed in place (an optimizer step,
  ``load_state_dict``: their version counters move), so asking again costs a pass over
  the tensors' version counters, not a hash.
* :func:`data_references`: the data a ``DataLoader`` reads (the training data policy,
  docs/integrations.md): a ``TensorDataset`` by its tensors, a dataset holding arrays as
  ``data``/``targets`` (torchvision's in-memory datasets) by those, an array, tensor or
  list used as a dataset by itself, a ``Subset`` by its dataset's arrays and its indices.
  Anything else (a dataset that reads files in ``__getitem__``, an ``IterableDataset``,
  a generator) is not read item by item, which would run the user's loading code: it is
  recorded as missing data naming its class, and counted in
  ``cl.stats()["lost"]["unhashable_input"]``.
* :class:`OutputStream`: outputs hashed as they come, batch after batch (predictions),
  up to a bound; past it the digest is of a prefix and says so.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from capture_lib.integrations import _sklearn_calls as calls
from capture_lib.integrations import digest
from capture_lib.refs import HOST

#: training data is hashed whole up to this many bytes (each loader), sampled past it
TRAIN_HASH_LIMIT = calls.TRAIN_HASH_LIMIT
#: inference inputs and outputs
INFER_HASH_LIMIT = calls.INFER_HASH_LIMIT
#: a module's weights are hashed whole up to this many bytes, sampled past it
STATE_HASH_LIMIT = 1 << 30
#: data loaders named per stage at most (a list or dict of loaders)
MAX_LOADERS = 10

_lock = threading.Lock()
#: module → (its tensors' identity and version counters, its digest)
_states: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()


def array(tensor: Any) -> Any:
    """A numpy array of a tensor's values (see module doc)."""
    import torch

    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    try:
        return t.numpy()
    except TypeError:  # a dtype numpy does not have: its bytes, last axis widened
        return t.contiguous().reshape(t.shape or (1,)).view(torch.uint8).numpy()


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] == "torch" and hasattr(value, "detach")


def _plain(value: Any) -> Any:
    """What digest.data_reference can name: a tensor as an array, anything else as it is."""
    return array(value) if _is_tensor(value) else value


def _versions(state: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        return tuple(
            (name, t.data_ptr(), t._version, str(t.dtype), tuple(t.shape))
            for name, t in state.items()
            if _is_tensor(t)
        )
    except Exception:  # an inference tensor has no version counter: never cached
        return None


def state_digest(module: Any) -> dict[str, Any]:
    """``{"sha256", "size", "tensors", "hashing"}`` of a module's ``state_dict``."""
    state = module.state_dict()
    key = _versions(state)
    with _lock:
        cached = _states.get(module)
    if cached is not None and key is not None and cached[0] == key:
        return cached[1]
    tensors = {name: array(t) for name, t in state.items() if _is_tensor(t)}
    others = sorted(name for name, t in state.items() if not _is_tensor(t))
    result = arrays_digest(tensors, others)
    if key is not None:
        with _lock:
            _states[module] = (key, result)
    return result


def arrays_digest(arrays: dict[str, Any], others: list[str] | None = None) -> dict[str, Any]:
    """One SHA-256 for named arrays (a model's weights): whole up to
    :data:`STATE_HASH_LIMIT` bytes, each array's share of it past that."""
    total = sum(a.nbytes for a in arrays.values())
    h = hashlib.sha256(b"provml state_dict\n")
    for name, values in arrays.items():
        limit = (
            STATE_HASH_LIMIT
            if total <= STATE_HASH_LIMIT
            else max(1 << 12, STATE_HASH_LIMIT * values.nbytes // max(1, total))
        )
        ref = digest.data_reference(values, limit)
        h.update(f"{name}\0{ref['sha256']}\n".encode())
    if others:  # extra state that is not an array: by its names only
        h.update(json.dumps(others).encode())
    return {"sha256": h.hexdigest(), "size": total, "tensors": len(arrays),
            "hashing": "full" if total <= STATE_HASH_LIMIT else "sampled"}  # fmt: skip


def _parts(dataset: Any) -> list[tuple[str, Any]] | None:
    """The arrays a dataset holds, by name; None when it has none to name it by."""
    kind = type(dataset).__name__
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, (tuple, list)) and tensors and all(map(_is_tensor, tensors)):
        return [(str(i), t) for i, t in enumerate(tensors)]
    if kind == "Subset" and hasattr(dataset, "indices") and hasattr(dataset, "dataset"):
        inner = _parts(dataset.dataset)
        if inner is None:
            return None
        return [*inner, ("indices", list(dataset.indices))]
    data = getattr(dataset, "data", None)
    if data is not None and (_is_tensor(data) or type(data).__module__ == "numpy"):
        targets = getattr(dataset, "targets", None)
        return [("data", data)] + ([("targets", targets)] if targets is not None else [])
    if (
        _is_tensor(dataset)
        or type(dataset).__module__ == "numpy"
        or isinstance(dataset, (list, tuple))
    ):
        return [("", dataset)]
    return None


def _loaders(loaders: Any, role: str) -> Iterator[tuple[str, Any]]:
    if isinstance(loaders, dict):
        items: list[tuple[str, Any]] = [(f"{role}[{k}]", v) for k, v in loaders.items()]
    elif isinstance(loaders, (list, tuple)) and not hasattr(loaders, "dataset"):
        items = [(f"{role}[{i}]", v) for i, v in enumerate(loaders)]
        if len(items) == 1:
            items = [(role, loaders[0])]
    else:
        items = [(role, loaders)]
    yield from items[:MAX_LOADERS]


def data_references(loaders: Any, role: str, limit: int) -> dict[str, Any]:
    """Role → data reference for what ``loaders`` (a DataLoader, a list or dict of them,
    or a dataset) read: one per array of its dataset (``train.0``, ``train.1`` for a
    ``TensorDataset(x, y)``), or one missing reference (see module doc)."""
    out: dict[str, Any] = {}
    if loaders is None:
        return out
    for name, loader in _loaders(loaders, role):
        dataset = getattr(loader, "dataset", loader)
        parts = _parts(dataset)
        if parts is None:
            what = f"a {type(dataset).__qualname__}"
            calls.integration_failed(
                f"naming {name} data", calls.UNHASHABLE,
                f"{what} is not named by content (only datasets of arrays are)",
            )  # fmt: skip
            out[name] = {"@data": "missing", "path": f"<in-memory {type(dataset).__qualname__}>",
                         "host": HOST, "error": f"{what} is not named by content"}  # fmt: skip
            continue
        for suffix, value in parts:
            key = f"{name}.{suffix}" if suffix else name
            try:
                out[key] = digest.data_reference(_plain(value), limit)
            except Exception as exc:
                calls.integration_failed(f"naming {key} data", calls.UNHASHABLE, str(exc)[:200])
                out[key] = {"@data": "missing", "host": HOST,
                            "path": f"<in-memory {type(value).__qualname__}>",
                            "error": str(exc)[:500] or type(exc).__name__}  # fmt: skip
    return out


class OutputStream:
    """Outputs (tensors, arrays, or lists/tuples/dicts of them) hashed as they come."""

    def __init__(self, limit: int = INFER_HASH_LIMIT) -> None:
        self.sha = hashlib.sha256()
        self.limit = limit
        self.hashed = 0
        self.batches = 0
        self.complete = True

    def add(self, value: Any, depth: int = 0) -> None:
        if depth == 0:
            self.batches += 1
        if self.hashed >= self.limit:
            self.complete = False
            return
        if isinstance(value, dict):
            for k in sorted(value, key=str):
                self.sha.update(str(k).encode())
                self.add(value[k], depth + 1)
            return
        if isinstance(value, (list, tuple)) and depth < 4:
            for item in value:
                self.add(item, depth + 1)
            return
        values = _plain(value)
        if hasattr(values, "tobytes") and hasattr(values, "dtype"):
            import numpy as np

            data = memoryview(np.ascontiguousarray(values)).cast("B")  # type: ignore[arg-type]
            self.sha.update(f"{values.dtype}{list(values.shape)}".encode())
        else:
            data = memoryview(repr(values).encode())
        room = self.limit - self.hashed
        if len(data) > room:
            data, self.complete = data[:room], False
        self.sha.update(data)
        self.hashed += len(data)

    def value(self) -> dict[str, Any]:
        """The generated ``prediction`` value."""
        return {"sha256": self.sha.hexdigest(), "batches": self.batches,
                "hashed_bytes": self.hashed,
                "hashing": "full" if self.complete else "prefix"}  # fmt: skip
