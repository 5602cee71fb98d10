"""A year of synthetic ML workflow runs as provml wire batches, for bench/query.py.

:class:`Scenario` yields one wire batch (a JSON object, compact records by default, as
``capture_lib`` sends them) per workflow run, in time order, and keeps a
:class:`Registry` of the identifiers that lineage questions take as parameters (models,
predictions, raw files, datasets, runs, time windows …). The same ``seed`` and
``workflows`` give the same batches, byte for byte: every random choice, content hash,
batch id and session id comes from one seeded ``random.Random``.

Three kinds of run, each one capture session (one process):

* ``<domain>-curate``: reads raw files (and the previous version of its dataset) and
  writes a new dataset version, split into train / validation / test, through 2 to 20
  curation steps. Versions of one dataset chain across the year, so lineage gets deep.
* ``<domain>-train``: a small sweep of 1–4 training tasks (4–8 hyperparameters with
  ``seed``, 10–50 epoch sections with loss and accuracy), some fine-tuning an earlier
  model, each evaluated on the test split, and a few smoke-test predictions.
* ``<domain>-score``: batch inference, 40–200 tasks that each use a model, the feature
  code and an inline input and generate an inline prediction.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from unittest import mock

from provml.core import ids, wire

#: Bump when the shape of the generated data changes: a stored build is then not reused.
GENERATOR_VERSION = 3

YEAR_START = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
YEAR = 365 * 86400.0

DOMAINS = (
    "credit-scoring",
    "churn-prediction",
    "fraud-detection",
    "demand-forecast",
    "image-classifier",
    "sentiment-analysis",
    "speech-keywords",
    "ranking",
    "anomaly-detection",
    "document-ocr",
    "weather-nowcast",
    "ticket-routing",
    "price-elasticity",
    "defect-detection",
    "toxicity-filter",
    "energy-load",
    "retina-screening",
    "claims-triage",
    "route-eta",
    "search-relevance",
)
FAMILY_SUFFIXES = ("events", "labels", "snapshots")
CURATION_STEPS = (
    "clean",
    "dedupe",
    "normalize",
    "impute",
    "filter-outliers",
    "anonymize",
    "enrich",
    "tokenize",
    "resample",
    "join-reference",
    "validate-schema",
    "featurize",
    "balance",
)
LICENSES = (
    ("CC-BY-4.0", 40),
    ("MIT", 25),
    ("CC-BY-NC-4.0", 20),
    ("CC-BY-SA-4.0", 10),
    ("CC-BY-NC-SA-4.0", 5),
)
NON_COMMERCIAL = frozenset({"CC-BY-NC-4.0", "CC-BY-NC-SA-4.0"})
FRAMEWORKS = (
    ("pytorch", "2.3.1"),
    ("sklearn", "1.5.0"),
    ("xgboost", "2.0.3"),
    ("lightgbm", "4.3.0"),
    ("tensorflow", "2.16.1"),
)
USERS = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
)
PUBLIC_DATASETS = (
    ("sst2", "https://huggingface.co/datasets/stanfordnlp/sst2", "CC-BY-4.0"),
    ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar.html", "MIT"),
    ("imdb-reviews", "https://ai.stanford.edu/~amaas/data/sentiment/", "CC-BY-NC-4.0"),
    ("adult-census", "https://archive.ics.uci.edu/dataset/2/adult", "CC-BY-4.0"),
    ("speech-commands", "https://www.tensorflow.org/datasets/catalog/speech_commands", "CC-BY-4.0"),
    ("wiki-toxic", "https://huggingface.co/datasets/OxAISH-AL-LLM/wiki_toxic", "CC-BY-SA-4.0"),
)
FOUNDATION_MODELS = (
    ("resnet50-imagenet", "pytorch", "2.3.1"),
    ("bert-base-uncased", "pytorch", "2.3.1"),
    ("wav2vec2-base", "pytorch", "2.3.1"),
)
HYPERPARAMETERS = (
    "lr",
    "batch_size",
    "optimizer",
    "weight_decay",
    "dropout",
    "hidden_layers",
    "warmup_steps",
    "max_depth",
    "label_smoothing",
)
SPLITS = ("train", "validation", "test")


@dataclass
class Registry:
    """Identifiers the generated graph contains, for choosing question parameters."""

    models: list[str] = field(default_factory=list)
    finetuned_models: list[str] = field(default_factory=list)
    served_models: list[str] = field(default_factory=list)  # models that made predictions
    base_models: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    raw_files: list[str] = field(default_factory=list)
    reference_files: list[str] = field(default_factory=list)  # raw files used very widely
    datasets: list[str] = field(default_factory=list)  # curated and public dataset versions
    deep_datasets: list[str] = field(default_factory=list)  # ≥ 5 curation steps in their run
    noncommercial_datasets: list[str] = field(default_factory=list)
    public_datasets: list[str] = field(default_factory=list)
    code_files: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # workflow executions
    training_runs: list[str] = field(default_factory=list)  # workflow executions
    trainings: list[str] = field(default_factory=list)  # training task executions
    inferences: list[str] = field(default_factory=list)
    workflow_names: list[str] = field(default_factory=list)
    task_names: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    git_commits: list[str] = field(default_factory=list)
    packages_sha256: list[str] = field(default_factory=list)
    dataset_versions: list[str] = field(default_factory=list)
    dataset_sources: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=lambda: [name for name, _ in LICENSES])
    frameworks: list[str] = field(default_factory=lambda: [name for name, _ in FRAMEWORKS])
    metric_names: list[str] = field(default_factory=lambda: ["loss", "accuracy", "f1", "auc"])
    hyperparameter_names: list[str] = field(default_factory=lambda: ["seed", "lr", "dropout"])
    splits: list[str] = field(default_factory=lambda: list(SPLITS))

    def sample(self, rng: random.Random, limit: int) -> dict[str, list[str]]:
        """Each list cut to at most ``limit`` entries (a seeded sample), for the metadata."""
        out = {}
        for name, values in vars(self).items():
            unique = sorted(set(values))
            out[name] = unique if len(unique) <= limit else sorted(rng.sample(unique, limit))
        return out


@dataclass
class Counts:
    workflows: int = 0
    tasks: int = 0
    sections: int = 0
    metrics: int = 0
    records: int = 0
    batches: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class Dataset:
    ref: dict[str, Any]  # the data reference, as a capture would send it
    iri: str
    time: float


@dataclass
class Model:
    ref: dict[str, Any]
    iri: str
    time: float
    domain: str


class Run:
    """One workflow run = one capture session: numbers records and keeps its clock."""

    def __init__(self, scenario: Scenario, name: str, start: float, user: str) -> None:
        self.scenario, self.name, self.t = scenario, name, start
        self.session = scenario.session_id(start)
        self.n = 0
        self.records: list[dict[str, Any]] = []
        self.tasks = self.sections = self.metrics = 0

    def next_n(self) -> int:
        self.n += 1
        return self.n

    def iri(self, n: int) -> str:
        return ids.execution_iri(self.session, n)

    def tick(self, seconds: float) -> float:
        self.t += seconds
        return round(self.t, 3)

    def start_task(
        self,
        name: str,
        stage: str | None = None,
        params: dict[str, Any] | None = None,
        used: dict[str, Any] | None = None,
    ) -> int:
        n = self.next_n()
        self.tasks += 1
        rec = {"kind": "task_start", "n": n, "parent": 1, "plan": [self.name, name]}
        rec |= {"time": self.tick(0.5), "stage": stage, "params": params, "used": used}
        self.records.append(rec)
        return n

    def end_task(
        self,
        n: int,
        name: str,
        seconds: float,
        stage: str | None = None,
        generated: dict[str, Any] | None = None,
        status: str = "finished",
        error: str | None = None,
    ) -> None:
        rec = {"kind": "task_end", "n": n, "plan": [self.name, name], "time": self.tick(seconds)}
        rec |= {"stage": stage, "status": status, "error": error, "generated": generated}
        self.records.append(rec)

    def metric(self, parent: int, name: str, value: float, step: int | None = None) -> None:
        self.metrics += 1
        rec = {"kind": "metric", "n": self.next_n(), "parent": parent, "name": name}
        rec |= {"value": round(value, 5), "time": self.tick(0.01), "step": step}
        self.records.append(rec)

    def section(self, task: int, task_name: str, index: int, seconds: float) -> int:
        n = self.next_n()
        self.sections += 1
        plan = [self.name, task_name, "epoch"]
        self.records.append(
            {
                "kind": "section_start",
                "n": n,
                "parent": task,
                "plan": plan,
                "time": self.tick(0.01),
                "index": index,
            }
        )
        self._pending_section = (n, plan, seconds)
        return n

    def end_section(self) -> None:
        n, plan, seconds = self._pending_section
        self.records.append(
            {"kind": "section_end", "n": n, "plan": plan, "time": self.tick(seconds)}
        )


class Scenario:
    """Generates the batches of ``workflows`` runs; see the module docstring."""

    def __init__(self, workflows: int, seed: int, wire_form: str = "compact") -> None:
        self.workflows, self.seed, self.wire_form = workflows, seed, wire_form
        self.rng = random.Random(seed)
        self.registry = Registry()
        self.counts = Counts()
        self.code_type = "code" if "code" in wire.DATA_TYPES else "file"
        self._hashes = 0
        self.datasets: dict[str, list[Dataset]] = {}  # family → versions, oldest first
        self.models: dict[str, list[Model]] = {}  # domain → models, oldest first
        self.code: dict[str, dict[str, Any]] = {}  # domain → current feature code
        self.raw: dict[str, list[dict[str, Any]]] = {}  # family → raw files
        self.commits: dict[str, str] = {}  # domain → current git commit
        self._splits: dict[str, dict[str, Any]] = {}  # train split IRI → its three splits
        self.configs: dict[str, list[dict[str, Any]]] = {}  # domain → standard settings
        self.envs = [self._packages(i) for i in range(12)]
        self.hosts = [f"gpu-{i:02d}.hpc.example.org" for i in range(24)] + [
            f"cpu-{i:02d}.hpc.example.org" for i in range(40)
        ]
        self.families = {
            d: [f"{d}-{s}" for s in FAMILY_SUFFIXES[: 1 + i % 3]] for i, d in enumerate(DOMAINS)
        }
        self.license = {f: self._weighted(LICENSES) for fs in self.families.values() for f in fs}
        self.references = [
            self._raw(f"raw/reference/{name}.csv")
            for name in ("zipcodes", "holidays", "currency-rates", "country-codes", "stopwords")
        ]
        self.registry.reference_files = [ids.content_iri(r["sha256"]) for r in self.references]
        self.public = [self._public(*p) for p in PUBLIC_DATASETS]
        self.foundation = [self._foundation(*m) for m in FOUNDATION_MODELS]

    # ---- deterministic content ------------------------------------------------------
    def sha(self, label: str) -> str:
        self._hashes += 1
        return hashlib.sha256(f"{self.seed}/{self._hashes}/{label}".encode()).hexdigest()

    def session_id(self, start: float) -> str:
        """A session id from :func:`provml.core.ids.new_session_id` at the run's start time,
        its random bits drawn from the seeded generator so a rebuild gives the same ids."""
        with mock.patch.object(os, "urandom", self.rng.randbytes):
            return ids.new_session_id(int(start * 1000))

    def _weighted(self, options: tuple[tuple[str, int], ...]) -> str:
        return self.rng.choices([o for o, _ in options], [w for _, w in options])[0]

    def _packages(self, i: int) -> dict[str, Any]:
        names = (
            "numpy",
            "pandas",
            "scipy",
            "scikit-learn",
            "torch",
            "xgboost",
            "pyarrow",
            "lightgbm",
            "transformers",
            "tokenizers",
            "provml",
            "requests",
            "pydantic",
        )
        text = "\n".join(
            f"{name}=={1 + (i + k) % 3}.{(i * 7 + k) % 20}.{k % 5}" for k, name in enumerate(names)
        )
        return {"packages": text, "packages_sha256": hashlib.sha256(text.encode()).hexdigest()}

    def _raw(self, path: str) -> dict[str, Any]:
        ref: dict[str, Any] = {"@data": "file", "sha256": self.sha(path), "path": path}
        ref["size"] = self.rng.randint(10_000, 5_000_000_000)
        self.registry.raw_files.append(ids.content_iri(ref["sha256"]))
        return ref

    def _public(self, name: str, source: str, license: str) -> Dataset:
        ref: dict[str, Any] = {"@data": "dataset", "sha256": self.sha(name)}
        ref["path"] = f"/datasets/{name}/1.0"
        ref |= {"size": self.rng.randint(10**7, 10**10), "version": "1.0", "split": "train"}
        ref |= {"source": source, "license": license}
        iri = ids.content_iri(ref["sha256"])
        reg = self.registry
        reg.public_datasets.append(iri)
        reg.datasets.append(iri)
        reg.dataset_sources.append(source)
        if license in NON_COMMERCIAL:
            reg.noncommercial_datasets.append(iri)
        return Dataset(ref, iri, YEAR_START)

    def _foundation(self, name: str, framework: str, version: str) -> Model:
        ref: dict[str, Any] = {"@data": "model", "sha256": self.sha(name)}
        ref["path"] = f"/models/hub/{name}"
        ref |= {"size": self.rng.randint(10**8, 10**9), "framework": framework}
        ref |= {"framework_version": version}
        iri = ids.content_iri(ref["sha256"])
        self.registry.models.append(iri)
        return Model(ref, iri, YEAR_START, "foundation")

    # ---- runs -----------------------------------------------------------------------
    def batches(self) -> Iterator[dict[str, Any]]:
        """One wire batch per workflow run, in time order."""
        starts = sorted(self.rng.uniform(0, YEAR) for _ in range(self.workflows))
        for i, offset in enumerate(starts):
            domain = DOMAINS[self.rng.randrange(len(DOMAINS))]
            have_data = any(self.datasets.get(f) for f in self.families[domain])
            roll = self.rng.random()
            if i < len(DOMAINS) or roll < 0.22 or (not have_data and roll < 0.5):
                domain = DOMAINS[i] if i < len(DOMAINS) else domain
                run = self.curation(domain, YEAR_START + offset)
            elif roll < 0.62 or not self.models.get(domain):
                run = self.training(domain, YEAR_START + offset)
            else:
                run = self.scoring(domain, YEAR_START + offset)
            yield self._batch(run)

    def _begin(self, name: str, start: float, kind: str, domain: str) -> Run:
        user = self.rng.choice(USERS)
        run = Run(self, name, start, user)
        if self.rng.random() < 0.15 or domain not in self.commits:
            self.commits[domain] = self.sha(f"commit/{domain}")[:40]
        host = self.rng.choice(self.hosts[:24] if kind == "train" else self.hosts)
        env: dict[str, Any] = {
            "hostname": host,
            "pid": self.rng.randint(1000, 4_000_000),
            "python": "3.11.9",
            "platform": "Linux-5.14.0-427.el9.x86_64-x86_64-with-glibc2.34",
            "os": "Linux",
            "cpu_count": 64,
            "argv": f"python -m {domain.replace('-', '_')}.{kind} --config configs/{kind}.yaml",
            "executable": "/opt/conda/envs/ml/bin/python",
            "git_commit": self.commits[domain],
            "git_branch": "main",
            "git_dirty": self.rng.random() < 0.1,
            "git_remote": f"https://git.example.org/ml/{domain}.git",
            "batch_system": "slurm",
            "job_id": str(self.rng.randint(10**6, 10**7)),
            "cluster": "hpc1",
        }
        env |= self.envs[self.rng.randrange(len(self.envs))]
        if kind == "train":
            env["gpus"] = "NVIDIA A100-SXM4-40GB, 40960 MiB, 550.54.15"
        params = {"owner": f"team-{domain.split('-')[0]}", "config": f"configs/{kind}.yaml"}
        run.records.append(
            {
                "kind": "workflow_start",
                "n": run.next_n(),
                "name": name,
                "time": run.tick(0),
                "params": params,
                "env": env,
                "user": user,
            }
        )
        reg = self.registry
        reg.runs.append(run.iri(1))
        reg.workflow_names.append(name)
        reg.users.append(user)
        reg.hostnames.append(host)
        reg.git_commits.append(env["git_commit"])
        reg.packages_sha256.append(env["packages_sha256"])
        return run

    def _end(self, run: Run) -> Run:
        run.records.append(
            {
                "kind": "workflow_end",
                "n": 1,
                "name": run.name,
                "time": run.tick(1.0),
                "status": "finished",
            }
        )
        return run

    def curation(self, domain: str, start: float) -> Run:
        run = self._begin(f"{domain}-curate", start, "curate", domain)
        family = self.rng.choice(self.families[domain])
        versions = self.datasets.setdefault(family, [])
        raw = self.raw.setdefault(family, [])
        new = [
            self._raw(f"raw/{family}/part-{len(raw) + k:05d}.parquet")
            for k in range(self.rng.randint(1, 4))
        ]
        raw.extend(new)
        used: dict[str, Any] = {f"raw_{k}": r for k, r in enumerate(new)}
        if len(raw) > len(new):  # an older partition, re-read
            used["raw_backfill"] = self.rng.choice(raw[: -len(new)])
        if versions and self.rng.random() < 0.8:
            used["previous"] = versions[-1].ref
        steps = self.rng.randint(5, 20) if self.rng.random() < 0.3 else self.rng.randint(2, 4)
        n = run.start_task("ingest", params={"format": "parquet", "dedupe": True}, used=used)
        current = self._file(f"work/{family}/{run.session[:8]}/ingest.parquet")
        run.metric(n, "rows_out", float(self.rng.randint(10**4, 10**8)))
        run.end_task(n, "ingest", self.rng.uniform(30, 900), generated={"out": current})
        for step in self.rng.sample(CURATION_STEPS, min(steps - 2, len(CURATION_STEPS))):
            used = {"in": current}
            if step == "join-reference":
                used["reference"] = self.rng.choice(self.references)
            n = run.start_task(step, params={"strict": self.rng.random() < 0.5}, used=used)
            current = self._file(f"work/{family}/{run.session[:8]}/{step}.parquet")
            run.end_task(n, step, self.rng.uniform(10, 600), generated={"out": current})
        version = f"v{len(versions) + 1}"
        n = run.start_task(
            "split", params={"ratios": [0.8, 0.1, 0.1], "seed": 7}, used={"in": current}
        )
        outs: dict[str, Any] = {}
        source = f"s3://lake/{family}/{version}/"
        for split in SPLITS:
            ref = self._file(f"datasets/{family}/{version}/{split}", kind="dataset")
            ref |= {"version": version, "split": split, "source": source}
            ref["license"] = self.license[family]
            outs[split] = ref
        run.end_task(n, "split", self.rng.uniform(10, 300), generated=outs)
        ds = Dataset(outs["train"], ids.content_iri(outs["train"]["sha256"]), run.t)
        versions.append(ds)
        self._splits[ds.iri] = outs
        reg = self.registry
        for ref in outs.values():
            iri = ids.content_iri(ref["sha256"])
            reg.datasets.append(iri)
            if steps >= 5:
                reg.deep_datasets.append(iri)
            if ref["license"] in NON_COMMERCIAL:
                reg.noncommercial_datasets.append(iri)
        reg.dataset_versions.append(version)
        reg.dataset_sources.append(source)
        return self._end(run)

    def _file(self, path: str, kind: str = "file") -> dict[str, Any]:
        return {
            "@data": kind,
            "sha256": self.sha(path),
            "path": path,
            "size": self.rng.randint(10**5, 10**10),
        }

    def _feature_code(self, domain: str) -> dict[str, Any]:
        if domain not in self.code or self.rng.random() < 0.05:
            path = f"src/{domain.replace('-', '_')}/features.py"
            ref: dict[str, Any] = {"@data": self.code_type, "sha256": self.sha(path), "path": path}
            ref["size"] = self.rng.randint(2_000, 60_000)
            self.code[domain] = ref
            self.registry.code_files.append(ids.content_iri(ref["sha256"]))
        return self.code[domain]

    def _training_data(self, domain: str) -> dict[str, dict[str, Any]]:
        families = [f for f in self.families[domain] if self.datasets.get(f)]
        if not families or self.rng.random() < 0.12:
            public = self.rng.choice(self.public)
            return {"train": public.ref}
        versions = self.datasets[self.rng.choice(families)]
        pick = versions[-1] if self.rng.random() < 0.8 else self.rng.choice(versions)
        splits = self._splits[pick.iri]
        return {
            "train": splits["train"],
            "validation": splits["validation"],
            "test": splits["test"],
        }

    def training(self, domain: str, start: float) -> Run:
        run = self._begin(f"{domain}-train", start, "train", domain)
        data = self._training_data(domain)
        code = self._feature_code(domain)
        framework, fw_version = self.rng.choice(FRAMEWORKS)
        reg = self.registry
        reg.training_runs.append(run.iri(1))
        made: list[Model] = []
        for j in range(self.rng.choice((1, 1, 2, 2, 3, 4))):
            params = self._hyperparameters(domain)
            epochs = params["epochs"]
            used: dict[str, Any] = {"train": data["train"], "feature_code": code}
            if "validation" in data:
                used["validation"] = data["validation"]
            base = self._base_model(domain)
            if base is not None:
                used["base_model"] = base.ref
            n = run.start_task("train", "training", params, used)
            reg.trainings.append(run.iri(n))
            loss, acc = self.rng.uniform(1.0, 3.0), self.rng.uniform(0.3, 0.6)
            for epoch in range(epochs):
                s = run.section(n, "train", epoch, self.rng.uniform(20, 600))
                loss *= self.rng.uniform(0.85, 0.99)
                acc += (0.99 - acc) * self.rng.uniform(0.02, 0.12)
                run.metric(s, "loss", loss, epoch)
                run.metric(s, "accuracy", acc, epoch)
                run.end_section()
            if self.rng.random() < 0.03:
                run.end_task(
                    n,
                    "train",
                    5.0,
                    "training",
                    status="failed",
                    error="RuntimeError: CUDA out of memory",
                )
                continue
            path = f"models/{domain}/{run.session[:8]}/model-{j}.bin"
            ref: dict[str, Any] = {
                "@data": "model",
                "sha256": self.sha(path),
                "path": path,
                "size": self.rng.randint(10**5, 10**9),
                "framework": framework,
                "framework_version": fw_version,
            }
            run.end_task(n, "train", 1.0, "training", generated={"model": ref})
            model = Model(ref, ids.content_iri(ref["sha256"]), run.t, domain)
            made.append(model)
            reg.models.append(model.iri)
            if base is not None:
                reg.finetuned_models.append(model.iri)
                reg.base_models.append(base.iri)
            n = run.start_task(
                "evaluate",
                "evaluation",
                None,
                {"model": ref, "test": data.get("test", data["train"])},
            )
            for name in ("accuracy", "f1", "auc"):
                run.metric(n, name, min(0.999, acc * self.rng.uniform(0.9, 1.02)))
            run.end_task(n, "evaluate", self.rng.uniform(5, 120), "evaluation")
        self.models.setdefault(domain, []).extend(made)
        if made:
            self._predict(
                run, max(made, key=lambda m: m.ref["size"]), code, self.rng.randint(5, 20)
            )
        return self._end(run)

    def _hyperparameters(self, domain: str) -> dict[str, Any]:
        """4–8 hyperparameters with ``seed`` and ``epochs``: half the time one of the
        domain's three standard configurations, so that runs with the same settings on
        different dataset versions exist."""
        configs = self.configs.setdefault(domain, [])
        if len(configs) < 3:
            configs.append(self._random_hyperparameters())
        if self.rng.random() < 0.5:
            return dict(self.rng.choice(configs))
        return self._random_hyperparameters()

    def _random_hyperparameters(self) -> dict[str, Any]:
        r = self.rng
        values: dict[str, Any] = {
            "lr": r.choice((1e-4, 3e-4, 1e-3, 3e-3, 1e-2)),
            "batch_size": r.choice((32, 64, 128, 256)),
            "optimizer": r.choice(("adam", "adamw", "sgd")),
            "weight_decay": r.choice((0.0, 1e-4, 1e-2)),
            "dropout": r.choice((0.0, 0.1, 0.2, 0.3)),
            "hidden_layers": r.choice(([256, 128], [512, 256, 128], [64])),
            "warmup_steps": r.choice((0, 500, 1000)),
            "max_depth": r.randint(3, 12),
            "label_smoothing": r.choice((0.0, 0.1)),
        }
        chosen = r.sample(HYPERPARAMETERS, r.randint(2, 6))
        settings = {"seed": r.randint(0, 2**31 - 1)} | {k: values[k] for k in chosen}
        return settings | {"epochs": r.randint(10, 50)}

    def _base_model(self, domain: str) -> Model | None:
        if self.rng.random() >= 0.2:
            return None
        own = self.models.get(domain) or []
        if own and self.rng.random() < 0.7:
            return own[-1 - min(len(own) - 1, int(self.rng.expovariate(0.5)))]
        return self.rng.choice(self.foundation)

    def scoring(self, domain: str, start: float) -> Run:
        run = self._begin(f"{domain}-score", start, "score", domain)
        models = self.models[domain]
        # recent models serve most traffic
        model = models[-1 - min(len(models) - 1, int(self.rng.expovariate(0.3)))]
        # some services compose two models: the second takes the first one's prediction
        second = self.rng.choice(models) if self.rng.random() < 0.1 else None
        code = self._feature_code(domain)
        self._predict(run, model, code, self.rng.randint(80, 240), second)
        return self._end(run)

    def _predict(
        self, run: Run, model: Model, code: dict[str, Any], count: int, second: Model | None = None
    ) -> None:
        """``count`` predictions as ``cl.inference`` records them: the model, the feature
        code, a digest of the input (its value for one in ten), the prediction inline."""
        reg = self.registry
        reg.served_models.append(model.iri)
        for _ in range(count):
            features = [round(self.rng.gauss(0, 1), 4) for _ in range(4)]
            x = {"id": self.sha("x")[:16], "x": features}
            stored = self.rng.random() < 0.1
            digest = {"@data": "value", "sha256": ids.value_sha256(x)}
            score = 1 / (1 + math.exp(-sum(features)))
            prediction = {"label": int(score > 0.5), "score": round(score, 4)}
            iri = self._inference(run, model, code, x if stored else digest, prediction)
            if second is not None:
                self._inference(run, second, code, {"@entity": iri}, round(score * 0.9, 4))

    def _inference(
        self, run: Run, model: Model, code: dict[str, Any], inputs: Any, outputs: Any
    ) -> str:
        served = {
            "@data": "model",
            "sha256": model.ref["sha256"],
            "path": f"/serving/{model.ref['sha256'][:12]}/model.bin",
            "framework": model.ref["framework"],
        }
        used = {"model": served, "input": inputs, "feature_code": code}
        n = run.start_task("predict", "inference", None, used)
        generated = {"prediction": outputs}
        run.end_task(n, "predict", self.rng.uniform(0.02, 2.0), "inference", generated=generated)
        iri = ids.generated_value_iri(run.iri(n), "prediction")
        self.registry.inferences.append(run.iri(n))
        self.registry.predictions.append(iri)
        return iri

    # ---- wire -----------------------------------------------------------------------
    def _batch(self, run: Run) -> dict[str, Any]:
        c = self.counts
        c.workflows += 1
        c.batches += 1
        c.tasks += run.tasks
        c.sections += run.sections
        c.metrics += run.metrics
        c.records += len(run.records)
        for rec in run.records:
            c.by_kind[rec["kind"]] = c.by_kind.get(rec["kind"], 0) + 1
        records: list[Any] = run.records
        if self.wire_form == "compact":
            records = [
                [rec.get(f) for f in wire.COMPACT_FIELDS[rec["kind"]]] for rec in run.records
            ]
        if self.rng.random() < 0.5:
            self.registry.task_names.extend(
                {rec["plan"][1] for rec in run.records if "plan" in rec}
            )
        batch_id = f"{self.rng.getrandbits(128):032x}"
        return {"provml": 1, "batch": batch_id, "session": run.session, "records": records}
