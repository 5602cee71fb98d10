"""What the Keras integration shares between its callback and its patches: the workflow,
the data and the models named by content. Imports nothing of Keras.

A Keras model is named by the digest of its weights (:func:`weights_reference`): the
variables' paths, dtypes, shapes and values, hashed whole up to
``_torch.STATE_HASH_LIMIT`` bytes, sampled past it. So the same weights loaded in another
process (``keras.models.load_model``) are the same model node, whatever file they came
from; a model trained here is remembered (:func:`register`) so that a prediction names
the model its training generated.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import weakref
from typing import Any

from capture_lib import runtime
from capture_lib.integrations import _sklearn_calls as calls
from capture_lib.integrations import _torch, digest
from capture_lib.refs import HOST, reference


class _State:
    #: True while cl.autolog() patches Keras (capture_lib.integrations.keras)
    active = False


state = _State()
#: inside a patched predict (its callbacks record nothing of their own)
predicting: contextvars.ContextVar[bool] = contextvars.ContextVar("provml_keras", default=False)
_lock = threading.Lock()
#: model → (its weights' identity and versions, its reference when trained here)
_trained: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_digests: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()


def framework_meta(model: Any = None) -> dict[str, str]:
    keras = sys.modules.get("keras")
    meta = {"framework": "keras"}
    version = getattr(keras, "__version__", None)
    if version:
        meta["framework_version"] = version
    if model is not None:
        meta["algorithm"] = type(model).__name__
    return meta


workflow = calls.running_workflow


def _value(variable: Any) -> Any:
    inner = getattr(variable, "value", variable)
    if type(inner).__module__.partition(".")[0] == "torch":
        return _torch.array(inner)
    import numpy as np

    return np.asarray(variable)


def _versions(variables: list[Any]) -> tuple[Any, ...] | None:
    try:
        return tuple((id(v.value), v.value._version) for v in variables)
    except Exception:  # not the torch backend: no version counters, never cached
        return None


def weights_reference(model: Any) -> dict[str, Any]:
    """The model named by the digest of its weights (see module doc)."""
    variables = list(model.weights)
    key = _versions(variables)
    with _lock:
        cached = _digests.get(model)
    if cached is not None and key is not None and cached[0] == key:
        return cached[1]
    arrays = {f"{i}:{getattr(v, 'path', None) or v.name}": _value(v)
              for i, v in enumerate(variables)}  # fmt: skip
    state = _torch.arrays_digest(arrays)
    ref = {"@data": "model", "sha256": state["sha256"], "digest": "weights",
           "weights_bytes": state["size"], "hashing": state["hashing"],
           **framework_meta(model)}  # fmt: skip
    if key is not None:
        with _lock:
            _digests[model] = (key, ref)
    return ref


def register(model: Any) -> dict[str, Any]:
    """The model as its training generated it, remembered for its predictions."""
    ref = weights_reference(model)
    with _lock:
        _trained[model] = ref
    return ref


def known(model: Any) -> dict[str, Any] | None:
    """The reference of a model trained here, if its weights have not changed since."""
    ref = _trained.get(model)
    if ref is None:
        return None
    return ref if weights_reference(model)["sha256"] == ref["sha256"] else None


def model_reference(model: Any) -> dict[str, Any]:
    """What a prediction used: the model named by its weights."""
    return known(model) or weights_reference(model)


def file_reference(path: Any) -> dict[str, Any]:
    return reference("model", path, framework_meta(), runtime.count_lost)


def _one(value: Any, role: str, limit: int) -> dict[str, Any]:
    if (
        hasattr(value, "dataset")
        and hasattr(value, "batch_size")
        and "torch" in type(value).__module__
    ):  # a torch DataLoader
        refs = _torch.data_references(value, role, limit)
        return refs.get(role) or next(iter(refs.values()))
    try:
        return digest.data_reference(value, limit)
    except Exception as exc:
        calls.integration_failed(f"naming Keras {role}", calls.UNHASHABLE, str(exc)[:200])
        return {"@data": "missing", "path": f"<in-memory {type(value).__qualname__}>",
                "host": HOST, "error": str(exc)[:500] or type(exc).__name__}  # fmt: skip


def data_references(data: Any, prefix: str, limit: int = _torch.TRAIN_HASH_LIMIT) -> dict[str, Any]:
    """Role → reference for ``data``: ``(x, y[, sample_weight])``, ``x`` alone, or a dict
    of roles (a multi-input model's inputs: ``x[name]``)."""
    if data is None:
        return {}
    if isinstance(data, dict) and not hasattr(data, "iloc"):
        out: dict[str, Any] = {}
        for key, value in list(data.items())[: _torch.MAX_LOADERS]:
            if value is None:
                continue
            if isinstance(value, dict) and not hasattr(value, "iloc"):
                out.update(data_references(value, f"{prefix}{key}", limit))
            else:
                out[f"{prefix}{key}"] = _one(value, f"{prefix}{key}", limit)
        return out
    if isinstance(data, tuple):
        names = ("x", "y", "sample_weight")
        return data_references(dict(zip(names, data, strict=False)), prefix, limit)
    return data_references({"x": data}, prefix, limit)


def prediction(result: Any) -> dict[str, Any]:
    """The generated ``prediction``: the output's digest (and values when few)."""
    try:
        return calls._prediction(result)
    except Exception:
        stream = _torch.OutputStream()
        stream.add(result)
        return stream.value()
