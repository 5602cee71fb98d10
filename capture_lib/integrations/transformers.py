"""Hugging Face Transformers: a ``TrainerCallback`` that records what the Trainer does.

>>> from capture_lib.integrations.transformers import ProvmlCallback  # doctest: +SKIP
>>> trainer = Trainer(model, args, train_dataset=train, eval_dataset=test,
...                   callbacks=[ProvmlCallback()])  # doctest: +SKIP

or ``cl.autolog()``, which adds one to every Trainer built afterwards that has none.
What a training (``trainer.train()``) becomes, in the current workflow (one named after
the script if there is none):

* a task ``<Trainer class>.train`` of stage ``training``: its parameters are the
  ``TrainingArguments`` (``to_dict()``, JSON-safe, passed through capture_lib's redactor:
  ``hub_token`` is ``***``), the model's class and its configuration's non-default values;
  it used the Trainer's ``train_dataset`` and ``eval_dataset`` (by fingerprint or content,
  :mod:`capture_lib.integrations._transformers_data`);
* each ``on_log`` during training (every ``logging_steps``): a section ``step`` whose
  index is the global step, with every number of the log (``loss``, ``learning_rate``,
  ``grad_norm``, ``epoch``, ``eval_loss`` …) as a metric at that step; the final summary
  (``train_loss``, ``train_runtime`` …) as metrics of the task;
* each checkpoint (``on_save``): the checkpoint directory, named by the content of its
  files, generated as ``checkpoint-<step>`` (a ``provml:Model``; the latest
  :data:`MAX_CHECKPOINTS` are kept); the model the training ends with as ``model``: the
  checkpoint of the last step (or the best one, with ``load_best_model_at_end``), else the
  weights in memory by their digest;
* each evaluation (``on_evaluate``): a task ``<Trainer class>.evaluate`` of stage
  ``evaluation`` that used the model evaluated (the checkpoint saved at that step, or the
  final model) and the evaluation data, with the metrics; during training, an evaluation
  at a step with no checkpoint is left to the run metrics (the model it evaluated is
  saved nowhere);
* each ``trainer.predict`` (``on_predict``): a task ``<Trainer class>.predict`` of stage
  ``inference`` that used the model and the test data and generated a ``prediction`` (the
  number of samples and the metrics: the callback does not see the predictions).

Only the main process records (``state.is_world_process_zero``). Nothing here raises
into the training: a failure is logged once and counted in
``cl.stats()["lost"]["integration_error"]``, and the Trainer's results are the same with
and without the callback. A training that raises never reaches ``on_train_end``: with
``cl.autolog()`` the wrapped ``Trainer.train`` ends the task as failed with the error; with
the callback alone, the task ends as failed at the next ``train`` or at the process's exit.

``ProvmlCallback`` subclasses ``transformers.TrainerCallback``, whose import costs that of
torch: the class is created on first use (``from … import ProvmlCallback``), so importing
this module, or ``cl.autolog()`` before transformers is used, imports neither.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from capture_lib import api, runtime
from capture_lib.integrations import _transformers_data as data
from capture_lib.integrations import digest
from capture_lib.integrations._sklearn_calls import (
    INTEGRATION_ERROR,
    integration_failed,
    jsonable,
    running_workflow,
)
from capture_lib.integrations._transformers_autolog import bind, callbacks, disable, enable, enabled
from capture_lib.refs import reference

FRAMEWORK = "transformers"
__all__ = [
    "FRAMEWORK", "MAX_CHECKPOINTS", "ProvmlCallback", "callbacks", "disable", "enable", "enabled",
]  # fmt: skip

#: checkpoints kept as generated models of one training (the latest)
MAX_CHECKPOINTS = 100
#: evaluations waiting for the checkpoint of their step, at most
MAX_PENDING = 100
_lock = threading.Lock()
#: runs whose ``on_train_end`` has not come (ended as failed at exit)
_open: set[_Run] = set()


def _failed(where: str, reason: str = INTEGRATION_ERROR, message: str = "") -> None:
    """Count a failure of the integration (in an ``except`` block); log it once."""
    integration_failed(f"transformers {where}", reason, message)


def _hook(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A callback event: on the main process only, with capture on, never raising."""

    @functools.wraps(fn)
    def event(self: _Callback, args: Any, state: Any, control: Any, *a: Any, **kw: Any) -> None:
        try:
            if getattr(state, "is_world_process_zero", True) and runtime.get_client().enabled:
                fn(self, args, state, *a, **kw)
        except Exception:
            _failed(fn.__name__)

    return event


