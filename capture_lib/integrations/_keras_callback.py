"""The Keras class of capture_lib.integrations.keras: this module imports Keras, so it is
imported only when ``ProvmlCallback`` is first asked for or when autolog is enabled.

What a fit records (a task ``<Model>.fit`` of stage ``training`` of the current workflow):

* parameters: the fit's settings (``epochs``, ``steps``, and with autolog ``batch_size``,
  ``validation_split``, ``shuffle`` …), the compile settings (``get_compile_config()``:
  ``loss``, ``metrics`` …; the optimizer's class and its ``get_config()`` as
  ``optimizer.<name>``), the model's class, number of layers and parameters, and its
  ``get_config()`` as ``model_config`` when its JSON is at most :data:`MAX_CONFIG_CHARS`
  characters (else ``model_config_sha256`` and the layers' classes);
* used: the training data by content (``x``, ``y``, ``sample_weight``,
  ``validation.x`` …: numpy arrays, tensors and frames as digest.py names them; a torch
  DataLoader by its dataset; a ``tf.data`` pipeline, a ``PyDataset`` or a generator is
  recorded as missing data, counted); given to the callback (``data=(x, y)``) or seen by
  the patched ``fit``; ``previous_model`` when the model was trained before here;
* sections ``epoch`` (index = epoch) with the epoch's logs as metrics, step = batches so
  far; with ``log_batches=True`` each ``batch_every``-th batch's logs too (at most
  :data:`MAX_BATCH_METRICS` batches an epoch);
* generated: ``model``, the model named by the digest of its weights (names, shapes,
  dtypes, values); with ``save_path``, the file the callback saves at the end
  (``model.save(save_path)``) as ``file`` (a model named by its content).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import keras

from capture_lib import api, runtime
from capture_lib.integrations import _keras_run as run
from capture_lib.integrations import _sklearn_calls as calls
from provml.core.ids import value_sha256

#: the model's config is recorded whole up to this many characters of JSON
MAX_CONFIG_CHARS = 16_384
#: batches whose logs are recorded per epoch at most (log_batches=True)
MAX_BATCH_METRICS = 1000


class ProvmlCallback(keras.callbacks.Callback):
    """``model.fit(x, y, callbacks=[ProvmlCallback(data=(x, y))])`` (see module doc).

    ``data``: the training data, ``(x, y)``, ``x`` alone or ``{role: array}`` (autolog
    fills it in from ``fit``'s arguments). ``log_batches``: record every
    ``batch_every``-th batch's logs. ``save_path``: save the model there when training
    ends and record the file. Passed to ``model.predict(x, callbacks=[…])``, it records
    an inference that used the model (its outputs by digest; the inputs are not visible
    to a callback: with autolog they are).
    """

    def __init__(
        self,
        data: Any = None,
        *,
        log_batches: bool = False,
        batch_every: int = 1,
        save_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.data = data
        self.fit_params: dict[str, Any] = {}
        self.log_batches = log_batches
        self.batch_every = max(1, int(batch_every))
        self.save_path = save_path
        self.task: api.Task | None = None
        self.section: api.Section | None = None
        self.batches = 0
        self.epoch_batches = 0
        self.outputs: Any = None
        self.autolog = False

    def _on(self) -> bool:
        return (not self.autolog or run.state.active) and runtime.get_client().enabled

    def _guarded(self, where: str, fn: Any, *args: Any) -> None:
        try:
            if self._on():
                fn(*args)
        except Exception:
            calls.integration_failed(f"the Keras callback ({where})")

    # -- training ---------------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        self._guarded("on_train_begin", self._begin)

    def _begin(self) -> None:
        self.end("finished")
        model = self.model
        used = run.data_references(self.data, "")
        previous = run.known(model)
        if previous is not None:
            used["previous_model"] = previous
        params = {**hyperparameters(model), **{k: calls.jsonable(v)
                  for k, v in (self.params or {}).items() if v is not None}}  # fmt: skip
        params.update(self.fit_params)
        self.task = run.workflow().task(
            f"{type(model).__name__}.fit", stage="training", used=used, params=params
        )
        self.task.start()
        self.batches = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._guarded("on_epoch_begin", self._epoch, epoch)

    def _epoch(self, epoch: int) -> None:
        self._end_section()
        if self.task is not None:
            self.section = self.task.section("epoch", epoch).start()
            self.epoch_batches = 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        if self.log_batches and batch % self.batch_every == 0:
            self._guarded("on_train_batch_end", self._batch, logs)

    def _batch(self, logs: Any) -> None:
        if self.section is not None and self.epoch_batches < MAX_BATCH_METRICS:
            self.epoch_batches += 1
            for name, value in (logs or {}).items():
                self.section.metric(f"batch_{name}", float(value), self.batches)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._guarded("on_epoch_end", self._epoch_end, logs)

    def _epoch_end(self, logs: Any) -> None:
        target = self.section or self.task
        if target is not None:
            for name, value in (logs or {}).items():
                target.metric(name, float(value), self.batches)
        self._end_section()

    def on_train_end(self, logs: Any = None) -> None:
        self._guarded("on_train_end", self.end, "finished")

    def _end_section(self) -> None:
        section, self.section = self.section, None
        if section is not None:
            section.end()

    def end(self, status: str, error: str | None = None) -> None:
        """End the training task (autolog calls it with ``failed`` when fit raised)."""
        task, self.task = self.task, None
        self._end_section()
        if task is None:
            return
        try:
            model = run.register(self.model)
            task.generated(model=model)
            if self.save_path is not None and status == "finished":
                self.model.save(self.save_path)
                task.generated(file=run.file_reference(self.save_path))
        finally:
            task.end(status, error)

    # -- inference (the callback passed to predict) --------------------------------------

    def on_predict_begin(self, logs: Any = None) -> None:
        self._guarded("on_predict_begin", self._predict_begin)

    def _predict_begin(self) -> None:
        from capture_lib.integrations import _torch

        if run.predicting.get():  # the patched predict records this one
            return
        used = {"model": run.model_reference(self.model)}
        self.task = run.workflow().task(
            f"{type(self.model).__name__}.predict", stage="inference", used=used
        )
        self.task.start()
        self.outputs = _torch.OutputStream()

    def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
        if self.outputs is not None:
            self._guarded("on_predict_batch_end", self.outputs.add, (logs or {}).get("outputs"))

    def on_predict_end(self, logs: Any = None) -> None:
        self._guarded("on_predict_end", self._predict_end)

    def _predict_end(self) -> None:
        task, self.task = self.task, None
        if task is not None and self.outputs is not None:
            task.generated(prediction=self.outputs.value())
            task.end()
        self.outputs = None


def hyperparameters(model: Any) -> dict[str, Any]:
    """The model's and its compile settings as parameters (see module doc)."""
    params: dict[str, Any] = {"model": type(model).__name__}
    layers = getattr(model, "layers", None) or []
    params["layers"] = len(layers)
    with contextlib.suppress(Exception):  # not built yet
        params["parameters"] = int(model.count_params())
    try:
        config = model.get_config()
        text = json.dumps(config, sort_keys=True, default=str)
        if len(text) <= MAX_CONFIG_CHARS:
            params["model_config"] = json.loads(text)
        else:
            params["model_config_sha256"] = value_sha256(json.loads(text))
            params["layer_classes"] = [type(layer).__name__ for layer in layers[:100]]
    except Exception:  # a subclassed model without get_config
        pass
    compile_config = None
    with contextlib.suppress(Exception):
        compile_config = model.get_compile_config()
    for key, value in (compile_config or {}).items():
        if key != "optimizer" and value is not None:
            params[key] = calls.jsonable(value)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        params["optimizer"] = type(optimizer).__name__
        try:
            for key, value in optimizer.get_config().items():
                if key != "name" and value is not None:
                    params[f"optimizer.{key}"] = calls.jsonable(value)
        except Exception:
            pass
    return params


__all__ = ["MAX_BATCH_METRICS", "MAX_CONFIG_CHARS", "ProvmlCallback", "hyperparameters"]
