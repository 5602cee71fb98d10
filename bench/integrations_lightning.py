"""What ProvmlLogger costs a PyTorch Lightning training: the same fit with and without it.

A small MLP (32 → 256 → 256 → 1, 74,000 parameters) trained on 6,400 random rows in
batches of 64 (100 steps an epoch, 2 epochs, CPU), metrics logged at every step
(``log_every_n_steps=1``, the logger's worst case) and a checkpoint saved each epoch;
``--repeats`` fits with ``logger=ProvmlLogger()`` and with ``logger=False``,
interleaved (on, off, on, off …) so that the machine's drift touches both alike; the
figures are medians. Two figures per run: the time of a training step (between the
first and the last batch of each epoch, where the per-step cost is: the logged metrics)
and the time of the whole ``fit`` (which adds, once per fit, the training task, the
hashing of the data and of each checkpoint). Capture goes to disk (``mode="disk"`` in a
temporary directory). The target (issue 13): at most 1 % of a training step.

    python bench/integrations_lightning.py [--repeats R] [--json PATH]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python
bench/integrations_lightning.py`` on a shared one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import capture_lib as cl

STEPS, EPOCHS, BATCH = 100, 2, 64


def _setup() -> tuple[Any, Any, Any]:
    import lightning.pytorch as pl
    import torch

    class MLP(pl.LightningModule):
        def __init__(self, lr: float = 0.01) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(32, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                torch.nn.ReLU(), torch.nn.Linear(256, 1),
            )  # fmt: skip

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.steps: list[float] = []

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            if args[-1] == 1:  # from the end of the first step: steady state
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if args[-1] == STEPS - 1:
                self.steps.append((time.perf_counter() - self.t0) / (STEPS - 2))

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(STEPS * BATCH, 32, generator=g), torch.randn(STEPS * BATCH, 1, generator=g)
    )
    return MLP, StepTimer, torch.utils.data.DataLoader(data, batch_size=BATCH)


def measure(repeats: int) -> dict[bool, dict[str, list[float]]]:
    import lightning.pytorch as pl

    from capture_lib.integrations.lightning import ProvmlLogger

    model_class, timer_class, loader = _setup()
    times: dict[bool, dict[str, list[float]]] = {
        on: {"step": [], "fit": []} for on in (True, False)
    }
    for i in range(repeats * 2 + 2):
        on = i % 2 == 0
        with tempfile.TemporaryDirectory() as root:
            timer = timer_class()
            trainer = pl.Trainer(
                max_epochs=EPOCHS, log_every_n_steps=1, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=root, callbacks=[timer],
                logger=ProvmlLogger() if on else False,
            )  # fmt: skip
            t = time.perf_counter()
            trainer.fit(model_class(), loader)
            fit = time.perf_counter() - t
            cl.flush()
        if i >= 2:  # the first pair warms caches and imports
            times[on]["step"].append(statistics.median(timer.steps))
            times[on]["fit"].append(fit)
    return times


def hook_cost(calls: int = 20_000) -> float:
    """Seconds per ``log_metrics`` call (two metrics, as each step logs here), inside a
    running training task's epoch: what the logger adds to a step, alone, without the
    noise of a whole step (the machine's drift is larger than 1 % of it)."""
    from capture_lib.integrations.lightning import ProvmlLogger

    logger = ProvmlLogger()
    run = logger._run
    with cl.workflow("bench-hook") as wf, wf.task("fit", stage="training") as task:
        run.task = task
        run.epoch(0)
        t = time.perf_counter()
        for step in range(calls):
            logger.log_metrics({"train_loss_step": 0.5, "epoch": 0}, step)
        cost = (time.perf_counter() - t) / calls
        run.end_epoch()
        run.task = None
    cl.flush()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        times = measure(args.repeats)
        hook = hook_cost()
        lost = cl.stats()["lost"]
        cl.shutdown()
    results = []
    print(f"{'measure':28} {'without ms':>11} {'with ms':>9} {'overhead':>9}")
    for what in ("step", "fit"):
        with_, without = statistics.median(times[True][what]), statistics.median(times[False][what])
        results.append({"measure": what, "without_ms": without * 1e3, "with_ms": with_ * 1e3,
                        "overhead_pct": (with_ - without) / without * 100,
                        "repeats": args.repeats})  # fmt: skip
        label = "training step (steady)" if what == "step" else f"fit ({EPOCHS}x{STEPS} steps)"
        print(f"{label:28} {without * 1e3:11.3f} {with_ * 1e3:9.3f} "
              f"{(with_ - without) / without * 100:8.2f}%")  # fmt: skip
    step = statistics.median(times[False]["step"])
    print(f"log_metrics per logged step: {hook * 1e6:.1f} µs = {hook / step * 100:.3f} % of a step")
    results.append({"measure": "log_metrics", "us": hook * 1e6, "pct_of_step": hook / step * 100})
    print(f"lost: {lost or 'nothing'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
