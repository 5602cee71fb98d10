"""The runs page, a run's page, the comparison and search in a real browser: what they
show of the captured runs, the filters, sort and paging, comparing runs, and the
keyboard and contrast checks of the main pages."""

from __future__ import annotations

from urllib.parse import quote

from tests.web.conftest import Browser, assert_readable, tab_through
from tests.web.site import RUNS, Site


def _id(iri: str) -> str:
    return iri.rsplit("/", 1)[-1]


def _workflows(browser: Browser) -> list[str]:
    return [t.split()[0] for t in browser.texts("#runs tbody td:nth-child(2)")]


def test_the_runs_page_lists_every_run(browser: Browser, site: Site) -> None:
    browser.open("/", shot="runs")
    names = _workflows(browser)
    assert len(names) == RUNS
    assert {"breast-cancer-classifier", "credit-model", "nightly-etl", "scoring-service"} <= set(
        names
    )
    statuses = browser.texts("#runs tbody .status")
    assert statuses.count("failed") == 2  # the run out of memory, the ETL that failed
    # the filters offer every workflow listed and every user who ran one, nothing else
    offered = {
        which: {o.get_attribute("value") for o in browser.all(f"#{which} option")}
        for which in ("workflows", "users")
    }
    assert offered["workflows"] == set(names)
    users = {u for u in browser.texts("#runs tbody td:nth-child(3)") if u}
    assert offered["users"] == users
    assert_readable(browser)


def test_filters_narrow_the_runs(browser: Browser, site: Site) -> None:
    from selenium.webdriver.support.ui import Select

    browser.open("/")
    Select(browser.css("#f-status")).select_by_value("failed")
    browser.css("form.filters button[type=submit]").click()
    browser.wait(lambda d: "status=failed" in d.current_url)
    assert sorted(_workflows(browser)) == ["credit-model", "nightly-etl"]
    browser.screenshot("runs-failed")

    browser.open("/?workflow=credit-model")
    assert _workflows(browser) == ["credit-model"] * 4
    browser.open("/?workflow=credit-model&param=lr:0.05..0.2")
    assert len(_workflows(browser)) == 2  # m1 and m2 (lr 0.1), not m3 (0.01) nor 0.5
    browser.open("/?metric=accuracy:0.85..")  # m2's evaluation (0.86), the demo's
    found = {
        a.get_attribute("href").rsplit("/", 1)[-1]
        for a in browser.all("#runs tbody td:nth-child(2) a")
    }
    assert _id(site.scenario.iri["m2-run"]) in found
    assert _id(site.scenario.iri["m1-run"]) not in found
    browser.open(f"/?used={site.scenario.sha['raw-b']}")
    assert _workflows(browser) == ["curation"]  # the merge read the survey
    browser.open("/?since=2999-01-01T00:00:00Z")
    assert browser.texts("#runs tbody tr") == ["No runs match."]


def test_sort_and_paging(browser: Browser, site: Site) -> None:
    browser.open("/?limit=5")
    first = browser.texts("#runs tbody tr")
    assert len(first) == 5
    browser.css("a[rel=next]").click()
    browser.wait(lambda d: "offset=5" in d.current_url)
    second = browser.texts("#runs tbody tr")
    assert len(second) == 5 and not set(first) & set(second)
    browser.css("a[rel=prev]").click()
    browser.wait(lambda d: "offset=0" in d.current_url)
    assert browser.texts("#runs tbody tr") == first
    browser.open("/?sort=workflow")
    names = _workflows(browser)
    assert names == sorted(names)
    browser.css("#runs thead a[href*='sort=duration']").click()
    browser.wait(lambda d: "sort=duration" in d.current_url)
    assert len(browser.texts("#runs tbody tr")) == RUNS


def test_the_demo_run_page(browser: Browser, site: Site) -> None:
    run = _id(site.api("/api/v1/runs", workflow="breast-cancer-classifier")["runs"][0]["run"])
    browser.open(f"/runs/{run}", shot="run-demo")
    tasks = [t.split()[0] for t in browser.texts("#task-table tbody td:first-child")]
    assert tasks[:4] == ["curate", "split", "train", "evaluate"] and tasks.count("predict") == 3
    dag = browser.driver.execute_script(
        "return [provmlDag.nodes().length, provmlDag.edges().length]"
    )
    assert dag[0] == len(tasks) and dag[1] >= 4  # curate→split→train→evaluate, train→predict…
    assert len(browser.all(".timeline .bar")) == len(tasks)
    charts = browser.all(".chart[data-metric] canvas")
    assert {c.get_attribute("data-metric") for c in browser.all(".chart[data-metric]")} == {
        "accuracy",
        "loss",
    } and len(charts) == 2
    scalar = browser.texts("#scalar-metrics tbody td:nth-child(2)")
    assert {"accuracy", "f1", "rows"} <= set(scalar)
    produced = browser.css("#io-table").text
    assert site.demo.model_sha256[:12] in produced and site.demo.train_sha256[:12] in produced
    assert browser.css("#environment + dl").text  # something of where it ran
    assert_readable(browser)


