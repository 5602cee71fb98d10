"""The named questions over HTTP on the deep-and-wide shape of issue [11], and against size.

Builds (or reuses) stores of :mod:`query_deep_scenario` (deep chains from shared sources,
a model and hundreds of predictions per run) through provml's own pipeline, as
bench/query.py does (wire batch → ``validate_batch`` → ``resolve_batch`` →
``batch_to_quads`` → ``bulk_extend``, the manager's derivation update after each write,
one compaction at the end), then starts a real ``provml serve`` on the store and times
every named question over HTTP (``GET /api/v1/questions/<name>``, every row in one page),
warm. Questions about a source run once per tier (a source shared by 10, 100 or by up to
1,000 runs); questions about a model, prediction or dataset once per chain length (10,
40, 100). Usage::

    python bench/query.py --shape deep [--triples 2e6] [--runs 30]
    python bench/query.py --shape deep --series 0.5e6,2e6,8e6 [--only was-used,downstream]

Writes ``bench/results/query-deep.json`` (and with ``--series``
``bench/results/query-deep-series.{json,png}``). See bench/QUERY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyoxigraph
import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
from provml.core import mapping, resolve, vocab, wire  # noqa: E402
from query.questions import questions  # noqa: E402

sys.path.append(str(BENCH))
from index_upkeep import keep_lineage_index  # noqa: E402
from query_deep_scenario import DEEP_VERSION, TIERS, DeepScenario  # noqa: E402

RESULTS = BENCH / "results"
READ_TOKEN = "bench-read-" + "r" * 24
#: question → which parameter pool it draws from ("tier": a shared source per tier,
#: "depth:<pool>": the pool by chain length); the rest get one series from the registry
SOURCE_QUESTIONS = ("was-used", "downstream", "data-uses")
DEPTH_POOLS = {"model": "models", "prediction": "predictions", "dataset": "datasets"}
TARGETS = {"was-used": 10.0, "downstream": 100.0, "data-derivation": 20.0,
           "training-data": 20.0, "prediction-trace": 20.0}  # fmt: skip


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the store -------------------------------------------------------------------------
def build(data_dir: Path, triples: int, seed: int, chunk: int = 500_000) -> dict[str, Any]:
    """A store of about ``triples`` triples in ``data_dir/store`` (as ``provml serve
    --data-dir`` reads it), and its metadata (also written to ``data_dir/meta.json``)."""
    meta_path = data_dir / "meta.json"
    wanted = {"triples": triples, "seed": seed, "version": DEEP_VERSION, "lineage_index": 1}
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta["params"] == wanted:
            return meta
    except (OSError, ValueError, KeyError):
        pass
    meta_path.unlink(missing_ok=True)
    import shutil

    shutil.rmtree(data_dir / "store", ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = pyoxigraph.Store(str(data_dir / "store"))
    scenario = DeepScenario(10**6, seed)
    mapped = [0]
    ratio = [0.65]  # distinct triples per mapped quad (measured at the first write)
    scenario.stop = lambda: mapped[0] * ratio[0] >= triples
    pending: list[pyoxigraph.Quad] = []
    executions: list[str] = []
    t0 = time.perf_counter()
    for batch in scenario.batches():
        resolved = resolve.resolve_batch(wire.validate_batch(batch))
        quads = mapping.batch_to_quads(resolved)
        pending.extend(quads)
        mapped[0] += len(quads)
        executions.extend(mapping.deriving_executions(resolved))
        if len(pending) >= chunk:
            _write(store, pending, executions)
            pending, executions = [], []
            if ratio[0] == 0.65:
                ratio[0] = len(store) / mapped[0]
            say(f"    {scenario.counts.workflows:,} runs, {mapped[0]:,} quads, "
                f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    if pending:
        _write(store, pending, executions)
    store.flush()
    store.optimize()
    seconds = time.perf_counter() - t0
    c = scenario.counts
    meta = {
        "params": wanted,
        "triples": len(store),
        "runs": c.workflows,
        "tasks": c.tasks,
        "records": c.records,
        "predictions": len(scenario.registry.predictions),
        "build_seconds": round(seconds, 1),
        "pools": scenario.parameters(random.Random(seed)),
    }
    del store
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _write(store: pyoxigraph.Store, quads: list[pyoxigraph.Quad], executions: list[str]) -> None:
    store.bulk_extend(quads)
    update = mapping.derivation_update(executions)  # as the manager does after a write
    if update is not None:
        store.update(update, prefixes=vocab.PREFIXES)
    keep_lineage_index(store, executions, quads)


# ---- the server --------------------------------------------------------------------------
class Server:
    """``provml serve`` on ``data_dir``, on loopback, with a read token."""

    def __init__(self, data_dir: Path) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        tokens = Path(self.tmp.name) / "tokens"
        tokens.write_text(f"{READ_TOKEN} read reader\n")
        tokens.chmod(0o600)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(Path(self.tmp.name) / "server.log", "wb")  # noqa: SIM115
        binary = Path(sys.executable).with_name("provml")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--port", str(port), "--data-dir", str(data_dir),
             "--tokens-file", str(tokens)],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {READ_TOKEN}"
        self.session.headers["Accept"] = "application/sparql-results+json"
        for _ in range(600):
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("provml serve did not start: " + self.logged())

    def logged(self) -> str:
        return (Path(self.tmp.name) / "server.log").read_text(errors="replace")[-2000:]

    def ask(self, name: str, params: dict[str, str]) -> tuple[float, int]:
        """Wall ms of one question over HTTP (every row: one page of up to 100,000) and
        its row count."""
        t0 = time.perf_counter()
        r = self.session.get(f"{self.url}/api/v1/questions/{name}",
                             params={**params, "limit": "100000"}, timeout=120)  # fmt: skip
        body = r.content
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"{name}: HTTP {r.status_code}: {body[:300]!r}")
        return ms, len(json.loads(body)["results"]["bindings"])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


# ---- what to ask -------------------------------------------------------------------------
Plan = list[tuple[str, str, list[dict[str, str]]]]


def series_plan(meta: dict[str, Any], only: set[str]) -> Plan:
    """(series label, question, parameter sets) for every named question."""
    pools = meta["pools"]
    plans = []
    for name, q in sorted(questions().items()):
        if only and name not in only:
            continue
        kinds = {p.name: p for p in q.params}
        if name in SOURCE_QUESTIONS and "source" in kinds:
            for tier in TIERS:
                sources = pools["tiers"][str(tier)]
                if sources:  # (the label names the tier: the plot joins sizes by label)
                    readers = max(s["readers"] for s in sources)
                    values = [{"source": s["iri"]} for s in sources]
                    label = f"{name} [source shared by ≤ {tier} runs, here {readers}]"
                    plans.append((label, name, values))
            continue
        depth_param = next((p for p in kinds if p in DEPTH_POOLS), None)
        if depth_param is not None and len(kinds) == 1:
            for depth, pool in sorted(pools["depth"].items(), key=lambda kv: int(kv[0])):
                values = [{depth_param: v} for v in pool[DEPTH_POOLS[depth_param]]]
                if values:
                    plans.append((f"{name} [chain of {depth}]", name, values))
            continue
        values = _registry_values(q, pools)
        if values is not None:
            plans.append((name, name, values))
    return plans


def _registry_values(q: Any, pools: dict[str, Any]) -> list[dict[str, str]] | None:
    import importlib.util

    # bench/query.py's Chooser: the same pools as its table (loaded under another name:
    # "query" is the package)
    spec = importlib.util.spec_from_file_location("bench_query", BENCH / "query.py")
    assert spec is not None and spec.loader is not None
    bench_query = sys.modules.get("bench_query") or importlib.util.module_from_spec(spec)
    if "bench_query" not in sys.modules:
        sys.modules["bench_query"] = bench_query
        spec.loader.exec_module(bench_query)
    chooser = bench_query.Chooser(pools, 42)
    rows, _ = chooser.plan(q, 60)
    return rows


def measure(server: Server, name: str, values: list[dict[str, str]], runs: int, warmup: int,
            budget: float) -> dict[str, Any]:  # fmt: skip
    ms: list[float] = []
    rows: list[int] = []
    spent = 0.0
    for i in range(warmup + runs):
        took, n = server.ask(name, values[i % len(values)])
        if i >= warmup:
            ms.append(took)
            rows.append(n)
            spent += took / 1000
            if spent > budget:
                break
    return summary(ms, rows)


def summary(ms: list[float], rows: list[int]) -> dict[str, Any]:
    s = sorted(ms)

    def pct(p: float) -> float:
        return round(s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))], 2)

    return {
        "runs": len(ms),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "max_ms": round(s[-1], 2),
        "rows_median": statistics.median(rows),
        "rows_max": max(rows),
        "ms": [round(m, 3) for m in ms],
        "rows": rows,
    }


def run_all(data_dir: Path, meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    only = {n for n in args.only.split(",") if n}
    plans = series_plan(meta, only)
    for p in (data_dir / "store").rglob("*"):  # warm: the files in the page cache
        if p.is_file():
            p.read_bytes()
    server = Server(data_dir)
    out: dict[str, Any] = {}
    try:
        for label, name, values in plans:
            try:
                out[label] = measure(server, name, values, args.runs, args.warmup, args.budget)
            except (RuntimeError, requests.RequestException) as exc:
                out[label] = {"error": str(exc)[:300]}
            r = out[label]
            if "error" in r:
                say(f"  {label}: {r['error']}")
            else:
                rows = f"rows {r['rows_median']:g} (max {r['rows_max']})"
                say(f"  {label}: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms, {rows}, "
                    f"{r['runs']} runs")  # fmt: skip
    finally:
        server.close()
    return out


def table(results: dict[str, Any]) -> str:
    lines = ["| question [shape] | target | p50 ms | p95 ms | max ms | rows median (max) |",
             "|---|---|---:|---:|---:|---|"]  # fmt: skip
    for label, r in results.items():
        target = TARGETS.get(label.split(" ")[0])
        t = f"≤ {target:g}" if target else "–"
        if "error" in r:
            lines.append(f"| {label} | {t} | error: {r['error'][:80]} | | | |")
            continue
        lines.append(f"| {label} | {t} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                     f"{r['max_ms']:.1f} | {r['rows_median']:g} ({r['rows_max']}) |")  # fmt: skip
    return "\n".join(lines)


def plot(series: dict[str, Any], path: Path) -> str:
    """Latency (p50) against size, one line per series label, to ``path`` (PNG)."""
    extra = os.environ.get("PROVML_BENCH_MPL")  # matplotlib installed aside (bench only)
    if extra:
        sys.path.append(extra)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (PROVML_BENCH_MPL=dir to use one installed aside)"
    sizes = sorted(series, key=float)
    for s in sizes:  # one line per tier of sharing, however many runs read it at a size
        runs = series[s]["meta"]["runs"]
        series[s]["results"] = {_tier(k, runs): v for k, v in series[s]["results"].items()}
    labels = sorted({label for s in sizes for label in series[s]["results"]})
    fig, ax = plt.subplots(figsize=(13, 6))
    for label in labels:
        xs, ys = [], []
        for s in sizes:
            r = series[s]["results"].get(label, {})
            if "p50_ms" in r:
                xs.append(series[s]["meta"]["triples"] / 1e6)
                ys.append(r["p50_ms"])
        if xs:
            style = ("-", "--", ":", "-.")[labels.index(label) // 10 % 4]
            ax.plot(xs, ys, marker="o", linestyle=style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("store size (million triples)")
    ax.set_ylabel("p50 over HTTP, warm (ms)")
    ax.set_title("provml named questions on the deep-and-wide shape")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)


def _tier(label: str, runs: int) -> str:
    """A series label with the tier of its source, not how many runs read it."""
    m = re.search(r"\[source (?:read by|shared by) ≤ (\d+) runs.*\]", label)
    if m is None:
        return label
    n = int(m.group(1))
    tier = n if n in TIERS and (n != runs or n == 10) else 1000
    return label[: m.start()] + f"[source shared by ≤ {tier} runs]"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--triples", type=float, default=2e6, help="size of the store to build")
    p.add_argument("--series", default="", help="comma-separated sizes (triples) instead")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data", default=str(BENCH / ".data"), help="where the stores live")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=20.0, help="seconds of queries per series")
    p.add_argument("--only", default="", help="comma-separated question names")
    p.add_argument("--build-only", action="store_true")
    p.add_argument("--label", default="", help="name of this run in the results file")
    p.add_argument("--json", default="")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = [float(s) for s in args.series.split(",") if s] or [args.triples]
    series: dict[str, Any] = {}
    for size in sizes:
        data_dir = Path(args.data) / f"deep-{int(size)}-{args.seed}"
        say(f"store {data_dir} ({size:,.0f} triples) …")
        meta = build(data_dir, int(size), args.seed)
        say(f"  {meta['triples']:,} triples, {meta['runs']} runs, {meta['predictions']:,} "
            f"predictions, built in {meta['build_seconds']} s")  # fmt: skip
        if args.build_only:
            continue
        results = run_all(data_dir, meta, args)
        series[str(int(size))] = {"meta": {k: v for k, v in meta.items() if k != "pools"},
                                  "results": results}  # fmt: skip
        print(f"\n{meta['triples']:,} triples, {meta['runs']} runs ({args.label})\n")
        print(table(results))
    if args.build_only:
        return 0
    name = "query-deep-series" if args.series else "query-deep"
    path = Path(args.json) if args.json else RESULTS / f"{name}.json"
    saved: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(path.read_text())
    saved[args.label or "latest"] = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "load": os.getloadavg(), "series": series}  # fmt: skip
    path.write_text(json.dumps(saved, indent=1) + "\n")
    if args.series:
        say("plot: " + plot(series, path.with_suffix(f".{args.label or 'latest'}.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
