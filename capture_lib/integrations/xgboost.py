"""XGBoost's native training (``xgboost.train``) captured: a training callback, and autolog.

>>> import capture_lib as cl
>>> from capture_lib.integrations.xgboost import ProvmlCallback   # doctest: +SKIP
>>> callback = ProvmlCallback(params=params, dtrain=dtrain)   # doctest: +SKIP
>>> booster = xgboost.train(params, dtrain, 50, evals=[(dval, "val")],
...                         callbacks=[callback])   # doctest: +SKIP

or, with no change to the training code, ``cl.autolog()`` (registered as ``"xgboost"``),
which then:

* adds a :class:`ProvmlCallback` to every ``xgboost.train(…)`` call (given the call's
  ``params``, ``dtrain``, ``evals`` and ``num_boost_round``; one the caller passed is
  filled in, not doubled). ``xgboost.train`` and ``xgboost.training.train`` are patched:
  a ``from xgboost import train`` done before ``cl.autolog()`` is not seen;
* names the arrays every ``DMatrix`` / ``QuantileDMatrix`` is built from by content, as
  it is built (:mod:`capture_lib.integrations._boosting`);
* makes ``Booster.predict(dmatrix)`` and ``Booster.inplace_predict(array)`` inference
  tasks that used the Booster (and the data, named by content), and
  ``Booster.save_model(path)`` (and ``XGBModel.save_model`` of a captured scikit-learn
  wrapper) a task ``save <Class>`` linking the file to the model.

Nothing of XGBoost is imported by ``cl.autolog()``: the patches are put in place when
``xgboost`` is imported (at once if it already is). :class:`ProvmlCallback` subclasses
``xgboost.callback.TrainingCallback``, which XGBoost requires: the class is made, and
XGBoost imported, the first time it is asked for. The sklearn wrappers
(``XGBClassifier``, ``XGBRegressor``) are captured by the scikit-learn integration, not
here: their internal ``train`` is not patched, so a ``fit`` is one task with its
evaluation curves (``evals_result()``) as sections.

What a run records is described in :mod:`capture_lib.integrations._boosting`. A callback
used in ``xgboost.cv`` records nothing (the model it is given is not a Booster). The task
of an explicit callback whose training raises stays open (autolog ends it as failed).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from capture_lib.integrations import _boosting as boosting

FRAMEWORK = "xgboost"
__all__ = ["FRAMEWORK", "disable", "enable", "enabled"]  # and ProvmlCallback (__getattr__)

_class: Any = None


def __getattr__(name: str) -> Any:
    if name == "ProvmlCallback":
        return _callback_class()
    raise AttributeError(name)


def _patch(patches: boosting.Patches, xgb: Any) -> None:
    train = boosting.train_patch(patches, _run)
    patches.replace(xgb, "train", train)
    patches.replace(xgb.training, "train", train)
    for cls in (xgb.DMatrix, xgb.QuantileDMatrix):
        patches.replace(cls, "__init__", boosting.remember_source(cls, _SOURCES, eager=True))
    patches.replace(xgb.Booster, "predict", boosting.predict_patch(patches, _predict_input))
    inplace = boosting.predict_patch(patches, _inplace_input, "inplace_predict")
    patches.replace(xgb.Booster, "inplace_predict", inplace)
    patches.replace(xgb.Booster, "save_model", boosting.save_patch(patches))
    sklearn = getattr(xgb, "sklearn", None)
    if sklearn is not None and hasattr(sklearn, "XGBModel"):
        patches.replace(sklearn.XGBModel, "save_model", boosting.save_patch(patches))


_integration = boosting.Integration(FRAMEWORK, _patch)
enabled, enable, disable = _integration.enabled, _integration.enable, _integration.disable


_SOURCES = ("data", "label", "weight")


def _run(original: Any, bound: inspect.BoundArguments) -> Any:
    """``xgboost.train`` with a :class:`ProvmlCallback` (see module doc)."""
    try:
        args, cb = boosting.with_callback(bound, _callback_class())
        cb._fill(args["params"], args["dtrain"], args.get("evals"), args.get("num_boost_round"))
    except Exception:
        boosting.failed("adding the provml callback to xgboost.train")
        return original(*bound.args, **bound.kwargs)
    return boosting.call_quietly(original, bound, cb._end)


def _callback_class() -> Any:
    global _class
    if _class is None:
        from xgboost.callback import TrainingCallback

        _class = type("ProvmlCallback", (_Callback, TrainingCallback), {"__module__": __name__})
    return _class


class _Callback:
    """``ProvmlCallback(params=None, dtrain=None, evals=None, num_boost_round=None)``: an
    ``xgboost.callback.TrainingCallback`` recording the training as a task (see
    :mod:`capture_lib.integrations._boosting`).

    XGBoost gives a callback the Booster and the evaluation log, not what the training
    was called with: pass ``params`` (else the Booster's configured training parameters
    are recorded), ``dtrain`` (else no training data is recorded), ``evals`` (else the
    evaluation sets are named only in the metrics) and ``num_boost_round`` (else the
    rounds kept as sections thin out as they come). A callback is used for one training
    (XGBoost's rule too). Never raises into the training; never stops it.
    """

    def __init__(
        self,
        params: Any = None,
        dtrain: Any = None,
        evals: Any = None,
        num_boost_round: int | None = None,
    ) -> None:
        super().__init__()
        self._args: tuple[Any, Any, Any, Any] = (params, dtrain, evals, num_boost_round)
        self._armed = False  # filled in by the autolog patch of xgboost.train
        self._training: boosting.Training | None = None

    def _fill(self, params: Any, dtrain: Any, evals: Any, rounds: Any) -> None:
        mine = self._args
        given = (params, dtrain, evals, rounds)
        params, dtrain, evals, rounds = (
            m if m is not None else g for m, g in zip(mine, given, strict=True)
        )
        self._args = (params, dtrain, evals, rounds)
        self._armed = True

    def before_training(self, model: Any) -> Any:
        try:
            if self._training is None and (self._armed or boosting.capturing()):
                self._training = _start(model, *self._args)
        except Exception:
            boosting.failed("starting the capture of xgboost training")
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        training = self._training
        if training is not None:
            try:
                logs = evals_log.items()
                results = ((d, m, v[-1]) for d, log in logs for m, v in log.items() if v)
                training.round(epoch, boosting.round_metrics(results))
            except Exception:
                boosting.failed("recording a round of xgboost training")
        return False

    def after_training(self, model: Any) -> Any:
        self._end(model)
        return model

    def _end(self, model: Any, error: BaseException | None = None) -> None:
        training, self._training = self._training, None
        if training is not None:
            training.end(model, error)


def _start(booster: Any, params: Any, dtrain: Any, evals: Any, rounds: Any) -> Any:
    import xgboost

    if not isinstance(booster, xgboost.Booster):  # xgboost.cv: not captured
        return None
    if params is None:
        params = _configured(booster)
    used: dict[str, Any] = {}
    if dtrain is not None:
        used.update(boosting.data_refs(dtrain, "", boosting.TRAIN_HASH_LIMIT, _fallback))
    for data, name in evals or ():
        if data is not dtrain:
            used.update(boosting.data_refs(data, f"{name}_", boosting.TRAIN_HASH_LIMIT, _fallback))
    first = booster.num_boosted_rounds()  # training continued from xgb_model: not 0
    total = int(rounds) if isinstance(rounds, int) else None
    params = boosting.parameters(params, total)
    return boosting.Training("xgboost.train", params, used, total, first)


def _configured(booster: Any) -> dict[str, Any]:
    """The Booster's training parameters from its configuration (every ``*_param``
    section of ``save_config()``), when the caller did not give ``params``."""
    out: dict[str, Any] = {}
    todo = [json.loads(booster.save_config())]
    while todo:
        node = todo.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                if key.endswith("_param") and all(isinstance(v, str) for v in value.values()):
                    out.update(value)
                else:
                    todo.append(value)
    return dict(sorted(out.items()))


def _fallback(dm: Any, role: str, limit: int) -> dict[str, Any]:
    """A DMatrix not built under autolog: its CSR copy (``get_data()``) and labels."""
    what = f"DMatrix {role}"
    try:
        if role == "X":
            rows, cols = dm.num_row(), dm.num_col()
            if rows * cols * 4 > limit:
                reason = f"a {rows}x{cols} DMatrix built before cl.autolog(): too large to copy"
                return boosting.missing(dm, reason, what)
            ref = boosting.named(dm.get_data(), limit, what, later=False)  # a dict, amended
            ref["source"] = "DMatrix.get_data()"
            return ref
        label = dm.get_label()
        if not getattr(label, "size", 0):
            return {}
        ref = boosting.named(label, limit, what, later=False)
        ref["source"] = "DMatrix.get_label()"
        return ref
    except Exception as exc:
        return boosting.missing(dm, f"{type(exc).__name__}: {exc}"[:300], what)


def _inplace_input(data: Any) -> Any:
    """``inplace_predict``'s data: an array or a frame (no DMatrix), named by content as
    a scikit-learn call names its ``X``."""
    return boosting.calls._data(data, boosting.INFER_HASH_LIMIT, "Booster.inplace_predict X")


def _predict_input(dm: Any) -> dict[str, Any]:
    refs = boosting.data_refs(dm, "", boosting.INFER_HASH_LIMIT, _fallback)
    return refs.get("X") or boosting.missing(dm, "no data", "Booster.predict X")
