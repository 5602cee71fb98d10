"""The lineage page in a real browser: the graph and its table, expanding a node, a
folded fan-out opened and paged, the selected path alone, the exports; and never an
edge that is not in the graph."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from tests.web.conftest import Browser, assert_readable, tab_through
from tests.web.site import Site

PROV = "http://www.w3.org/ns/prov#"
PROVML = "https://provml.dev/ns#"


def _edges(browser: Browser) -> list[tuple[str, str, str]]:
    """The edges table, read at once (the page redraws it as the view changes)."""
    rows = browser.driver.execute_script("""
        return Array.from(document.querySelectorAll('#edges tbody tr')).map(function (tr) {
          return [tr.getAttribute('data-source'), tr.cells[1].textContent,
                  tr.getAttribute('data-target')]; });""")  # fmt: skip
    return [tuple(r) for r in rows]


def _nodes(browser: Browser) -> list[str]:
    ids: list[str] = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('#nodes tbody tr'))"
        ".map(function (tr) { return tr.getAttribute('data-id'); })"
    )
    return ids


def assert_all_real(site: Site, edges: list[tuple[str, str, str]]) -> None:
    """Every edge the page shows is a statement of the store (a folded node's edges
    are checked when it opens: its members are real nodes)."""
    for source, relation, target in edges:
        if source.startswith("fold:") or target.startswith("fold:"):
            continue
        ns = PROVML if relation == "partOf" else PROV
        ask = f"ASK {{ <{source}> <{ns}{relation}> <{target}> }}"
        accept = {"Accept": "application/sparql-results+json"}
        resp = requests.post(site.url + "/sparql", data={"query": ask}, headers=accept, timeout=30)
        assert resp.json()["boolean"], f"the page shows an edge the graph does not have: {ask}"


def test_the_lineage_of_a_model_as_graph_and_table(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=up&depth=3", shot="lineage-up")
    nodes = _nodes(browser)
    drawn = browser.driver.execute_script("return provmlCy.nodes(':visible').length")
    assert drawn == len(nodes) > 3
    table = browser.css("#nodes").text
    assert site.demo.train_sha256[:12] in table  # train.csv, two levels up
    kinds = set(browser.texts("#nodes tbody td:nth-child(2)"))
    assert {"entity", "activity"} <= kinds
    edges = _edges(browser)
    assert edges and all(s in nodes and t in nodes for s, _, t in edges)
    assert_all_real(site, edges)
    assert_readable(browser)


def test_prov_shapes_and_colours(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=both&depth=2")
    styles = browser.driver.execute_script("""
        var out = {};
        provmlCy.nodes().forEach(function (n) {
          out[n.data('kind')] = [n.style('shape'), n.style('background-color')]; });
        return out;""")  # fmt: skip
    assert styles["entity"] == ["ellipse", "rgb(255,252,135)"]
    assert styles["activity"] == ["rectangle", "rgb(159,177,252)"]
    if "agent" in styles:
        assert styles["agent"] == ["pentagon", "rgb(254,211,127)"]


def test_a_node_expands(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=up&depth=1")
    before = set(_nodes(browser))
    # the training task, one level up: expanding it brings what it used
    task = next(
        tr.get_attribute("data-id")
        for tr in browser.all("#nodes tbody tr")
        if tr.find_elements("css selector", "td")[1].text == "activity"
    )
    browser.css(f'#nodes button[data-select="{task}"]').click()
    browser.css("#expand").click()
    browser.wait(lambda d: len(_nodes(browser)) > len(before))
    browser.wait_ready()
    after = set(_nodes(browser))
    assert before < after
    assert site.demo.train_sha256[:12] in browser.css("#nodes").text
    assert_all_real(site, _edges(browser))
    browser.screenshot("lineage-expanded")


def test_a_fan_out_is_folded_and_pages(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=down&depth=1&fold=10",
                 shot="lineage-folded")  # fmt: skip
    folds = browser.all("#nodes tbody tr[data-fold=true]")
    assert folds, "the model's 40 uses are folded"
    fold_id = folds[0].get_attribute("data-id")
    count = browser.driver.execute_script(
        "return provmlCy.getElementById(arguments[0]).data('count')", fold_id
    )
    assert count >= 36
    drawn = len(_nodes(browser))
    assert drawn < 15  # not every use drawn
    browser.css(f'#nodes button[data-select="{fold_id}"]').click()
    browser.css("#fold-open").click()
    browser.wait(lambda d: "Showing 1–10" in browser.css("#status").text)
    browser.wait_ready()
    first = set(_nodes(browser))
    assert len(first) == drawn + 10
    browser.css("#fold-open").click()  # "Next page"
    browser.wait(lambda d: "Showing 11–20" in browser.css("#status").text)
    browser.wait_ready()
    second = set(_nodes(browser))
    assert len(second) == drawn + 10 and first != second
    assert_all_real(site, _edges(browser))
    browser.screenshot("lineage-fold-open")


def test_selected_path_only(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=up&depth=3")
    everything = set(_nodes(browser))
    train = f"https://provml.dev/id/data/sha256/{site.demo.train_sha256}"
    assert train in everything
    browser.css(f'#nodes button[data-select="{train}"]').click()
    browser.css("#path-only").click()
    browser.wait(lambda d: len(_nodes(browser)) < len(everything))
    path = set(_nodes(browser))
    root = browser.driver.execute_script("return provmlCy.nodes('[root = \"yes\"]').id()")
    assert root in path and train in path
    edges = _edges(browser)
    assert all(s in path and t in path for s, _, t in edges)
    # a path: from the model up to train.csv, every node on it has an edge in the view
    linked = {s for s, _, _ in edges} | {t for _, _, t in edges}
    assert path == linked
    assert_all_real(site, edges)
    browser.screenshot("lineage-path-only")
    browser.css("#path-only").click()
    browser.wait(lambda d: set(_nodes(browser)) == everything)


# the PROV-N export goes through the prov package, whose rdflib warns (an error here)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_exports(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=up&depth=2")
    svg = browser.driver.execute_script("return provmlLineageSvg()")
    assert svg.startswith("<svg") and "<ellipse" in svg and "<rect" in svg
    assert svg.count("<g>") == len(_nodes(browser))
    browser.css("#export-png").click()
    browser.css("#export-svg").click()
    links = {a.text: a.get_attribute("href") for a in browser.all("#graph-tools a[download]")}
    assert set(links) == {"PROV-N", "PROV-JSON", "PROV-XML", "Turtle", "JSON-LD"}
    provn = requests.get(links["PROV-N"], timeout=30)
    assert provn.status_code == 200 and provn.text.startswith("document")
    assert site.demo.model_sha256 in provn.text


def test_a_task_iri_and_a_prefix_are_nodes_too(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256[:10]}")
    assert site.demo.model_sha256 in browser.driver.execute_script(
        "return provmlCy.nodes('[root = \"yes\"]').id()"
    )
    browser.open("/lineage?node=" + quote(site.scenario.iri["m2-train"]) + "&direction=down")
    assert len(_nodes(browser)) > 1


def test_the_keyboard_reaches_the_controls_and_the_nodes(browser: Browser, site: Site) -> None:
    browser.open(f"/lineage?node={site.demo.model_sha256}&direction=up&depth=1")
    seen = tab_through(browser, 30)
    ids = [s["id"] for s in seen]
    for control in ("site-search", "l-node", "l-direction", "l-depth", "path-only", "export-svg"):
        assert control in ids, f"Tab never reaches {control}: {ids}"
    invisible = [s for s in seen if not s["visible"]]
    assert not invisible, f"focus not visible on {invisible[:5]}"
    assert_readable(browser)
