"""What ProvmlCallback costs a Keras 3 training (torch backend): the same fit with and without it.

A small MLP (32 → 256 → 256 → 1, 74,000 parameters) trained on 6,400 random rows in
batches of 64 (100 steps an epoch, 2 epochs, CPU); ``--repeats`` fits with
``callbacks=[ProvmlCallback((x, y))]``, with ``ProvmlCallback((x, y), log_batches=True)``
(every batch's logs recorded: its worst case) and without, interleaved so that the
machine's drift touches all alike; the figures are medians. Two figures per run: the time
of a training step (between the first and the last batch of each epoch) and of the whole
``fit`` (which adds, once per fit, the training task, the hashing of the data and of the
weights). Capture goes to disk (``mode="disk"`` in a temporary directory). The target
(issue 13): at most 1 % of a training step.

    KERAS_BACKEND=torch python bench/integrations_keras.py [--repeats R] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock …`` on a shared one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KERAS_BACKEND", "torch")

import capture_lib as cl

STEPS, EPOCHS, BATCH = 100, 2, 64
VARIANTS = ("without", "callback", "callback, every batch")


def measure(repeats: int) -> dict[str, dict[str, list[float]]]:
    import keras
    import numpy as np

    from capture_lib.integrations.keras import ProvmlCallback

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[float] = []

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch == 1:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == STEPS - 1:
                self.steps.append((time.perf_counter() - self.t0) / (STEPS - 2))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, 32)).astype("float32")
    y = rng.normal(size=(STEPS * BATCH, 1)).astype("float32")
    times: dict[str, dict[str, list[float]]] = {v: {"step": [], "fit": []} for v in VARIANTS}
    for i in range(repeats * len(VARIANTS) + len(VARIANTS)):
        variant = VARIANTS[i % len(VARIANTS)]
        model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, activation="relu"),
                                  keras.layers.Dense(256, activation="relu"),
                                  keras.layers.Dense(1)])  # fmt: skip
        model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        timer = StepTimer()
        callbacks: list[Any] = [timer]
        if variant != "without":
            callbacks.append(ProvmlCallback((x, y), log_batches=variant != "callback"))
        t = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=callbacks)
        fit = time.perf_counter() - t
        cl.flush()
        if i >= len(VARIANTS):  # the first round warms caches and imports
            times[variant]["step"].append(statistics.median(timer.steps))
            times[variant]["fit"].append(fit)
    return times


def hook_cost(calls: int = 20_000) -> dict[str, float]:
    """Seconds per ``on_train_batch_end`` (the callback's only per-step hook) inside a
    running epoch, without and with ``log_batches`` (two logs): what the callback adds to
    a step, alone, without the noise of a whole step."""
    from capture_lib.integrations.keras import ProvmlCallback

    out = {}
    for log_batches in (False, True):
        callback = ProvmlCallback(log_batches=log_batches)
        with cl.workflow("bench-hook") as wf, wf.task("fit", stage="training") as task:
            callback.task = task
            callback._epoch(0)
            logs = {"loss": 0.5, "mae": 0.25}
            t = time.perf_counter()
            for batch in range(calls):
                callback.on_train_batch_end(batch % 900, logs)
            out["every batch" if log_batches else "callback"] = (time.perf_counter() - t) / calls
            callback._end_section()
            callback.task = None
        cl.flush()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        with cl.workflow("bench-keras"):
            times = measure(args.repeats)
        hooks = hook_cost()
        lost = cl.stats()["lost"]
        cl.shutdown()
    results = []
    print(f"{'variant':24} {'measure':8} {'without ms':>11} {'with ms':>9} {'overhead':>9}")
    for variant in VARIANTS[1:]:
        for what in ("step", "fit"):
            base = statistics.median(times["without"][what])
            with_ = statistics.median(times[variant][what])
            pct = (with_ - base) / base * 100
            results.append({"variant": variant, "measure": what, "without_ms": base * 1e3,
                            "with_ms": with_ * 1e3, "overhead_pct": pct,
                            "repeats": args.repeats})  # fmt: skip
            print(f"{variant:24} {what:8} {base * 1e3:11.3f} {with_ * 1e3:9.3f} {pct:8.2f}%")
    step = statistics.median(times["without"]["step"])
    for name, cost in hooks.items():
        print(f"on_train_batch_end ({name}): {cost * 1e6:.2f} µs = {cost / step * 100:.4f} % "
              "of a step")  # fmt: skip
        results.append({"measure": f"on_train_batch_end ({name})", "us": cost * 1e6,
                        "pct_of_step": cost / step * 100})  # fmt: skip
    print(f"lost: {lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
