"""Latency of provml's named lineage questions on a large on-disk pyoxigraph store.

Builds (or reuses) a store of synthetic provenance, a year of ML workflow runs made by
``bench/query_scenario.py`` and sent through provml's own pipeline (wire batches →
``provml.core.wire.validate_batch`` → ``provml.core.resolve.resolve_batch`` →
``provml.core.mapping.batch_to_quads`` → ``Store.bulk_extend``), then times every named
question of ``query/queries/*.rq`` (and a few raw lineage patterns for comparison), warm,
with different parameter values on each run, bound as the query service binds them
(``Question.text``), and for comparison through pyoxigraph's ``substitutions``. Usage::

    python bench/query.py [--workflows 2000] [--seed 42] [--store DIR] [--rebuild]
                          [--runs 50] [--only NAME,NAME] [--json FILE]
    python bench/query.py --shape deep [...]   # bench/query_deep.py: deep chains from
                                               # shared sources, over HTTP, and a size series

Prints a table of p50 / p95 / max latency and rows returned per question, with the
issue's targets alongside (never asserted), and writes ``bench/results/query.json``.
See bench/QUERY.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Python puts this script's directory first on sys.path, where this file would shadow the
# `query` package: import the project first, then look in bench/ for query_scenario only.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

from provml.core import mapping, resolve, vocab, wire  # noqa: E402
from query.questions import Param, Question, chosen, questions  # noqa: E402

sys.path.append(str(BENCH))

from index_upkeep import keep_lineage_index  # noqa: E402
from query_scenario import GENERATOR_VERSION, YEAR, YEAR_START, Scenario  # noqa: E402

META = "meta.json"
STORE_SUBDIR = "oxigraph"
PIPELINE_SOURCES = (
    "provml/core/wire.py",
    "provml/core/resolve.py",
    "provml/core/mapping.py",
    "provml/core/lineage_index.py",
    "provml/core/ids.py",
    "provml/core/vocab.py",
    "bench/query_scenario.py",
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- targets ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    label: str
    ms: float


WAS_USED = Target("was X used", 10.0)
DOWNSTREAM = Target("downstream impact", 100.0)
SINGLE = Target("single-model lineage", 20.0)
#: the questions of query/queries/ the issue's targets apply to (docs/questions.md); a
#: question without an entry gets no target, a question not listed here at all a guess
KNOWN_TARGETS: dict[str, Target | None] = {
    "training-data": SINGLE,  # which data trained M
    "data-derivation": SINGLE,  # from which raw sources, through which steps
    "derived-from": SINGLE,  # the models M was derived from
    "commercial-use": SINGLE,  # licences upstream of M
    "reproduce": SINGLE,  # hyperparameters, code, environment, seed
    "hyperparameters": SINGLE,
    "prediction-model": SINGLE,  # the lineage of one prediction
    "prediction-trace": SINGLE,
    "was-used": WAS_USED,
    "downstream": DOWNSTREAM,
    "dataset-models": DOWNSTREAM,  # every model that used a dataset, directly or downstream
    "dataset-usage": DOWNSTREAM,  # (its earlier name)
    "dataset-sources": SINGLE,  # what a dataset was derived from
    **dict.fromkeys(
        ("model-record", "model-evaluations", "dataset-record", "feature-code", "best-epoch",
         "run-metrics", "stage-resources", "experiment-runs", "dataset-comparison",
         "runs-history", "workflow-consumers", "models-in-window", "models", "predictions")
    ),
}  # fmt: skip
_GUESSES = (
    (re.compile(r"\bwas\b.*\bused\b|\bwas-used|\bis-used"), WAS_USED),
    (re.compile(r"downstream|impact|affected|descendant"), DOWNSTREAM),
    (re.compile(r"training-data|trained|hyperparam|derivation|reproduc|lineage|upstream"), SINGLE),
)


def target_of(q: Question) -> tuple[Target | None, bool]:
    """The issue's latency target for a question, and whether it was only guessed (from the
    name and title of a question this benchmark does not know yet)."""
    if q.name in KNOWN_TARGETS:
        return KNOWN_TARGETS[q.name], False
    text = f"{q.name} {q.title}".lower()
    if q.params:
        for pattern, target in _GUESSES:
            if pattern.search(text):
                return target, True
    return None, True


# ---- raw lineage patterns for comparison ----------------------------------------------
RAW_PATTERNS = (
    Question(
        "raw:training-data-1hop",
        "1 hop: what did the training of this model use? (wasGeneratedBy/used, bound model)",
        "SELECT ?model ?data WHERE { ?model prov:wasGeneratedBy ?training . "
        "?training prov:used ?data }",
        [Param("model", "data", "a model")],
    ),
    Question(
        "raw:upstream-path",
        "upstream lineage: (prov:wasGeneratedBy/prov:used)+ from a bound model",
        "SELECT DISTINCT ?model ?d WHERE { ?model (prov:wasGeneratedBy/prov:used)+ ?d }",
        [Param("model", "data", "a model")],
    ),
    Question(
        "raw:downstream-path",
        "downstream impact: (prov:wasGeneratedBy/prov:used)+ into a bound raw file",
        "SELECT DISTINCT ?source ?d WHERE { ?d (prov:wasGeneratedBy/prov:used)+ ?source }",
        [Param("source", "data", "a raw file")],
    ),
)
RAW_TARGETS = {
    "raw:training-data-1hop": SINGLE,
    "raw:upstream-path": SINGLE,
    "raw:downstream-path": DOWNSTREAM,
}


# ---- the store ---------------------------------------------------------------------------
def build_params(args: argparse.Namespace) -> dict[str, Any]:
    digest = hashlib.sha256()
    for rel in PIPELINE_SOURCES:
        digest.update((ROOT / rel).read_bytes())
    return {
        "workflows": args.workflows,
        "seed": args.seed,
        "wire": args.wire,
        "generator_version": GENERATOR_VERSION,
        "code_type": "code" if "code" in wire.DATA_TYPES else "file",
        "pipeline_sha256": digest.hexdigest(),
        "compacted": True,  # as `provml ingest --data-dir` leaves a store
    }


def load_meta(store_dir: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads((store_dir / META).read_text())
    except (OSError, ValueError):
        return None
    return meta


def reusable(meta: dict[str, Any] | None, params: dict[str, Any]) -> str | None:
    """None if the store was built with ``params``, else why it must be rebuilt."""
    if meta is None:
        return "no finished build found"
    old = meta.get("params", {})
    changed = [k for k in params if old.get(k) != params[k]]
    return f"built with other {', '.join(changed)}" if changed else None


def build(store_dir: Path, args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
    """Generate the scenario into a fresh store; return the metadata (also written)."""
    (store_dir / META).unlink(missing_ok=True)
    shutil.rmtree(store_dir / STORE_SUBDIR, ignore_errors=True)
    store_dir.mkdir(parents=True, exist_ok=True)
    store = pyoxigraph.Store(str(store_dir / STORE_SUBDIR))
    scenario = Scenario(args.workflows, args.seed, args.wire)
    pending: list[pyoxigraph.Quad] = []
    executions: list[str] = []  # whose derivation edges the next update adds
    quads = 0
    pipeline_s = load_s = derive_s = 0.0
    start = time.perf_counter()
    progress = start
    batches = scenario.batches()
    while True:
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is not None:
            resolved = resolve.resolve_batch(wire.validate_batch(batch))
            pending.extend(mapping.batch_to_quads(resolved))
            executions.extend(mapping.deriving_executions(resolved))
        t1 = time.perf_counter()
        pipeline_s += t1 - t0
        if pending and (batch is None or len(pending) >= args.chunk):
            store.bulk_extend(pending)
            quads += len(pending)
            written, pending = pending, []
            t2 = time.perf_counter()
            load_s += t2 - t1
            # as the manager does after each write (provml.core.mapping.derivation_update)
            update = mapping.derivation_update(executions)
            if update is not None:
                store.update(update, prefixes=vocab.PREFIXES)
            keep_lineage_index(store, executions, written)
            executions = []
            derive_s += time.perf_counter() - t2
        if batch is None:
            break
        if time.perf_counter() - progress > 10:
            progress = time.perf_counter()
            c = scenario.counts
            say(
                f"    {c.workflows:,}/{args.workflows:,} workflows, {c.tasks:,} tasks, "
                f"{quads + len(pending):,} quads, {progress - start:.0f} s"
            )
    t0 = time.perf_counter()
    store.flush()
    load_s += time.perf_counter() - t0
    # compacted as `provml ingest --data-dir` leaves a store (manager.store.oxigraph):
    # uncompacted, the bulk loader's files made every question about twice as slow
    t0 = time.perf_counter()
    store.optimize()
    compact_s = time.perf_counter() - t0
    total_s = time.perf_counter() - start
    t0 = time.perf_counter()
    triples = len(store)
    count_s = time.perf_counter() - t0
    del store
    c = scenario.counts
    meta = {
        "params": params,
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "counts": {
            "workflows": c.workflows,
            "tasks": c.tasks,
            "sections": c.sections,
            "metric_values": c.metrics,
            "records": c.records,
            "batches": c.batches,
            "records_by_kind": c.by_kind,
            "quads_mapped": quads,
            "triples": triples,
            "models": len(scenario.registry.models),
            "predictions": len(scenario.registry.predictions),
            "datasets": len(scenario.registry.datasets),
            "raw_files": len(scenario.registry.raw_files),
        },
        "build": {
            "seconds": round(total_s, 1),
            "pipeline_seconds": round(pipeline_s, 1),
            "bulk_extend_seconds": round(load_s, 1),
            "derive_seconds": round(derive_s, 1),
            "compact_seconds": round(compact_s, 1),
            "count_seconds": round(count_s, 1),
            "triples_per_second_overall": round(triples / total_s),
            "quads_per_second_bulk_extend": round(quads / load_s) if load_s else None,
            "records_per_second_pipeline": round(c.records / pipeline_s) if pipeline_s else None,
            "disk_bytes": disk_bytes(store_dir / STORE_SUBDIR),
        },
        "registry": scenario.registry.sample(random.Random(args.seed), 2000),
    }
    (store_dir / META).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prewarm(path: Path) -> None:
    """Read every file of the store once, so that queries start from the page cache."""
    for p in sorted(path.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 22):
                    pass


# ---- parameter values -------------------------------------------------------------------
# (words in a parameter's name, its kinds) → registry list its values come from
_POOLS: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("prediction",), ("iri", "data"), "predictions"),
    (("base", "parent", "pretrained"), ("iri", "data"), "base_models"),
    (("finetuned", "fine"), ("iri", "data"), "finetuned_models"),
    (("model", "checkpoint"), ("iri", "data"), "models"),
    (("raw", "file", "source", "input", "upstream"), ("iri", "data"), "raw_files"),
    (("reference",), ("iri", "data"), "reference_files"),
    (("code", "script"), ("iri", "data"), "code_files"),
    (("dataset", "data"), ("iri", "data"), "datasets"),
    (("training", "train"), ("iri", "data"), "trainings"),
    (("inference",), ("iri", "data"), "inferences"),
    (("run", "execution", "workflow", "activity", "exec"), ("iri", "data"), "runs"),
    (("workflow", "pipeline"), ("string",), "workflow_names"),
    (("user", "who", "persona", "owner"), ("string",), "users"),
    (("host", "hostname", "node"), ("string",), "hostnames"),
    (("commit", "git"), ("string",), "git_commits"),
    (("packages",), ("string",), "packages_sha256"),
    (("license", "licence"), ("string",), "licenses"),
    (("split",), ("string",), "splits"),
    (("version",), ("string",), "dataset_versions"),
    (("source", "origin", "url"), ("string",), "dataset_sources"),
    (("framework",), ("string",), "frameworks"),
    (("metric",), ("string",), "metric_names"),
    (("hyperparameter", "param", "parameter", "setting"), ("string",), "hyperparameter_names"),
    (("task", "step", "stage"), ("string",), "task_names"),
)
# phrases of a parameter's help text that say more than its name ("run" is a workflow
# execution for one question and a training task's execution for another)
_HELP_POOLS = (
    ("training execution", "trainings"),
    ("inference execution", "inferences"),
    ("workflow execution", "runs"),
)
# questions whose answer is empty for most values of the general pool
_QUESTION_POOLS = {
    ("derived-from", "model"): "finetuned_models",
    ("feature-code", "model"): "served_models",
}
_FALLBACK = {"iri": "models", "data": "models", "string": "workflow_names"}
_STARTS = ("from", "start", "since", "after", "begin", "min", "earliest")
_INTEGERS = {
    "limit": "10",
    "top": "10",
    "k": "10",
    "n": "10",
    "count": "10",
    "depth": "10",
    "hops": "10",
    "epoch": "5",
    "step": "5",
    "year": "2025",
}


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) | {name.lower()}


class Chooser:
    """Parameter values for the i-th run of a question, from the generated data."""

    def __init__(self, registry: dict[str, list[str]], seed: int) -> None:
        self.registry = registry
        self.seed = seed
        rng = random.Random(seed)
        self.windows = []  # (start, end) as ISO datetimes: 1, 7 and 30 days
        for _ in range(200):
            days = rng.choice((1, 7, 30))
            start = YEAR_START + rng.uniform(0, YEAR - days * 86400)
            self.windows.append((_iso(start), _iso(start + days * 86400)))
        self.warnings: list[str] = []

    def pool(self, q: Question, p: Param) -> tuple[str, list[str]]:
        """The registry list a parameter draws from (a warning when only guessed by kind)."""
        pool = _QUESTION_POOLS.get((q.name, p.name))
        help_text = p.help.lower()
        if pool is None and p.kind in ("iri", "data"):
            pool = next((v for phrase, v in _HELP_POOLS if phrase in help_text), None)
        if pool is None:
            words = _words(p.name)
            pool = next(
                (v for keys, kinds, v in _POOLS if p.kind in kinds and words & set(keys)), None
            )
        if pool is None:
            pool = _FALLBACK.get(p.kind, "workflow_names")
            self.warnings.append(
                f"{q.name}: parameter {p.name!r} ({p.kind}) not recognised; using {pool}"
            )
        return pool, self.registry.get(pool, [])

    def plan(self, q: Question, count: int) -> tuple[list[dict[str, str]], dict[str, str]]:
        """``count`` sets of values, and the source of each parameter's values."""
        sources: dict[str, str] = {}
        columns: dict[str, list[str]] = {}
        rng = random.Random(f"{self.seed}/{q.name}")
        for p in q.params:
            if p.kind == "datetime":
                starts = any(w in _words(p.name) for w in _STARTS)
                ends = any(w in _words(p.name) for w in ("to", "end", "until", "before", "max"))
                if not (starts or ends):
                    self.warnings.append(f"{q.name}: datetime {p.name!r}: using window starts")
                column = [w[0] if starts or not ends else w[1] for w in self.windows]
                sources[p.name] = "window " + ("start" if starts or not ends else "end")
            elif p.kind == "integer":
                value = next((v for k, v in _INTEGERS.items() if k in _words(p.name)), None)
                if value is None:
                    self.warnings.append(f"{q.name}: integer {p.name!r} not recognised; using 10")
                column, sources[p.name] = [value or "10"], "constant"
            else:
                source, values = self.pool(q, p)
                column = list(values)
                rng.shuffle(column)
                sources[p.name] = source
            columns[p.name] = column or ["https://provml.dev/id/missing"]
        windows_start = rng.randrange(len(self.windows))
        rows = []
        for i in range(count):
            row = {}
            for name, column in columns.items():
                j = (i + windows_start) if sources[name].startswith("window") else i
                row[name] = column[j % len(column)]
            rows.append(row)
        return rows, sources


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


