"""Server time of the lineage browser's JSON endpoints on a store of 10,000 workflow runs.

Builds (once; reused while its parameters match) an on-disk store through the manager,
as a deployment fills it: ``--runs`` workflow runs (default 10,000) of a dozen ML
workflows by 25 users on 40 hosts, each cleaning a raw file (300 of them, a few read by
a third of all runs), training with hyperparameters and five epochs of metrics,
evaluating (5 % fail) and predicting; and one serving run of ``--fanout`` inference tasks
(default 48,000) that each use one model and make one prediction. Then times, through
the query service's own app (Flask's test client: routing, the query runner and its
worker processes, JSON), the first page of ``/api/v1/runs`` (default sort, and filtered),
a run's page, a search, a lineage of depth 2, and the lineage of the model with the big
fan-out (folded) — each ``--repeats`` times with different parameters, p50 and p95, and
the median of those over ``--rounds`` rounds. Usage::

    flock /tmp/provml-cpu.lock python bench/web_api.py [--runs 10000] [--fanout 48000]
        [--repeats 30] [--rounds 3] [--store DIR] [--rebuild]

Writes ``bench/results/web_api.json``. The issue's target: the runs page's first screen
within 300 ms of server time with 10,000 runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

from manager.service import Manager  # noqa: E402
from manager.store.oxigraph import OxigraphStore  # noqa: E402
from provml.core import ids, wire  # noqa: E402
from provml.core.resolve import resolve_batch  # noqa: E402
from query.app import create_app  # noqa: E402

VERSION = 1
WORKFLOWS = [
    f"{d}-train"
    for d in (
        "credit",
        "churn",
        "fraud",
        "demand",
        "image",
        "speech",
        "ranking",
        "anomaly",
        "ocr",
        "weather",
        "tickets",
        "energy",
    )
]
USERS = [f"user{k:02d}" for k in range(25)]
HOSTS = [f"node{k:03d}" for k in range(40)]
RAW = 300
START = 1_735_689_600.0  # 2025-01-01


def sha(label: str) -> str:
    import hashlib

    return hashlib.sha256(label.encode()).hexdigest()


def _data(kind: str, label: str, path: str) -> dict[str, Any]:
    return {"@data": kind, "sha256": sha(label), "path": path, "size": 1000 + len(label)}


def one_run(rng: random.Random, k: int, t: float) -> dict[str, Any]:
    """The batch of workflow run ``k``, starting at ``t``."""
    session = ids.new_session_id(int(t * 1000))
    name = WORKFLOWS[k % len(WORKFLOWS)]
    raw = f"raw-{min(int(rng.paretovariate(1.2)) - 1, RAW - 1)}"
    lr = round(10 ** rng.uniform(-4, -1), 6)
    failed = rng.random() < 0.05
    recs: list[dict[str, Any]] = []
    clock = [t]

    def tick(s: float) -> float:
        clock[0] += s
        return round(clock[0], 3)

    env = {
        "hostname": rng.choice(HOSTS),
        "git_commit": sha(f"commit{k % 97}")[:40],
        "git_dirty": rng.random() < 0.1,
        "job_id": str(4_000_000 + k),
        "batch_system": "slurm",
        "mpi_rank": 0,
        "mpi_size": 1,
        "packages": "numpy==2.1.0\ntorch==2.5.1",
    }
    recs.append(
        {
            "kind": "workflow_start",
            "n": 1,
            "name": name,
            "time": tick(0),
            "user": rng.choice(USERS),
            "params": {"config": f"cfg/{k % 13}.yaml"},
            "env": env,
        }
    )
    recs.append(
        {
            "kind": "task_start",
            "n": 2,
            "parent": 1,
            "plan": [name, "clean"],
            "time": tick(1),
            "params": {"drop_na": True},
            "used": {"raw": _data("file", raw, f"/data/{raw}.csv")},
        }
    )
    recs.append(
        {
            "kind": "task_end",
            "n": 2,
            "plan": [name, "clean"],
            "time": tick(30),
            "generated": {"clean": _data("dataset", f"clean-{k}", f"/w/{k}/clean.csv")},
        }
    )
    params = {"lr": lr, "batch_size": rng.choice([32, 64, 128]), "epochs": 5}
    recs.append(
        {
            "kind": "task_start",
            "n": 3,
            "parent": 1,
            "plan": [name, "train"],
            "time": tick(1),
            "stage": "training",
            "params": params,
            "used": {"data": _data("dataset", f"clean-{k}", f"/w/{k}/clean.csv")},
        }
    )
    n = 3
    for epoch in range(5):
        n += 1
        section = n
        recs.append(
            {
                "kind": "section_start",
                "n": section,
                "parent": 3,
                "plan": [name, "train", "epoch"],
                "time": tick(1),
                "index": epoch,
            }
        )
        for metric, value in (("loss", 1 / (epoch + 1) + lr), ("accuracy", 0.6 + epoch * 0.05)):
            n += 1
            recs.append(
                {
                    "kind": "metric",
                    "n": n,
                    "parent": section,
                    "name": metric,
                    "value": round(value + rng.uniform(-0.02, 0.02), 5),
                    "time": tick(0.1),
                    "step": epoch,
                }
            )
        recs.append(
            {
                "kind": "section_end",
                "n": section,
                "plan": [name, "train", "epoch"],
                "time": tick(60),
            }
        )
    model = _data("model", f"model-{k}", f"/w/{k}/model.pt")
    recs.append(
        {
            "kind": "task_end",
            "n": 3,
            "plan": [name, "train"],
            "time": tick(1),
            "stage": "training",
            "generated": {"model": model},
        }
    )
    n += 1
    evaluate = n
    recs.append(
        {
            "kind": "task_start",
            "n": evaluate,
            "parent": 1,
            "plan": [name, "evaluate"],
            "time": tick(1),
            "stage": "evaluation",
            "used": {"model": model},
        }
    )
    n += 1
    recs.append(
        {
            "kind": "metric",
            "n": n,
            "parent": evaluate,
            "name": "accuracy",
            "value": round(rng.uniform(0.7, 0.95), 4),
            "time": tick(5),
        }
    )
    recs.append(
        {
            "kind": "task_end",
            "n": evaluate,
            "plan": [name, "evaluate"],
            "time": tick(5),
            "stage": "evaluation",
            "status": "failed" if failed else "finished",
            "error": "RuntimeError: CUDA out of memory" if failed else None,
        }
    )
    n += 1
    recs.append(
        {
            "kind": "task_start",
            "n": n,
            "parent": 1,
            "plan": [name, "predict"],
            "time": tick(1),
            "stage": "inference",
            "used": {"model": model, "input": {"rows": k % 17}},
        }
    )
    recs.append(
        {
            "kind": "task_end",
            "n": n,
            "plan": [name, "predict"],
            "time": tick(2),
            "stage": "inference",
            "generated": {f"p{j}": j + k for j in range(3)},
        }
    )
    recs.append(
        {
            "kind": "workflow_end",
            "n": 1,
            "name": name,
            "time": tick(1),
            "status": "failed" if failed else "finished",
        }
    )
    return {
        "provml": 1,
        "batch": f"{rng.getrandbits(128):032x}",
        "session": session,
        "records": recs,
    }


def serving(rng: random.Random, fanout: int, t: float) -> Iterator[dict[str, Any]]:
    """The serving run: ``fanout`` inference tasks, each using model 0 (batches of 10,000
    records, one session)."""
    session = ids.new_session_id(int(t * 1000))
    model = _data("model", "model-0", "/w/0/model.pt")
    recs: list[dict[str, Any]] = [
        {"kind": "workflow_start", "n": 1, "name": "batch-score", "time": t, "user": "svc"}
    ]
    for j in range(fanout):
        n = j + 2
        when = round(t + 1 + j * 0.01, 3)
        recs.append(
            {
                "kind": "task_start",
                "n": n,
                "parent": 1,
                "plan": ["batch-score", "predict"],
                "time": when,
                "stage": "inference",
                "used": {"model": model, "input": {"row": j}},
            }
        )
        recs.append(
            {
                "kind": "task_end",
                "n": n,
                "plan": ["batch-score", "predict"],
                "time": when,
                "stage": "inference",
                "generated": {"score": j},
            }
        )
        if len(recs) >= 10_000:
            yield {
                "provml": 1,
                "batch": f"{rng.getrandbits(128):032x}",
                "session": session,
                "records": recs,
            }
            recs = []
    recs.append(
        {
            "kind": "workflow_end",
            "n": 1,
            "name": "batch-score",
            "time": round(t + 2 + fanout * 0.01, 3),
        }
    )
    yield {
        "provml": 1,
        "batch": f"{rng.getrandbits(128):032x}",
        "session": session,
        "records": recs,
    }


def build(where: Path, runs: int, fanout: int, seed: int) -> dict[str, Any]:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    rng = random.Random(seed)
    store = OxigraphStore(str(where / "oxigraph"))
    manager = Manager(store)
    started = time.perf_counter()
    t = START
    for k in range(runs):
        t += rng.uniform(600, 5400)
        manager.apply(resolve_batch(wire.validate_batch(one_run(rng, k, t))))
        if k and k % 1000 == 0:
            print(f"  {k:,} runs, {time.perf_counter() - started:.0f} s", flush=True)
    for batch in serving(rng, fanout, t + 3600):
        manager.apply(resolve_batch(wire.validate_batch(batch)))
    triples = len(store._store)
    store.close()
    meta = {
        "version": VERSION,
        "runs": runs,
        "fanout": fanout,
        "seed": seed,
        "triples": triples,
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (where / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--fanout", type=int, default=48_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeats", type=int, default=30, help="requests per endpoint per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--store", default=str(BENCH / ".data" / "web-api"))
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--build-only", action="store_true", help="build the store, time nothing")
    p.add_argument("--json", default=str(BENCH / "results" / "web_api.json"))
    args = p.parse_args(argv)
    where = Path(args.store)
    wanted = {"version": VERSION, "runs": args.runs, "fanout": args.fanout, "seed": args.seed}
    meta_file = where / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if args.rebuild or {k: meta.get(k) for k in wanted} != wanted:
        print(f"building {args.runs:,} runs and a fan-out of {args.fanout:,} in {where} …")
        meta = build(where, args.runs, args.fanout, args.seed)
    print(f"store: {meta['triples']:,} triples (built in {meta['build_seconds']} s)")
    if args.build_only:
        return 0
    gc.collect()
    store = OxigraphStore(str(where / "oxigraph"))
    app = create_app({"store": store})
    client = app.test_client()

    def get(path: str, **params: Any) -> Any:
        r = client.get(path, query_string=params)
        assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
        return r.json

    def page(path: str, **params: Any) -> str:
        r = client.get(path, query_string=params)
        assert r.status_code == 200 and r.mimetype == "text/html", (path, r.status_code)
        return r.text

    first = get("/api/v1/runs", limit=50)
    assert first["total"] == args.runs + 1, first["total"]
    all_ids = [r["id"] for r in get("/api/v1/runs", limit=1000, offset=2000)["runs"]]
    rng = random.Random(1)
    serving_model = sha("model-0")
    cases: dict[str, Callable[[], Any]] = {
        "runs: first page": lambda: get("/api/v1/runs"),
        "runs: workflow + user": lambda: get(
            "/api/v1/runs", workflow=rng.choice(WORKFLOWS), user=rng.choice(USERS)
        ),
        "runs: status=failed": lambda: get("/api/v1/runs", status="failed"),
        "runs: lr range": lambda: get("/api/v1/runs", param="lr:0.01..0.1"),
        "runs: metric range": lambda: get("/api/v1/runs", metric="accuracy:0.9.."),
        "runs: used raw file": lambda: get("/api/v1/runs", used=sha(f"raw-{rng.randrange(10)}")),
        "runs: sort -duration, page 20": lambda: get("/api/v1/runs", sort="-duration", offset=1000),
        "run page": lambda: get(f"/api/v1/runs/{rng.choice(all_ids)}"),
        "search: hash prefix": lambda: get(
            "/api/v1/search", q=sha(f"model-{rng.randrange(args.runs)}")[:10]
        ),
        "search: text": lambda: get(
            "/api/v1/search", q=rng.choice(["fraud", "user1", "clean", "model.pt"])
        ),
        "lineage: model both depth 2": lambda: get(
            "/api/v1/lineage", node=sha(f"model-{rng.randrange(1, args.runs)}"), depth=2
        ),
        "lineage: raw file down depth 2": lambda: get(
            "/api/v1/lineage", node=sha(f"raw-{rng.randrange(10)}"), direction="down", depth=2
        ),
        f"lineage: model used by {args.fanout:,} (fold)": lambda: get(
            "/api/v1/lineage", node=serving_model, direction="down", depth=2
        ),
        "page /: runs, first screen": lambda: page("/"),
        "page /runs/<id>": lambda: page(f"/runs/{rng.choice(all_ids)}"),
        "page /lineage: a model, both, depth 2": lambda: page(
            "/lineage", node=sha(f"model-{rng.randrange(1, args.runs)}"), depth=2
        ),
        "lineage/fold: a page of 100": lambda: get(
            "/api/v1/lineage/fold",
            node=serving_model,
            relation="used",
            type="task",
            direction="down",
            offset=rng.randrange(40_000),
            limit=100,
        ),
    }
    fold = get("/api/v1/lineage", node=serving_model, direction="down", depth=2)
    folds = [(n["fold"]["relation"], n["type"], n["count"]) for n in fold["nodes"] if "fold" in n]
    print(f"the fan-out's folds: {folds}")
    for fn in cases.values():  # warm
        fn()
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name, fn in cases.items():
            ms = [timed(fn) for _ in range(args.repeats)]
            rounds[name].append((percentile(ms, 50), percentile(ms, 95)))
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    results = {
        name: {
            "p50_ms": round(statistics.median(a for a, _ in v), 1),
            "p95_ms": round(statistics.median(b for _, b in v), 1),
        }
        for name, v in rounds.items()
    }
    width = max(len(n) for n in results)
    print(f"\n{'endpoint':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}")
    for name, v in results.items():
        print(f"{name:<{width}}  {v['p50_ms']:>8.1f}  {v['p95_ms']:>8.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "store": meta,
                "repeats": args.repeats,
                "rounds": args.rounds,
                "folds": folds,
                "results": results,
            },
            indent=1,
        )
        + "\n"
    )
    from provml.server import close_app

    close_app(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
