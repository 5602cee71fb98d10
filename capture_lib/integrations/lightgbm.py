"""LightGBM's native training (``lightgbm.train``) captured: a training callback, and autolog.

>>> import capture_lib as cl
>>> from capture_lib.integrations.lightgbm import ProvmlCallback
>>> booster = lightgbm.train(params, train_set, 50, valid_sets=[valid],
...                          callbacks=[ProvmlCallback()])   # doctest: +SKIP

or, with no change to the training code, ``cl.autolog()`` (registered as ``"lightgbm"``),
which then:

* adds a :class:`ProvmlCallback` to every ``lightgbm.train(…)`` call and starts its task
  before LightGBM constructs the Datasets (one the caller passed is used, not doubled);
  ``lightgbm.train`` and ``lightgbm.engine.train`` are patched: a
  ``from lightgbm import train`` done before ``cl.autolog()`` is not seen;
* keeps, on every ``Dataset`` built, weak references to the data, label and weight it was
  built from, so the training data is named by their content even after LightGBM frees
  its raw data (:mod:`capture_lib.integrations._boosting`);
* makes ``Booster.predict(data)`` an inference task that used the Booster and the data
  (by content), and ``Booster.save_model(path)`` a task ``save Booster`` linking the file
  to the model.

Nothing of LightGBM is imported by ``cl.autolog()`` or by this module: the patches are
put in place when ``lightgbm`` is imported (at once if it already is). The callback is a
plain callable (LightGBM's callback protocol), ordered after LightGBM's logging and
``record_evaluation`` and before ``early_stopping``, so it sees the round that stops.
The sklearn wrappers (``LGBMClassifier``, ``LGBMRegressor``) are captured by the
scikit-learn integration, not here (their internal ``train`` is not patched).

**When the task ends.** Under autolog: when ``lightgbm.train`` returns (or raises), with
the Booster it returned (so ``pickle.dump(booster, f)`` writes the model's node). A
callback passed by hand has no "training ended" event: its task ends at the last round,
naming the Booster as it is then (LightGBM sets ``best_score`` afterwards, so a pickle
written later is not that node; predictions still trace to it); after early stopping (or
an error) it ends when the callback is released (a callback passed inline: when
``train`` returns) or at exit, or by ``callback.end(booster)``.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from capture_lib.integrations import _boosting as boosting

FRAMEWORK = "lightgbm"
__all__ = ["FRAMEWORK", "ProvmlCallback", "disable", "enable", "enabled"]

_SOURCES = ("data", "label", "weight")


def _patch(patches: boosting.Patches, lgb: Any) -> None:
    train = boosting.train_patch(patches, _run)
    patches.replace(lgb, "train", train)
    patches.replace(lgb.engine, "train", train)
    dataset = boosting.remember_source(lgb.Dataset, _SOURCES, eager=False)
    patches.replace(lgb.Dataset, "__init__", dataset)
    patches.replace(lgb.Booster, "predict", boosting.predict_patch(patches, _predict_input))
    patches.replace(lgb.Booster, "save_model", boosting.save_patch(patches))


_integration = boosting.Integration(FRAMEWORK, _patch)
enabled, enable, disable = _integration.enabled, _integration.enable, _integration.disable


class _Open:
    """What an explicit callback leaves to end when it is released."""

    def __init__(self) -> None:
        self.training: boosting.Training | None = None
        self.model: Any = None  # a weak reference to the Booster

    def end(self, model: Any = None, error: BaseException | None = None) -> None:
        training, self.training = self.training, None
        if training is not None:
            if model is None and self.model is not None:
                model = self.model()
            training.end(model, error)


class ProvmlCallback:
    """A LightGBM callback recording the training as a task (see
    :mod:`capture_lib.integrations._boosting` and the module doc for when it ends).

    Hyperparameters: the ``params`` LightGBM gives callbacks (its own copy, aliases
    resolved); the training and validation Datasets are the Booster's. A callback is
    used for one training. Never raises into the training; never stops it.
    """

    #: LightGBM runs callbacks by this order: log_evaluation 10, record_evaluation 20,
    #: early_stopping 30
    order = 25
    before_iteration = False

    def __init__(self) -> None:
        self._open = _Open()
        self._started = False
        self._armed = False  # the autolog patch of lightgbm.train started the task
        weakref.finalize(self, self._open.end)

    def __call__(self, env: Any) -> None:
        try:
            if not self._started:
                self._started = True
                if self._armed or boosting.capturing():
                    self._open.training = self._open.training or _start_from(env)
            training = self._open.training
            if training is None:
                return
            training.round(env.iteration, boosting.round_metrics(
                (r[0], r[1], r[2]) for r in env.evaluation_result_list or ()))  # fmt: skip
            if self._open.model is None:
                self._open.model = weakref.ref(env.model)
            if not self._armed and env.iteration + 1 >= env.end_iteration:
                self._open.end(env.model)
        except Exception:
            boosting.failed("recording a round of lightgbm training")

    def end(self, booster: Any = None) -> None:
        """End the task now (after early stopping, without autolog), naming ``booster``."""
        self._open.end(booster)


def _start_from(env: Any) -> boosting.Training | None:
    """An explicit callback's task, from what LightGBM gives a callback."""
    booster = env.model
    if not hasattr(booster, "train_set"):  # lightgbm.cv: not captured
        return None
    used = _used(booster.train_set, zip(booster.valid_sets, booster.name_valid_sets, strict=False))
    total = env.end_iteration - env.begin_iteration
    params = boosting.parameters(env.params, total)
    return boosting.Training("lightgbm.train", params, used, total, env.begin_iteration)


