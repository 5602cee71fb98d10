"""The deep-and-wide shape of issue [11] as provml wire batches, for bench/query_deep.py.

What HPC and ML pipelines look like, rather than bench/query_scenario.py's year of small
curation runs: every workflow run is one capture session that

* reads three raw sources, shared by 10, by 100 and by 1,000 runs (run ``i`` reads
  ``tier10[i // 10]``, ``tier100[i // 100]``, ``tier1000[i // 1000]``: up to 1,000 runs,
  ONE source every run reads);
* turns them into a dataset through a chain of file-to-file tasks, 10, 40 or 100 steps
  long (half, 35 % and 15 % of the runs), each step reading the previous step's file and
  writing the next (``@data: "file"``; the last one a ``@data: "dataset"`` with a
  version); one run in eight also reads the previous run's dataset at its first step
  (lineage across runs: a diamond below the shared sources);
* trains a model on it (hyperparameters, the feature code), evaluates it (accuracy, f1),
  and makes 100–300 predictions with it, as ``cl.inference`` records them.

The same ``seed`` gives the same batches byte for byte (one seeded ``random.Random``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from query_scenario import YEAR, YEAR_START, Model, Run, Scenario

from provml.core import ids

#: Bump when the shape of the generated data changes: a stored build is then not reused.
DEEP_VERSION = 1
#: (chain length, share of the runs)
CHAINS = ((10, 0.50), (40, 0.35), (100, 0.15))
TIERS = (10, 100, 1000)
STEPS = ("clean", "dedupe", "normalize", "regrid", "filter", "resample", "tokenize", "merge")


class DeepScenario(Scenario):
    """Batches of the deep-and-wide shape (module docstring); stops after ``workflows``
    runs or once ``stop()`` says so (bench/query_deep.py stops at a triple count)."""

    def __init__(self, workflows: int, seed: int, predictions: tuple[int, int] = (100, 300)):
        super().__init__(workflows, seed, "compact")
        self.predictions = predictions
        self.sources: dict[tuple[int, int], dict[str, Any]] = {}  # (tier, index) → raw ref
        #: shared sources by tier, and how many runs read each (for the parameters)
        self.tier_sources: dict[int, list[str]] = {t: [] for t in TIERS}
        self.readers: dict[str, int] = {}
        #: models and predictions by the length of the chain they come from
        self.by_depth: dict[int, dict[str, list[str]]] = {
            n: {"models": [], "predictions": [], "datasets": []} for n, _ in CHAINS
        }
        self._previous: dict[str, Any] | None = None
        self.stop = lambda: False

    def _source(self, tier: int, index: int) -> dict[str, Any]:
        key = (tier, index)
        if key not in self.sources:
            ref = self._raw(f"raw/shared-{tier}/source-{index:04d}.nc")
            self.sources[key] = ref
            iri = ids.content_iri(ref["sha256"])
            self.tier_sources[tier].append(iri)
            self.registry.raw_files.append(iri)
        ref = self.sources[key]
        iri = ids.content_iri(ref["sha256"])
        self.readers[iri] = self.readers.get(iri, 0) + 1
        return ref

    def batches(self) -> Iterator[dict[str, Any]]:
        step = YEAR / max(self.workflows, 1)
        for i in range(self.workflows):
            if self.stop():
                return
            yield self._batch(self.pipeline(i, YEAR_START + i * step))

    def pipeline(self, i: int, start: float) -> Run:
        name = f"pipeline-{i % 17:02d}"
        run = self._begin(name, start, "train", "credit-scoring")
        roll, length = self.rng.random(), CHAINS[-1][0]
        for n, share in CHAINS:
            if roll < share:
                length = n
                break
            roll -= share
        used: dict[str, Any] = {f"source_{t}": self._source(t, i // t) for t in TIERS}
        if self._previous is not None and self.rng.random() < 0.125:
            used["previous"] = self._previous
        current: dict[str, Any] = {}
        for k in range(length):
            step = "ingest" if k == 0 else STEPS[k % len(STEPS)]
            task = f"{step}-{k:03d}"
            if k > 0:
                used = {"in": current}
            n = run.start_task(task, params={"step": k, "strict": k % 3 == 0}, used=used)
            last = k == length - 1
            current = self._file(
                f"work/{run.session[:8]}/{k:03d}-{step}.nc", "dataset" if last else "file"
            )
            if last:
                current["version"] = f"r{i}"
            run.end_task(n, task, self.rng.uniform(5, 300), generated={"out": current})
        self._previous = current
        dataset = ids.content_iri(current["sha256"])
        self.registry.datasets.append(dataset)
        self.by_depth[length]["datasets"].append(dataset)
        code = self._feature_code("credit-scoring")
        params = self._hyperparameters("credit-scoring")
        n = run.start_task("train", "training", params, {"train": current, "feature_code": code})
        self.registry.trainings.append(run.iri(n))
        path = f"models/{run.session[:8]}/model.bin"
        ref: dict[str, Any] = {"@data": "model", "sha256": self.sha(path), "path": path}
        ref |= {"size": self.rng.randint(10**5, 10**9), "framework": "pytorch"}
        run.end_task(n, "train", 600.0, "training", generated={"model": ref})
        model = Model(ref, ids.content_iri(ref["sha256"]), run.t, "credit-scoring")
        self.registry.models.append(model.iri)
        self.by_depth[length]["models"].append(model.iri)
        self.registry.training_runs.append(run.iri(1))
        n = run.start_task("evaluate", "evaluation", None, {"model": ref, "test": current})
        for metric in ("accuracy", "f1"):
            run.metric(n, metric, self.rng.uniform(0.6, 0.99))
        run.end_task(n, "evaluate", 30.0, "evaluation")
        before = len(self.registry.predictions)
        self._predict(run, model, code, self.rng.randint(*self.predictions))
        self.by_depth[length]["predictions"].extend(self.registry.predictions[before:])
        return self._end(run)

    def parameters(self, rng: random.Random, limit: int = 200) -> dict[str, Any]:
        """Parameter pools for the benchmark: the registry's sample, the shared sources
        by tier (with their readers) and models, predictions and datasets by depth."""
        out: dict[str, Any] = self.registry.sample(rng, limit)
        out["tiers"] = {
            str(t): [{"iri": s, "readers": self.readers[s]} for s in sources]
            for t, sources in self.tier_sources.items()
        }
        out["depth"] = {
            str(n): {k: sorted(rng.sample(v, min(limit, len(v)))) for k, v in pools.items()}
            for n, pools in self.by_depth.items()
        }
        return out