# ---- measuring ----------------------------------------------------------------------------
@dataclass
class Series:
    """The timed runs of one question in one binding mode."""

    ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    status: str = "ok"  # ok | error | timeout
    message: str = ""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "message": self.message}
        out["runs"] = len(self.ms)
        if self.ms:
            out |= {
                "p50_ms": round(percentile(self.ms, 50), 3),
                "p95_ms": round(percentile(self.ms, 95), 3),
                "max_ms": round(max(self.ms), 3),
                "mean_ms": round(statistics.fmean(self.ms), 3),
                "rows_median": statistics.median(self.rows),
                "rows_min": min(self.rows),
                "rows_max": max(self.rows),
                "empty_runs": sum(1 for r in self.rows if r == 0),
                "p50_nonempty_ms": _p50_nonempty(self.ms, self.rows),
                "ms_all": [round(x, 3) for x in self.ms],
                "rows_all": self.rows,
            }
        return out


@dataclass
class Timing:
    name: str
    title: str
    target: Target | None
    guessed: bool  # the target was guessed from the name and title
    params: dict[str, str]  # parameter → where its values came from
    main: Series  # parameters bound as the query service binds them
    substitutions: Series | None = None  # bound by pyoxigraph substitutions, for comparison

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "title": self.title, "params": self.params}
        out["target"] = None
        if self.target is not None:
            out["target"] = {"class": self.target.label, "ms": self.target.ms}
            out["target"]["guessed"] = self.guessed
        out |= self.main.summary()
        if self.target is not None and self.main.ms:
            out["meets_target_p95"] = out["p95_ms"] <= self.target.ms
        if self.substitutions is not None:
            alt = self.substitutions
            out["substitutions"] = alt.summary()
            n = min(len(alt.rows), len(self.main.rows))
            out["substitutions"]["same_rows"] = alt.rows[:n] == self.main.rows[:n]
        return out


