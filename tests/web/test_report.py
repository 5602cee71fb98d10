"""``provml report``: one run as a single self-contained HTML file (docs/web.md,
"Reports"), read in a real browser from disk, with no server behind it."""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path

import requests

from manager.service import Manager
from manager.store.oxigraph import OxigraphStore
from provml.core.resolve import resolve_batch
from provml.core.vocab import PROVML_NS
from provml.core.wire import validate_batch
from tests.conftest import full_records, make_batch, provml_cmd
from tests.web.conftest import Browser
from tests.web.site import Site


def _report(site: Site, run: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        provml_cmd("report", "--run", run, "--url", site.url, "-o", str(out)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_report_holds_everything_it_shows(site: Site) -> None:
    resp = requests.get(site.url + "/report", params={"run": site.etl_run}, timeout=60)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    body = resp.text
    # nothing to fetch: no script, style sheet or image by URL
    assert "<script src" not in body and 'rel="stylesheet"' not in body and "<img" not in body
    assert "cytoscape" in body and "uPlot" in body  # the libraries, inline
    assert "warehouse refused the connection" in body  # the failure
    for task in ("extract", "aggregate", "publish"):
        assert task in body


def test_report_errors_are_json_and_messages(site: Site, tmp_path: Path) -> None:
    resp = requests.get(site.url + "/report", timeout=30)
    assert resp.status_code == 400
    done = _report(site, "ffffffff-0000-7000-8000-000000000000", tmp_path / "r.html")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "run" in done.stderr.lower()
    assert not (tmp_path / "r.html").exists()


def test_the_report_file_opens_without_a_server(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    done = _report(site, site.etl_run, out)
    assert done.returncode == 0, done.stderr
    assert "self-contained" in done.stdout
    record = site.api("/api/v1/runs/" + site.etl_run.rsplit("/", 1)[-1])
    driver = browser.driver
    driver.get(out.as_uri())
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")
    browser.wait_ready()  # the DAG, drawn from the data inside the file
    assert browser.css("#dag").get_attribute("data-ready") == "true"
    rows = browser.all("#task-table tbody tr")
    assert len(rows) == len(record["tasks"]) == 3
    assert browser.all(".chart[data-metric=loss] canvas"), "the loss plot is drawn"
    assert "warehouse refused the connection" in browser.css("#failures + .table-wrap").text
    browser.screenshot("report")


def test_report_from_a_data_directory(tmp_path: Path) -> None:
    """``--data-dir``: the same page, straight from an embedded store, no server."""
    data = tmp_path / "data"
    store = OxigraphStore(str(data / "store"))
    Manager(store).apply(resolve_batch(validate_batch(make_batch(full_records()))))
    found = store.query(f"SELECT ?r WHERE {{ ?r a <{PROVML_NS}WorkflowExecution> }}")
    run = next(iter(found))["r"].value
    store.close()
    del store, found
    gc.collect()  # the store's lock goes with the last reference to it
    out = tmp_path / "r.html"
    done = subprocess.run(
        provml_cmd("report", "--run", run, "--data-dir", str(data), "-o", str(out)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "<script src" not in out.read_text()
