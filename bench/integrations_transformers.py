"""What ProvmlCallback costs a Hugging Face training: the same Trainer with and without it.

A tiny BERT for sequence classification built from a configuration (2 layers, hidden size
64, 4 heads, vocabulary 1,000: about 0.2 M parameters), 16 sequences of 32 token ids a
step, trained ``--steps`` steps on CPU (one torch thread) by ``Trainer.train()``, with
the callback and without, interleaved (on, off, on, off …) so that the machine's drift
touches both alike; the figures are medians of ``--repeats`` pairs. Two figures:

* the difference of the whole ``train()`` divided by the steps (``cost/step``): what a
  user sees, noisy on a shared machine;
* the time spent inside the callback's hooks, summed over the training and divided by
  the steps (``in hooks/step``): the callback's own cost, measured directly.

Both include what happens once per training (the arguments; the datasets named by
content: 1,024 items of the training set, the evaluation set whole) as well as each log.
Two configurations:

* ``log every 10 steps`` (``logging_steps=10``; the Trainer's default is 500, so this is
  50 times the default rate of sections and metrics), nothing saved;
* ``+ checkpoint every 25 steps``: also a checkpoint directory (about 2.4 MB: weights,
  optimizer, scheduler) saved and hashed every 25 steps.

Capture goes to disk (``mode="disk"`` in a temporary directory), as on a compute node,
and is flushed after each timed run, outside the timing. The target (issue 13): at most
1 % of a training step.

    python bench/integrations_transformers.py [--repeats R] [--steps N]

Run it alone on the machine (``flock /tmp/provml-cpu.lock python
bench/integrations_transformers.py`` on a shared one).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import capture_lib as cl

_HOOKS = ("on_train_begin", "on_log", "on_evaluate", "on_save", "on_train_end")


def _timed_callback(spent: list[float]) -> Any:
    """A ProvmlCallback whose hooks add the time spent in them to ``spent``."""
    from capture_lib.integrations.transformers import ProvmlCallback

    callback = ProvmlCallback()
    for name in _HOOKS:
        hook = getattr(callback, name)

        def timed(*args: Any, _hook: Any = hook, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - t)

        setattr(callback, name, timed)
    return callback


def _run(out: str, steps: int, save_steps: int | None, callback: bool, spent: list[float]) -> float:
    import torch
    import transformers

    class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
        def __init__(self, n: int, seed: int) -> None:
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randint(0, 1000, (n, 32), generator=g)
            self.y = torch.randint(0, 2, (n,), generator=g)

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": self.x[i], "labels": self.y[i]}

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=64, num_labels=2,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=out, max_steps=steps, per_device_train_batch_size=16, logging_steps=10,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        eval_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=Tokens(16 * steps, 1),
        eval_dataset=Tokens(64, 2), callbacks=[_timed_callback(spent)] if callback else None,
    )  # fmt: skip
    trainer.remove_callback(transformers.PrinterCallback)  # no printing of each log
    t = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t


def measure(steps: int, repeats: int) -> list[dict[str, Any]]:
    results = []
    for name, save_steps in (("log every 10 steps", None),
                             ("+ checkpoint every 25 steps", 25)):  # fmt: skip
        times: dict[bool, list[float]] = {True: [], False: []}
        inside: list[float] = []
        for i in range(repeats * 2 + 2):
            on = i % 2 == 0
            spent: list[float] = []
            with tempfile.TemporaryDirectory() as out:
                elapsed = _run(out, steps, save_steps, on, spent)
            cl.flush()
            if i >= 2:  # the first pair warms caches and imports
                times[on].append(elapsed)
                if on:
                    inside.append(sum(spent))
        with_, without = statistics.median(times[True]), statistics.median(times[False])
        results.append({
            "config": name, "steps": steps, "step_ms": without / steps * 1e3,
            "cost_per_step_ms": (with_ - without) / steps * 1e3,
            "overhead_pct": (with_ - without) / without * 100, "repeats": repeats,
            "inside_per_step_ms": statistics.median(inside) / steps * 1e3,
        })  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # two threads on a loaded 2-core machine spin: noise, not work
    logging.getLogger("transformers").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as logs:
        cl.init(mode="disk", path=logs)
        with cl.workflow("bench-integrations-transformers"):
            results = measure(args.steps, args.repeats)
        lost = cl.stats()["lost"]
        cl.shutdown()
    print(f"{'configuration':30} {'step ms':>8} {'cost/step ms':>13} {'overhead':>9} "
          f"{'in hooks/step ms':>17} {'share':>7}")  # fmt: skip
    for r in results:
        share = r["inside_per_step_ms"] / r["step_ms"] * 100
        inside = r["inside_per_step_ms"]
        print(f"{r['config']:30} {r['step_ms']:8.2f} {r['cost_per_step_ms']:13.3f} "
              f"{r['overhead_pct']:8.2f}% {inside:17.4f} {share:6.3f}%")  # fmt: skip
    print(f"lost: {lost or 'nothing'}")


if __name__ == "__main__":
    main()