def _p50_nonempty(ms: list[float], rows: list[int]) -> float | None:
    """p50 over the runs that returned rows (a source nothing used answers at once)."""
    kept = [m for m, r in zip(ms, rows, strict=True) if r]
    return round(percentile(kept, 50), 3) if kept else None


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 50 values is the 48th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def measure(
    store: Path,
    q: Question,
    plan: list[dict[str, str]],
    mode: str,
    budget: float,
    args: argparse.Namespace,
) -> Series:
    """Time one question in a child process (see :func:`worker`), which is killed when a
    single run takes longer than ``--timeout``: an embedded query cannot be cancelled."""
    series = Series()
    job = {
        "store": str(store),
        "name": q.name,
        "title": q.title,
        "sparql": q.sparql,
        "params": [[p.name, p.kind, p.help] for p in q.params],
        # the version over the lineage index, chosen per run as the service chooses it
        "indexed": None if q.indexed is None else [q.indexed.sparql, q.indexed.index],
        "plan": plan,
        "mode": mode,
        "warmup": args.warmup,
        "budget": budget,
    }
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(proc.stdout,), daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=args.timeout or None)
        except queue.Empty:
            proc.kill()
            series.status = "timeout"
            series.message = f"a run took over {args.timeout:g} s; stopped"
            break
        if line is None:
            break
        msg = json.loads(line)
        if "error" in msg:
            series.status, series.message = "error", msg["error"]
        elif "stopped" in msg:
            series.message = msg["stopped"]
        elif not msg["warmup"]:
            series.ms.append(msg["ms"])
            series.rows.append(msg["rows"])
    if proc.wait() != 0 and series.status == "ok":
        series.status, series.message = "error", f"worker exited with {proc.returncode}"
    return series