_workflow = running_workflow


def _trainer_name(trainer: Any) -> str:
    return type(trainer).__name__ if trainer is not None else "Trainer"


class _Run:
    """One ``trainer.train()``: its task and what it saved."""

    def __init__(self, task: api.Task, trainer_name: str, eval_ref: dict[str, Any] | None):
        self.task = task
        self.trainer_name = trainer_name
        self.eval_ref = eval_ref
        self.checkpoints: dict[str, dict[str, Any]] = {}  # path → model reference
        self.pending: list[tuple[int, dict[str, Any], Any]] = []  # (step, metrics, time)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        roles = {f"checkpoint-{ref['step']}": ref for ref in self.checkpoints.values()}
        if roles:
            self.task.generated(**roles)
        self.task.end(status, error)
        _open.discard(self)


class _Callback:
    """The implementation of :class:`ProvmlCallback` (see the module doc)."""

    def __init__(self) -> None:
        #: the reference of the model the last training ended with (for ``cl.inference``)
        self.model: dict[str, Any] | None = None
        self._run: _Run | None = None
        self._trainer: weakref.ref[Any] | None = None
        self._models: dict[int, tuple[weakref.ref[Any], dict[str, Any]]] = {}
        self._datasets: dict[int, tuple[weakref.ref[Any] | None, dict[str, Any]]] = {}

    # -- training ---------------------------------------------------------------------

    @_hook
    def on_train_begin(self, args: Any, state: Any, model: Any = None,
                       train_dataloader: Any = None, **kw: Any) -> None:  # fmt: skip
        if self._run is not None:  # the last train() raised: it never reached on_train_end
            self._run.end("failed", "training stopped before on_train_end")
        trainer = self._find_trainer()
        used: dict[str, Any] = {}
        train = getattr(trainer, "train_dataset", None)
        if train is None and train_dataloader is not None:
            train = getattr(train_dataloader, "dataset", None)
        if train is not None:
            used["train_dataset"] = self._dataset(train, "train")
        evals = getattr(trainer, "eval_dataset", None)
        eval_ref = None
        if isinstance(evals, dict):
            for name, dataset in list(evals.items())[:20]:
                used[f"eval_dataset.{name}"] = self._dataset(dataset, f"eval.{name}")
        elif evals is not None:
            used["eval_dataset"] = eval_ref = self._dataset(evals, "eval")
        base = _base_model(model)
        if base is not None:
            used["base_model"] = base
        try:
            params = data.hyperparameters(args, model)
        except Exception:  # the training is still recorded, without its parameters
            _failed("reading the training arguments")
            params = None
        name = _trainer_name(trainer)
        task = _workflow().task(f"{name}.train", stage="training", used=used, params=params)
        task.start()
        self._run = run = _Run(task, name, eval_ref)
        _open.add(run)

    @_hook
    def on_log(self, args: Any, state: Any, logs: Any = None, **kw: Any) -> None:
        run = self._run
        if run is None or not logs:
            return
        numbers = {k: v for k, v in logs.items() if _is_number(v)}
        if "train_runtime" in logs:  # the summary at the end of training
            for key, value in numbers.items():
                run.task.metric(key, value)
            return
        step = state.global_step
        with run.task.section("step", step) as section:
            for key, value in numbers.items():
                section.metric(key, value, step)

    @_hook
    def on_evaluate(self, args: Any, state: Any, metrics: Any = None, model: Any = None,
                    eval_dataloader: Any = None, **kw: Any) -> None:  # fmt: skip
        run = self._run
        if run is not None:  # the model evaluated is known once saved (on_save follows)
            if len(run.pending) < MAX_PENDING:
                run.pending.append((state.global_step, dict(metrics or {}), None))
            return
        dataset = getattr(eval_dataloader, "dataset", None)
        used = {"model": self._model_reference(model, state)}
        if dataset is not None:
            used["eval_dataset"] = self._dataset(dataset, "eval")
        self._evaluation(_trainer_name(self._find_trainer()), used, metrics, state.global_step)

    @_hook
    def on_save(self, args: Any, state: Any, model: Any = None, **kw: Any) -> None:
        run = self._run
        if run is None:
            return
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if not os.path.isdir(path):
            return
        meta = {**data.framework_meta(model), "step": state.global_step}
        ref = reference("model", path, meta, runtime.count_lost)
        run.checkpoints.pop(path, None)
        run.checkpoints[path] = ref
        while len(run.checkpoints) > MAX_CHECKPOINTS:
            del run.checkpoints[next(iter(run.checkpoints))]
        self._flush_evaluations(run, state.global_step, ref)

    @_hook
    def on_train_end(self, args: Any, state: Any, model: Any = None, **kw: Any) -> None:
        run, self._run = self._run, None
        if run is None:
            return
        final = None
        best = getattr(state, "best_model_checkpoint", None)
        if getattr(args, "load_best_model_at_end", False) and best in run.checkpoints:
            final = run.checkpoints[best]
        else:
            last = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            final = run.checkpoints.get(last)
        if final is None and model is not None:
            final = data.weights_reference(model, run.task.iri)
        if final is not None:
            run.task.generated(model=final)
            self.model = final
            self._remember(model, final)
            self._flush_evaluations(run, state.global_step, final)
        run.end()

    def _train_failed(self, exc: BaseException) -> None:
        """``Trainer.train`` raised (seen by autolog's wrapper): the task ends failed."""
        try:
            run, self._run = self._run, None
            if run is not None:
                run.end("failed", f"{type(exc).__name__}: {exc}"[:2000])
        except Exception:
            _failed("ending a failed training")

    # -- evaluation and inference outside training ---------------------------------------

    @_hook
    def on_predict(self, args: Any, state: Any, metrics: Any = None, model: Any = None,
                   eval_dataloader: Any = None, **kw: Any) -> None:  # fmt: skip
        used = {"model": self._model_reference(model, state)}
        dataset = getattr(eval_dataloader, "dataset", None)
        if dataset is not None:
            used["input"] = self._dataset(dataset, None)
        metrics = {k: v for k, v in dict(metrics or {}).items() if _is_number(v)}
        samples = None
        if dataset is not None and hasattr(dataset, "__len__"):
            samples = len(dataset)
        name = f"{_trainer_name(self._find_trainer())}.predict"
        with _workflow().task(name, stage="inference", used=used) as task:
            task.generated(prediction={"samples": samples, "metrics": jsonable(metrics)})

    def _flush_evaluations(self, run: _Run, step: int, model_ref: dict[str, Any]) -> None:
        """The evaluations of this step, now that the model they evaluated has a name;
        those of earlier steps (no checkpoint) stay run metrics only."""
        pending, run.pending = run.pending, []
        for at, metrics, _ in pending:
            if at == step:
                used = {"model": model_ref}
                if run.eval_ref is not None:
                    used["eval_dataset"] = run.eval_ref
                self._evaluation(run.trainer_name, used, metrics, step)

    def _evaluation(self, trainer: str, used: dict[str, Any], metrics: Any, step: int) -> None:
        with _workflow().task(f"{trainer}.evaluate", stage="evaluation", used=used) as task:
            for key, value in dict(metrics or {}).items():
                if _is_number(value):
                    task.metric(key, value, step)

    # -- naming ---------------------------------------------------------------------

    def _find_trainer(self) -> Any:
        """The Trainer calling this callback: the one autolog attached it to, else the
        ``self`` of the Trainer method a few frames up (the callback is not given it)."""
        trainer = self._trainer() if self._trainer is not None else None
        if trainer is not None:
            return trainer
        frame: Any = sys._getframe(1)
        for _ in range(12):
            if frame is None:
                break
            candidate = frame.f_locals.get("self")
            handler = getattr(candidate, "callback_handler", None)
            if hasattr(candidate, "train_dataset") and self in getattr(handler, "callbacks", ()):
                self._trainer = weakref.ref(candidate)
                return candidate
            frame = frame.f_back
        return None

    def _dataset(self, dataset: Any, split: str | None) -> dict[str, Any]:
        key = id(dataset)
        cached = self._datasets.get(key)
        if cached is not None and (cached[0] is None or cached[0]() is dataset):
            ref = dict(cached[1])
        else:
            try:
                ref = data.dataset_reference(dataset)
            except digest.Unhashable as exc:
                _failed(f"naming a {type(dataset).__name__}", data.UNHASHABLE, str(exc))
                return data.missing(dataset, str(exc))
            except Exception as exc:
                _failed(f"naming a {type(dataset).__name__}")
                return data.missing(dataset, f"{type(exc).__name__}: {exc}")
            try:
                weak: weakref.ref[Any] | None = weakref.ref(dataset)
            except TypeError:
                weak = None  # kept by id only while the Trainer holds it: not cached
            if weak is not None:
                self._datasets[key] = (weak, ref)
            ref = dict(ref)
        if split is not None:
            ref["split"] = split
        return ref

    def _remember(self, model: Any, ref: dict[str, Any]) -> None:
        if model is None:
            return
        with contextlib.suppress(TypeError):  # no weak reference to it: not remembered
            self._models = {id(model): (weakref.ref(model), ref)}

    def _model_reference(self, model: Any, state: Any) -> dict[str, Any]:
        """The model a prediction or evaluation used: the one training ended with, else
        its weights now (a model loaded from a directory, or trained elsewhere)."""
        entry = self._models.get(id(model))
        if entry is not None and entry[0]() is model:
            return entry[1]
        if model is None:
            return self.model or {"@data": "model", "sha256": "0" * 64}
        ref = data.weights_reference(model, None)
        self._remember(model, ref)
        return ref


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _base_model(model: Any) -> dict[str, Any] | None:
    """The directory the model was loaded from (``from_pretrained`` of a local path), as
    the model this training started from; None if it was built from a configuration."""
    path = getattr(getattr(model, "config", None), "_name_or_path", None)
    if isinstance(path, str) and path and os.path.isdir(path):
        return reference("model", path, data.framework_meta(model), runtime.count_lost)
    return None


@atexit.register
def _end_open_runs() -> None:
    """Trainings that raised without autolog's wrapper: failed, at exit."""
    for run in list(_open):
        try:
            run.end("failed", "training stopped before on_train_end")
        except Exception:
            _failed("ending an interrupted training")


# -- the class, created on first use (it subclasses TrainerCallback, which imports torch) --

_class: type | None = None

if TYPE_CHECKING:
    ProvmlCallback = _Callback
else:

    def __getattr__(name: str) -> Any:
        if name == "ProvmlCallback":
            return _callback_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _callback_class() -> type:
    global _class
    with _lock:
        if _class is None:
            from transformers import TrainerCallback

            _class = type("ProvmlCallback", (_Callback, TrainerCallback), {
                "__module__": __name__, "__doc__": __doc__})  # fmt: skip
        return _class


bind(_Callback, _callback_class, _failed)
