"""The site the browser tests drive: a real provml app (tracker, manager, query) served by
waitress on a free port, over an embedded on-disk store, filled by capture_lib:

- the question tests' scenario (tests/query/scenario.py: curation runs, four runs of an
  experiment, one of which failed, a fine-tuned model, a serving workflow whose feature
  code changed), captured in disk mode and loaded through the manager;
- the scikit-learn demo (examples/sklearn_demo.py), captured over HTTP;
- a small hand-made workflow, over HTTP: an ETL whose last step fails with an error,
  with a metric logged per epoch, and a serving run making :data:`FANOUT` predictions
  with the demo's model (a fan-out the lineage view folds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import capture_lib as cl
from manager.service import Manager
from provml.core.resolve import resolve_batch
from provml.core.wire import parse_batch
from provml.offline import expand, read_lines
from provml.server import build_app, store_url
from tests.cli.conftest import LiveServer
from tests.query import scenario

#: predictions the serving run makes with the demo's model (over the fold of 10 used)
FANOUT = 36
#: the runs in the store once everything is loaded
RUNS = 8 + 1 + 2


@dataclass
class Site:
    server: LiveServer
    url: str
    scenario: scenario.Scenario
    demo: Any
    etl_run: str = ""
    serve_run: str = ""
    sha: dict[str, str] = field(default_factory=dict)

    def api(self, path: str, **params: Any) -> Any:
        resp = requests.get(self.url + path, params=params, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _etl(tmp: Path, site: Site) -> None:
    raw = tmp / "events.jsonl"
    raw.write_text('{"user": 1, "clicks": 3}\n{"user": 2, "clicks": 5}\n')
    table = tmp / "events.parquet"
    try:
        with cl.workflow("nightly-etl", params={"window": "24h", "owner": "data-eng"}) as wf:
            site.etl_run = wf.iri
            with wf.task("extract", used={"events": cl.dataset(raw, source="clickstream")},
                         params={"format": "jsonl"}) as t:  # fmt: skip
                table.write_bytes(b"PAR1 table of events")
                t.generated(table=cl.dataset(table, version="2026-12-03"))
            with wf.task("aggregate", used={"table": cl.dataset(table)},
                         params={"epochs": 4, "lr": 0.3}) as t:  # fmt: skip
                for epoch in range(4):
                    t.metric("loss", round(1.2 / (epoch + 1), 3), step=epoch)
            with wf.task("publish", used={"table": cl.dataset(table)}):
                raise ConnectionError("warehouse refused the connection (port 5439)")
    except ConnectionError:
        pass


def _serve(site: Site) -> None:
    model = cl.model(site.demo.model_path)
    with cl.workflow("scoring-service") as wf:
        site.serve_run = wf.iri
        for i in range(FANOUT):
            cl.inference(model=model, inputs={"row": i}, outputs={"label": i % 2}, workflow=wf)


def _load_logs(app: Any, logs: Path) -> None:
    manager: Manager = app.extensions["provml.manager"]
    for f in expand([str(logs)]):
        for line in read_lines(f):
            assert line.error is None, line.error
            manager.apply(resolve_batch(parse_batch(line.body)))


def build(tmp: Path) -> Site:
    from examples import sklearn_demo

    app = build_app(store=store_url(str(tmp / "data")), queue_dir=str(tmp / "queue"))
    server = LiveServer(app)
    try:
        (tmp / "scenario").mkdir()
        story = scenario.build(tmp / "scenario")
        _load_logs(app, story.logs)
        cl.init(url=server.url, mode="http", path=str(tmp / "spool"), user="dana")
        demo = sklearn_demo.run(str(tmp / "demo"), predictions=3)
        site = Site(server=server, url=server.url, scenario=story, demo=demo)
        _etl(tmp, site)
        _serve(site)
        assert cl.flush(30)
        assert cl.stats()["lost"] == {}, cl.stats()
        cl.shutdown()
        _wait_for_runs(site, RUNS)
        site.sha["model"] = demo.model_sha256
        site.sha["train"] = demo.train_sha256
        return site
    except BaseException:
        server.stop()
        raise


def _wait_for_runs(site: Site, expected: int, timeout: float = 60) -> None:
    """Until the tracker has forwarded everything captured over HTTP to the manager."""
    deadline = time.monotonic() + timeout
    found = -1
    while time.monotonic() < deadline:
        runs = site.api("/api/v1/questions/runs", limit=1000)["results"]["bindings"]
        found = len(runs)
        if found >= expected and all("ended" in r for r in runs):
            return
        time.sleep(0.2)
    raise AssertionError(f"{found} runs in the store after {timeout} s, expected {expected}")