def worker() -> int:
    """Child process: run one question's plan (a JSON job on stdin), one JSON line per run.

    The store is opened read-only: nothing writes to it while the benchmark runs, and the
    parent can kill this process at any time.
    """
    job = json.load(sys.stdin)
    store = pyoxigraph.Store.read_only(job["store"])
    params = [Param(*p) for p in job["params"]]
    q = Question(job["name"], job["title"], job["sparql"], params)
    if job.get("indexed"):
        q.indexed = Question(q.name, q.title, job["indexed"][0], params, job["indexed"][1])
    reader = _Reader(store)
    spent = 0.0
    for i, values in enumerate(job["plan"]):
        warmup = i < job["warmup"]
        try:
            t0 = time.perf_counter()
            asked = chosen(reader, q, values) if job["mode"] == "service" else q
            text, bound = bind(asked, values, job["mode"])
            result = store.query(text, prefixes=vocab.PREFIXES, substitutions=bound)
            rows = 1 if isinstance(result, pyoxigraph.QueryBoolean) else len(list(result))
            ms = (time.perf_counter() - t0) * 1000
        except Exception as exc:  # reported in the table, not fatal
            emit({"error": f"{type(exc).__name__}: {exc}"})
            return 0
        emit({"i": i, "warmup": warmup, "ms": ms, "rows": rows})
        spent += ms / 1000
        if job["budget"] and spent > job["budget"] and not warmup:
            runs = i + 1 - job["warmup"]
            emit({"stopped": f"stopped after {runs} runs: over the {job['budget']:g} s budget"})
            break
    return 0


