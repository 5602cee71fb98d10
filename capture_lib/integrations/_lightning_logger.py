"""The Lightning classes of capture_lib.integrations.lightning: this module imports
Lightning (``lightning.pytorch``), so it is imported only when ``ProvmlLogger`` is first
asked for (``from capture_lib.integrations.lightning import ProvmlLogger``) or when
autolog adds one to a Trainer. What is recorded: :mod:`capture_lib.integrations._lightning_run`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from capture_lib.integrations import _lightning_run
from capture_lib.integrations._lightning_run import Run, guarded


def _rank_zero() -> bool:
    return getattr(rank_zero_only, "rank", 0) == 0


class ProvmlLogger(Logger):
    """A Lightning logger that records the run in provml's graph:
    ``Trainer(logger=ProvmlLogger())`` (or beside others: ``logger=[csv, ProvmlLogger()]``).

    ``workflow``: the name of the workflow run it opens when no ``with cl.workflow(…)``
    is running (default: the script's name); ``finalize`` ends that run. ``name``,
    ``version`` and ``save_dir`` are Lightning's: when this logger is the Trainer's first,
    checkpoints go to ``<save_dir or default_root_dir>/<name>/<version>/checkpoints``.
    Only rank zero records anything.
    """

    def __init__(
        self,
        workflow: str | None = None,
        *,
        name: str = "provml",
        version: str | None = None,
        save_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self._name = name
        self._version = (
            version
            if version is not None
            else time.strftime("%Y%m%d-%H%M%S") + (f"-{os.urandom(2).hex()}")
        )
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._run = Run(workflow)
        #: set by autolog: mirror this logger's version, and do nothing once autolog is off
        self._autolog_mirror: Any = None
        self._autolog = False

    # -- what Lightning asks of a logger -------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> Any:
        mirror = self._autolog_mirror
        return mirror.version if mirror is not None else self._version

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def experiment(self) -> Any:
        return self._run

    def _on(self) -> bool:
        if self._autolog and not _lightning_run.autolog.active:
            return False
        return _rank_zero()

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if self._on():
            guarded("log_hyperparams", lambda: self._run.log_hyperparams(params))

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        if self._on():
            guarded("log_graph", lambda: self._attach(model))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self._on():
            guarded("log_metrics", lambda: self._run.metrics(metrics, step))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._on():
            path = getattr(checkpoint_callback, "_last_checkpoint_saved", None) or getattr(
                checkpoint_callback, "last_model_path", None
            )
            guarded("after_save_checkpoint", lambda: self._run.checkpoint(path))

    def save(self) -> None:
        """Nothing: the capture queue is delivered by capture_lib's worker."""

    def finalize(self, status: str) -> None:
        if self._on():
            guarded("finalize", lambda: self._run.finalize(status))

    def __getstate__(self) -> dict[str, Any]:
        # a logger sent to spawned ranks: its settings, not its capture state
        state = self.__dict__.copy()
        state["_run"] = Run(self._run.workflow_name)
        state["_autolog_mirror"] = None
        return state

    def _attach(self, model: Any) -> None:
        """Add the callback that tells the run when stages and epochs start (once)."""
        trainer = model._trainer if hasattr(model, "_trainer") else model.trainer
        if trainer is None:
            return
        if not any(isinstance(c, _Hooks) and c.logger is self for c in trainer.callbacks):
            trainer.callbacks.append(_Hooks(self))


class _Hooks(Callback):
    """The stage and epoch boundaries of a Trainer, for the logger that added it."""

    def __init__(self, logger: ProvmlLogger) -> None:
        self.logger = logger

    @property
    def _run(self) -> Run:
        return self.logger._run

    def _stage(self, trainer: Any, module: Any) -> None:
        if self.logger._on():
            guarded("stage start", lambda: self._run.start(trainer, module))

    on_train_start = on_test_start = on_predict_start = _stage

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if str(getattr(trainer.state.fn, "value", trainer.state.fn)) == "validate":
            self._stage(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.logger._on():
            guarded("epoch start", lambda: self._run.epoch(trainer.current_epoch))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.logger._on():
            guarded("train end", self._run.end_epoch)

    def on_predict_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any,
                             **kwargs: Any) -> None:  # fmt: skip
        if self.logger._on():
            guarded("predict batch end", lambda: self._run.predicted(outputs))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.logger._on():
            self._run.error = f"{type(exception).__name__}: {exception}"[:2000]

    def state_dict(self) -> dict[str, Any]:
        return {}


model_reference = _lightning_run.model_reference
__all__ = ["ProvmlLogger", "model_reference"]