def _used(train_set: Any, valid: Any) -> dict[str, Any]:
    used = boosting.data_refs(train_set, "", boosting.TRAIN_HASH_LIMIT, _fallback)
    for data, name in valid:
        if data is not train_set:
            used.update(boosting.data_refs(data, f"{name}_", boosting.TRAIN_HASH_LIMIT, _fallback))
    return used


def _run(original: Any, bound: inspect.BoundArguments) -> Any:
    """``lightgbm.train`` with a :class:`ProvmlCallback` (see module doc)."""
    try:
        args, cb = boosting.with_callback(bound, ProvmlCallback)
        valid_sets = args.get("valid_sets") or []
        names = args.get("valid_names") or [f"valid_{i}" for i in range(len(valid_sets))]
        rounds = args.get("num_boost_round")
        total = rounds if isinstance(rounds, int) else None
        init: Any = args.get("init_model")
        first = init.current_iteration() if hasattr(init, "current_iteration") else 0
        used = _used(args["train_set"], zip(valid_sets, names, strict=False))
        params = boosting.parameters(args.get("params"), total)
        cb._open.training = boosting.Training("lightgbm.train", params, used, total, first)
        cb._armed = True
    except Exception:
        boosting.failed("adding the provml callback to lightgbm.train")
        return original(*bound.args, **bound.kwargs)
    return boosting.call_quietly(original, bound, cb._open.end)


def _fallback(dataset: Any, role: str, limit: int) -> dict[str, Any]:
    """A Dataset not built under autolog: its raw data if LightGBM still holds it."""
    what = f"Dataset {role}"
    try:
        if role == "X":
            data = getattr(dataset, "data", None)
            if data is None:
                reason = ("LightGBM freed the raw data (free_raw_data=True) of a Dataset "
                          "built before cl.autolog()")  # fmt: skip
                return boosting.missing(dataset, reason, what)
            return boosting.named(data, limit, what)
        label = dataset.get_label()
        return {} if label is None else boosting.named(label, limit, what)
    except Exception as exc:
        return boosting.missing(dataset, f"{type(exc).__name__}: {exc}"[:300], what)


def _predict_input(data: Any) -> dict[str, Any]:
    return boosting.named(data, boosting.INFER_HASH_LIMIT, "Booster.predict X")