class _Reader:
    """A bare pyoxigraph store as :func:`query.questions.chosen` reads it (the index is
    kept in every store this benchmark builds)."""

    keeps_lineage_index = True

    def __init__(self, store: pyoxigraph.Store) -> None:
        self.store = store

    def query(self, sparql: str) -> Any:
        return self.store.query(sparql, prefixes=vocab.PREFIXES)


def bind(
    q: Question, values: dict[str, str], mode: str
) -> tuple[str, dict[pyoxigraph.Variable, Any] | None]:
    """The query text and substitutions for one run. ``service``: as the query service
    binds parameters (``Question.text``: a VALUES block at the head of the WHERE clause,
    or substitutions with a ``query.questions`` that has no ``text``); ``substitutions``:
    through pyoxigraph's substitutions, for comparison."""
    text = getattr(q, "text", None)
    if mode == "service" and text is not None:
        return text(values), None
    return q.sparql, q.bind(values) or None


def emit(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


# ---- report --------------------------------------------------------------------------------
def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _cell(series: Series | None, key: str) -> str:
    if series is None or not series.ms:
        return "-"
    return fmt_ms(series.summary()[key])


def table(timings: list[Timing]) -> str:
    """The results as an aligned text table."""
    head = ["question", "target (p95)", "p50 ms", "p95 ms", "max ms", "rows median (min-max)",
            "runs", "vs target", "subst. p50", "subst. p95"]  # fmt: skip
    lines = [head]
    notes = []
    for t in timings:
        s = t.summary()
        target = "-"
        if t.target is not None:
            target = f"≤ {t.target.ms:g} ms {t.target.label}" + (" (guessed)" if t.guessed else "")
        m = t.main
        verdict = ""
        if m.status != "ok":
            verdict = m.status.upper()
        elif t.target is not None and m.ms:
            verdict = "meets" if s["meets_target_p95"] else "MISSES"
        rows = "-"
        if m.ms:
            rows = f"{s['rows_median']:g} ({s['rows_min']}-{s['rows_max']})"
        if m.message:
            notes.append(f"{t.name}: {m.message}")
        alt = t.substitutions
        if alt is not None:
            if alt.message:
                notes.append(f"{t.name} (substitutions): {alt.message}")
            if alt.ms and not s["substitutions"]["same_rows"]:
                notes.append(f"{t.name}: bound by substitutions, it returned other row counts")
        lines.append([t.name, target, _cell(m, "p50_ms"), _cell(m, "p95_ms"),
                      _cell(m, "max_ms"), rows, str(len(m.ms)), verdict,
                      _cell(alt, "p50_ms"), _cell(alt, "p95_ms")])  # fmt: skip
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    right = {2, 3, 4, 6, 8, 9}

    def line(row: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(lines[0]), rule, *map(line, lines[1:])]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def _progress(series: Series) -> str:
    s = series.summary()
    return (
        f"{series.status}: p50 {fmt_ms(s.get('p50_ms'))} ms, p95 {fmt_ms(s.get('p95_ms'))} ms, "
        f"{len(series.ms)} runs {series.message}"
    )


def header(meta: dict[str, Any], reused: bool, args: argparse.Namespace) -> str:
    c, b = meta["counts"], meta["build"]
    return "\n".join(
        [
            f"store: {args.store} ({'reused' if reused else 'built now'}, {meta['built_at']})",
            f"  {c['triples']:,} triples from {c['workflows']:,} workflow runs, {c['tasks']:,} "
            f"tasks, {c['records']:,} records ({c['models']:,} models, {c['predictions']:,} "
            f"predictions, {c['datasets']:,} dataset versions, {c['raw_files']:,} raw files)",
            f"  build {b['seconds']:.0f} s: pipeline (generate, validate, resolve, map) "
            f"{b['pipeline_seconds']:.0f} s, bulk_extend {b['bulk_extend_seconds']:.0f} s, "
            f"derivation updates {b.get('derive_seconds', 0):.0f} s, "
            f"compaction {b.get('compact_seconds', 0):.0f} s "
            f"({b['quads_per_second_bulk_extend']:,} quads/s mapped, "
            f"{c['triples'] / b['bulk_extend_seconds']:,.0f} distinct triples/s); "
            f"{b['triples_per_second_overall']:,} triples/s overall; "
            f"{b['disk_bytes'] / 2**30:.2f} GiB on disk",
            f"queries: {args.runs} timed runs each after {args.warmup} warm-up runs, different "
            "parameter values per run, every row consumed; store files pre-read (page cache);",
            "  parameters bound as the query service binds them (Question.text: a VALUES block); "
            f"subst.: bound by pyoxigraph substitutions instead ({args.compare_runs} runs)",
        ]
    )


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyoxigraph": pyoxigraph.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--short"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            info["provml_git"] = done.stdout.strip() + (
                " + uncommitted changes" if dirty.stdout.strip() else ""
            )
    except OSError:
        pass
    return info


# ---- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workflows", type=int, default=2000, help="workflow runs to generate")
    p.add_argument("--seed", type=int, default=42, help="seed of the generated data")
    p.add_argument(
        "--store",
        default=str(BENCH / ".data" / "query-store"),
        help="directory of the store and its metadata",
    )
    p.add_argument("--rebuild", action="store_true", help="build even if a matching store exists")
    p.add_argument(
        "--wire",
        choices=("compact", "object"),
        default="compact",
        help="record form of the generated batches",
    )
    p.add_argument("--chunk", type=int, default=500_000, help="quads per bulk_extend call")
    p.add_argument("--runs", type=int, default=50, help="timed runs per question")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per question first")
    p.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop timing a question after this many seconds of queries (0: never)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="abandon a question whose single run takes longer (0: wait forever)",
    )
    p.add_argument("--only", default="", help="comma-separated question names (default: all)")
    p.add_argument("--no-raw", action="store_true", help="skip the raw lineage patterns")
    p.add_argument(
        "--compare-runs",
        type=int,
        default=10,
        help="also time each question with parameters bound by pyoxigraph substitutions, "
        "this many runs, within half the budget (0: don't)",
    )
    p.add_argument("--build-only", action="store_true", help="build the store, time nothing")
    p.add_argument("--json", default=str(BENCH / "results" / "query.json"), help="results file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = argv if argv is not None else sys.argv[1:]
    if raw == ["--worker"]:
        return worker()
    if raw[:2] == ["--shape", "deep"]:  # issue [11]'s deep-and-wide shape, over HTTP
        import query_deep

        return int(query_deep.main(raw[2:]))
    args = parse_args(argv)
    store_dir = Path(args.store)
    params = build_params(args)
    meta = load_meta(store_dir)
    why = "--rebuild" if args.rebuild else reusable(meta, params)
    reused = why is None
    if not reused:
        say(
            f"building the store in {store_dir} ({why}): {args.workflows:,} workflow runs, "
            f"seed {args.seed} …"
        )
        meta = build(store_dir, args, params)
    assert meta is not None
    b = meta["build"]
    say(f"store ready: {meta['counts']['triples']:,} triples, built in {b['seconds']:.0f} s")
    if args.build_only:
        print(header(meta, reused, args))
        return 0
    prewarm(store_dir / STORE_SUBDIR)
    chooser = Chooser(meta["registry"], args.seed)
    chosen = dict(questions())
    only = {n for n in args.only.split(",") if n}
    todo: list[tuple[Question, Target | None, bool]] = [
        (q, *target_of(q)) for n, q in sorted(chosen.items()) if not only or n in only
    ]
    if not args.no_raw:
        todo += [
            (q, RAW_TARGETS[q.name], False) for q in RAW_PATTERNS if not only or q.name in only
        ]
    timings = []
    for q, target, guessed in todo:
        plan, sources = chooser.plan(q, args.warmup + args.runs)
        say(f"  {q.name} ({', '.join(f'{k} from {v}' for k, v in sources.items()) or '-'}) …")
        path = store_dir / STORE_SUBDIR
        main = measure(path, q, plan, "service", args.budget, args)
        t = Timing(q.name, q.title, target, guessed, sources, main)
        say(f"    {_progress(t.main)}")
        if q.params and args.compare_runs:
            compare = plan[: args.warmup + args.compare_runs]
            t.substitutions = measure(path, q, compare, "substitutions", args.budget / 2, args)
            say(f"    bound by substitutions: {_progress(t.substitutions)}")
        timings.append(t)
    for warning in dict.fromkeys(chooser.warnings):
        say(f"warning: {warning}")
    print(header(meta, reused, args))
    print()
    print(table(timings))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": machine_info(),
        "config": vars(args),
        "store": {k: v for k, v in meta.items() if k != "registry"} | {"reused": reused},
        "warnings": list(dict.fromkeys(chooser.warnings)),
        "questions": [t.summary() for t in timings],
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
