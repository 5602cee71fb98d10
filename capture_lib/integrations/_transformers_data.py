"""What the Hugging Face callback names by content: datasets, weights, training arguments.

**Datasets** (:func:`dataset_reference`), in this order:

* a ``datasets.Dataset`` (anything with a string ``_fingerprint``): by its fingerprint, the
  hash ``datasets`` keeps of its source files and of every transform applied to them
  (nothing is read); the reference says ``"hashing": "fingerprint"``;
* a ``torch.utils.data.TensorDataset``: by the content of its tensors
  (:func:`capture_lib.integrations.digest.data_reference`: whole up to
  :data:`DATA_HASH_LIMIT` bytes, sampled past it);
* any other dataset with a length and items by index (a ``torch`` map-style dataset, a
  list of dicts): by the content of its items, all of them up to :data:`MAX_ITEMS`,
  else :data:`MAX_ITEMS` items spread evenly (the first and the last included,
  ``"hashing": "sampled"``). An item is read with ``dataset[i]``, as the Trainer reads
  it; the random states of ``random``, ``numpy`` and ``torch`` are restored afterwards,
  so a dataset that augments at random gives the Trainer the same items as without
  capture;
* an iterable dataset with no length (a stream) is never consumed: it is recorded as
  missing data and counted in ``cl.stats()["lost"]["unhashable_input"]``.

An item's content: a dict by its keys (sorted) and values; a tensor or array by dtype,
shape and elements; anything else by its pickle.

**Weights in memory** (:func:`weights_reference`): a model not saved at the end of
training (or used for predictions with no checkpoint behind it) is named by the SHA-256 of
its ``state_dict`` (each tensor's name, dtype, shape and bytes, in order), up to
:data:`WEIGHTS_HASH_LIMIT` bytes; a larger model is named by its training alone.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import sys
from typing import Any

from capture_lib.integrations import digest
from capture_lib.integrations._sklearn_calls import jsonable
from capture_lib.refs import HOST
from provml.core.ids import value_sha256

#: a dataset's tensors are hashed whole up to this many bytes, sampled past it
DATA_HASH_LIMIT = 256 << 20
#: items of a map-style dataset read to name it
MAX_ITEMS = 1024
#: a model with more bytes of weights than this is not named by its weights
WEIGHTS_HASH_LIMIT = 4 << 30
#: ``cl.stats()["lost"]`` reason for a dataset that cannot be named by its content
UNHASHABLE = "unhashable_input"


def framework_meta(model: Any) -> dict[str, Any]:
    """framework, framework_version, algorithm (the model's class) of a model reference."""
    version = getattr(sys.modules.get("transformers"), "__version__", None)
    meta = {"framework": "transformers", "framework_version": version}
    if model is not None:
        meta["algorithm"] = type(model).__name__
    return {k: v for k, v in meta.items() if v is not None}


def hyperparameters(args: Any, model: Any) -> dict[str, Any]:
    """The TrainingArguments (``to_dict()``, JSON-safe), the model's class and the part of
    its configuration that differs from the defaults (``model_config``)."""
    params = {str(k): jsonable(v) for k, v in args.to_dict().items()}
    if model is not None:
        params["model_class"] = type(model).__name__
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_diff_dict"):
            params["model_config"] = jsonable(config.to_diff_dict())
    return params


def dataset_reference(dataset: Any, split: str | None = None) -> dict[str, Any]:
    """A data reference naming ``dataset`` (see the module doc); missing data if it cannot be
    named (raises :class:`capture_lib.integrations.digest.Unhashable` then)."""
    ref = _reference(dataset)
    ref["type"] = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
    if split is not None:
        ref["split"] = split
    return ref


def missing(dataset: Any, error: str) -> dict[str, Any]:
    path = f"<in-memory {type(dataset).__qualname__}>"
    return {"@data": "missing", "path": path, "host": HOST, "error": error[:500]}


def _reference(dataset: Any) -> dict[str, Any]:
    fingerprint = getattr(dataset, "_fingerprint", None)
    if isinstance(fingerprint, str) and fingerprint:
        ref: dict[str, Any] = {
            "@data": "dataset", "sha256": value_sha256({"datasets_fingerprint": fingerprint}),
               "fingerprint": fingerprint, "hashing": "fingerprint"}  # fmt: skip
        rows = getattr(dataset, "num_rows", None)
        if isinstance(rows, int):
            ref["shape"] = [rows]
        names = getattr(dataset, "column_names", None)
        if isinstance(names, (list, tuple)):
            ref["columns"] = [str(n) for n in list(names)[:100]]
        return ref
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and tensors and all(hasattr(t, "shape") for t in tensors):
        parts = [digest.data_reference(_array(t), DATA_HASH_LIMIT // len(tensors)) for t in tensors]
        return {"@data": "dataset", "sha256": value_sha256([p["sha256"] for p in parts]),
                "kind": "tensors", "shape": [p.get("shape") for p in parts],
                "hashing": "full" if all(p["hashing"] == "full" for p in parts) else "sampled",
                "hashed_bytes": sum(p["hashed_bytes"] for p in parts)}  # fmt: skip
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise digest.Unhashable(
            f"a {type(dataset).__qualname__} has no length: a stream is not read to name it"
        )
    return _items_reference(dataset)


def _items_reference(dataset: Any) -> dict[str, Any]:
    n = len(dataset)
    if n <= MAX_ITEMS:
        indices = list(range(n))
    else:
        indices = sorted({(n - 1) * i // (MAX_ITEMS - 1) for i in range(MAX_ITEMS)})
    h = hashlib.sha256(json.dumps({"kind": "items", "length": n}).encode())
    hashed = 0
    with _random_states_kept():
        for i in indices:
            h.update(i.to_bytes(8, "little"))
            hashed += _update(h, dataset[i])
    return {"@data": "dataset", "sha256": h.hexdigest(), "kind": "items", "shape": [n],
            "hashing": "full" if len(indices) == n else "sampled",
            "items_hashed": len(indices), "hashed_bytes": hashed}  # fmt: skip


def _update(h: Any, item: Any) -> int:
    """Hash one item (see the module doc); the bytes hashed. A training set is named by
    reading up to :data:`MAX_ITEMS` items when the training starts, so this is written for
    speed (what a dict's keys and an array's header hash to is kept, and a C-ordered
    array is hashed in place); the bytes hashed are exactly those of the plain rules."""
    if type(item) is dict or isinstance(item, dict):
        names = tuple(item)
        keys = _KEYS.get(names)
        if keys is None or not all(type(name) is str for name in names):
            keys = _keys(item)  # a subclass of str compares equal but may print otherwise
        n = 0
        for key, line in keys:
            h.update(line)
            n += _update(h, item[key])
        return n
    data: Any
    if isinstance(item, (list, tuple)):
        if not any(hasattr(v, "shape") for v in item):
            data = _pickle(item)
        else:
            n = 0
            for value in item:
                h.update(b"i")
                n += _update(h, value)
            return n
    elif hasattr(item, "shape") and hasattr(item, "dtype"):
        array = _array(item)
        import numpy as np

        if type(array) is not np.ndarray:  # a pandas series, a numpy scalar…: as it was
            h.update(f"a{array.dtype.str}{list(array.shape)}".encode())
        else:
            key = (array.dtype, array.shape)
            header = _HEADERS.get(key)
            if header is None:
                header = f"a{array.dtype.str}{list(array.shape)}".encode()
                if len(_HEADERS) < 4096:
                    _HEADERS[key] = header
            h.update(header)
            if array.flags.c_contiguous and not array.dtype.hasobject:
                try:
                    h.update(array)  # its bytes in C order, as the copy below would give
                    return int(array.nbytes)
                except (BufferError, TypeError, ValueError):  # no buffer of it: as below
                    pass
        data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    else:
        data = _pickle(item)
    h.update(data)
    return memoryview(data).nbytes


#: a dict's keys (in the order it was made) → (key, what is hashed for it), sorted
_KEYS: dict[tuple[Any, ...], list[tuple[Any, bytes]]] = {}
#: (dtype, shape) → an array's header
_HEADERS: dict[tuple[Any, Any], bytes] = {}


def _keys(item: dict[Any, Any]) -> list[tuple[Any, bytes]]:
    keys = [(key, b"k" + str(key).encode() + b"\0") for key in sorted(item, key=str)]
    if len(_KEYS) < 1024 and all(type(key) is str for key in item):  # str() never changes
        _KEYS[tuple(item)] = keys
    return keys


def _pickle(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=4)
    except Exception as exc:
        raise digest.Unhashable(f"an item cannot be pickled: {exc}") from None


def _array(value: Any) -> Any:
    """A tensor as a numpy array (no copy on CPU); a bfloat16 tensor as its bytes."""
    if hasattr(value, "detach"):
        if not value.requires_grad and value.device.type == "cpu":
            try:
                return value.numpy()  # what detach().cpu().numpy() gives, three calls fewer
            except TypeError:
                pass
        value = value.detach().cpu()
        try:
            return value.numpy()
        except TypeError:  # a dtype numpy lacks (bfloat16): the same bytes, as integers
            import torch

            return value.contiguous().view(torch.uint8).numpy()
    return value


class _random_states_kept:  # a context manager used as a statement
    """Restore the random states of random, numpy and torch on leaving."""

    def __enter__(self) -> None:
        self.python = random.getstate()
        numpy, torch = sys.modules.get("numpy"), sys.modules.get("torch")
        self.numpy = numpy.random.get_state() if numpy is not None else None
        self.torch = torch.random.get_rng_state() if torch is not None else None

    def __exit__(self, *exc: object) -> None:
        random.setstate(self.python)
        if self.numpy is not None:
            sys.modules["numpy"].random.set_state(self.numpy)
        if self.torch is not None:
            sys.modules["torch"].random.set_rng_state(self.torch)


def weights_reference(model: Any, training: str | None) -> dict[str, Any]:
    """A model named by the SHA-256 of its weights in memory (see the module doc)."""
    ref: dict[str, Any] = {"@data": "model"}
    state = model.state_dict()
    total = sum(t.numel() * t.element_size() for t in state.values() if hasattr(t, "numel"))
    if total <= WEIGHTS_HASH_LIMIT:
        h = hashlib.sha256(b"state_dict")
        for name, tensor in state.items():
            h.update(name.encode() + b"\0")
            _update(h, tensor)
        ref["sha256"], ref["size"] = h.hexdigest(), total
        ref["digest"] = "weights in memory (state_dict)"
    else:
        ref["sha256"] = value_sha256({"training": training, "object": id(model)})
        ref["digest"] = f"not named by content: {total} bytes of weights"
    ref.update(framework_meta(model))
    return ref