def test_a_failed_run_shows_its_failure_and_metrics(browser: Browser, site: Site) -> None:
    browser.open(f"/runs/{_id(site.etl_run)}", shot="run-failed")
    assert "failed" in browser.css("dl.facts").text
    failures = browser.texts("#failures ~ .table-wrap tbody tr")
    assert failures and "publish" in failures[0] and "warehouse refused" in failures[0]
    assert [c.get_attribute("data-metric") for c in browser.all(".chart")] == ["loss"]
    rows = browser.driver.execute_script(
        "return document.querySelectorAll('.plot details tbody tr').length"
    )
    assert rows == 4  # loss at steps 0-3


def test_compare_highlights_differences(browser: Browser, site: Site) -> None:
    s = site.scenario
    ids = [_id(s.iri[f"{m}-run"]) for m in ("m1", "m2", "m3")]
    browser.open("/compare?runs=" + quote(",".join(ids)), shot="compare")

    def row(name: str) -> list[str]:
        for tr in browser.all("#compare tbody tr"):
            if tr.find_element("css selector", "th").text.startswith(name):
                cells = tr.find_elements("css selector", "td")
                return ["diff" if "diff" in (c.get_attribute("class") or "") else "" for c in cells]
        raise AssertionError(f"no row {name}")

    assert row("train · lr") == ["", "", "diff"]  # m3's 0.01 against m1's 0.1
    assert row("train · epochs") == ["", "", ""]
    assert row("evaluate · accuracy") == ["", "diff", "diff"]
    same = len(browser.all("#compare tbody tr[data-differs=false]"))
    assert same > 0
    browser.css("#diff-only").click()
    visible = [tr for tr in browser.all("#compare tbody tr") if tr.is_displayed()]
    assert visible and all(tr.get_attribute("data-differs") == "true" for tr in visible)
    assert {c.get_attribute("data-metric") for c in browser.all(".chart")} == {"accuracy", "loss"}
    legend = browser.texts(".chart .u-legend .u-series .u-label")
    assert sum(label.endswith("· train") for label in legend) == 2 * 3  # a curve per run
    # another baseline: m3's lr is the reference now
    from selenium.webdriver.support.ui import Select

    Select(browser.css("#c-baseline")).select_by_index(2)
    browser.css("#compare-controls button").click()
    browser.wait(lambda d: "baseline=2" in d.current_url)
    assert row("train · lr") == ["diff", "diff", ""]
    assert_readable(browser)


def test_runs_are_compared_from_the_runs_page(browser: Browser, site: Site) -> None:
    browser.open("/?workflow=credit-model")
    boxes = browser.all("#runs tbody input[type=checkbox]")
    boxes[0].click()
    boxes[1].click()
    browser.css("#compare-selected").click()
    browser.wait(lambda d: "/compare" in d.current_url)
    assert len(browser.all("#compare thead th")) == 3


def test_search_from_the_header(browser: Browser, site: Site) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.open("/")
    box = browser.css("#site-search")
    box.send_keys("credit", Keys.ENTER)
    browser.wait(lambda d: "/search" in d.current_url)
    browser.screenshot("search")
    found = dict(zip(browser.texts("#results tbody td:first-child"),
                     browser.texts("#results tbody td:nth-child(2)"), strict=True))  # fmt: skip
    assert found["credit-model"] == "workflow"  # the 4 runs of the experiment
    assert found["credit-clean"] == "data"
    browser.open(f"/search?q={site.demo.model_sha256[:10]}")
    rows = browser.texts("#results tbody tr")
    assert any("model" in r for r in rows)
    browser.css("#results tbody a").click()
    browser.wait(lambda d: "/models/" in d.current_url)
    browser.open("/search?q=nothing-is-called-this")
    assert "Nothing matches" in browser.css("#no-results").text
    assert_readable(browser)


def test_the_keyboard_reaches_search_filters_and_links(browser: Browser, site: Site) -> None:
    browser.open("/")
    seen = tab_through(browser, 40)
    ids = [s["id"] for s in seen]
    assert "site-search" in ids
    for field in ("f-q", "f-workflow", "f-status", "f-since", "f-used", "f-sort"):
        assert field in ids, f"Tab never reaches {field}: {ids}"
    assert any(s["tag"] == "A" and "/runs/" in (s["href"] or "") for s in seen)
    invisible = [s for s in seen if not s["visible"]]
    assert not invisible, f"focus not visible on {invisible[:5]}"
