"""PyTorch Lightning, captured by a logger: ``Trainer(logger=ProvmlLogger())``.

>>> from capture_lib.integrations.lightning import ProvmlLogger  # doctest: +SKIP
>>> trainer = Trainer(max_epochs=3, logger=ProvmlLogger())      # doctest: +SKIP

``ProvmlLogger`` is a ``lightning.pytorch.loggers.Logger``; importing this module imports
nothing of Lightning: the class is made (its module,
:mod:`capture_lib.integrations._lightning_logger`, imported) when first asked for. What
it records: :mod:`capture_lib.integrations._lightning_run`.

``cl.autolog()`` (:func:`enable`) patches ``lightning.pytorch.Trainer.__init__`` so that
every Trainer made from then on gets a ``ProvmlLogger`` if it has none: after its own
loggers (the first logger still decides where checkpoints go; the added one reports the
first one's version, so the progress bar's ``v_num`` is unchanged), or alone, for a
Trainer made with ``logger=False``, with an empty name and version (checkpoints still go
to ``<default_root_dir>/checkpoints``). :func:`disable` puts ``__init__`` back, and the
loggers autolog added record nothing more.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from capture_lib.integrations import _import_hook, _lightning_run
from capture_lib.integrations import _sklearn_calls as calls

if TYPE_CHECKING:
    from capture_lib.integrations._lightning_logger import ProvmlLogger

FRAMEWORK = "lightning"
__all__ = ["FRAMEWORK", "ProvmlLogger", "disable", "enable", "enabled", "model_reference"]

_lock = threading.Lock()
_MARK = "_provml_wraps"
_patched: dict[Any, Any] = {}
_state = _lightning_run.autolog


def model_reference(module: Any, checkpoint: Any = None) -> dict[str, Any]:
    """The model reference of a LightningModule (or any ``torch.nn.Module``), for
    ``cl.inference(model_reference(module), x, y)`` when it is used outside a Trainer:
    ``checkpoint`` (a path) if given, else the checkpoint saved in this process with the
    same weights, else a model named by the digest of its weights."""
    return _lightning_run.model_reference(module, checkpoint)


def __getattr__(name: str) -> Any:
    if name == "ProvmlLogger":
        from capture_lib.integrations._lightning_logger import ProvmlLogger

        return ProvmlLogger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enabled() -> bool:
    """True while Trainers get a ProvmlLogger."""
    return _state.active


def enable() -> None:
    """Patch ``Trainer.__init__`` (see module doc), now if ``lightning.pytorch`` is imported,
    else when it is (importing it here would cost every script torch's import time).
    Calling it again does nothing more."""
    _state.active = True
    _import_hook.when_imported("lightning.pytorch", _patch)


def _patch() -> None:
    with _lock:
        from lightning.pytorch import Trainer

        from capture_lib.integrations._lightning_logger import ProvmlLogger

        original = Trainer.__dict__["__init__"]
        if not hasattr(original, _MARK):

            @functools.wraps(original)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                if _state.active:
                    _add_logger(self, ProvmlLogger)

            setattr(__init__, _MARK, original)
            Trainer.__init__ = __init__
            _patched[Trainer] = original


def disable() -> None:
    """Put ``Trainer.__init__`` back; the loggers autolog added record nothing more."""
    _import_hook.cancel("lightning.pytorch")
    with _lock:
        _state.active = False
        for klass, original in list(_patched.items()):
            if hasattr(klass.__dict__.get("__init__"), _MARK):
                klass.__init__ = original
        _patched.clear()


def _add_logger(trainer: Any, logger_class: type) -> None:
    try:
        loggers = list(trainer.loggers)
        if any(isinstance(lg, logger_class) for lg in loggers):
            return
        if loggers:
            logger = logger_class()
            logger._autolog_mirror = loggers[0]
        else:
            logger = logger_class(name="", version="")
        logger._autolog = True
        trainer.loggers = [*loggers, logger]
    except Exception:
        calls.integration_failed("adding a ProvmlLogger to a Trainer")
