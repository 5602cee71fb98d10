"""The record pages in a real browser: a model (trainings, data with roles,
hyperparameters, evaluations, predictions, the licence and feature-code verdicts), a
dataset (versions, sources, licences, models downstream), a prediction traced to its
model, and the error pages."""

from __future__ import annotations

import requests

from tests.web.conftest import Browser, assert_readable
from tests.web.site import FANOUT, Site


def test_the_demo_model_page_shows_its_record(browser: Browser, site: Site) -> None:
    browser.open(f"/models/{site.demo.model_sha256}", shot="model-demo")
    assert site.demo.model_sha256 in browser.css("h1").text + browser.css("dl.facts").text
    roles = browser.texts(".training-data tbody td:first-child")
    assert roles == ["train"]
    names = browser.texts("section table:not(.training-data) th[scope=row]")
    values = browser.texts("section table:not(.training-data) td")
    hyper = dict(zip(names, values, strict=True))
    assert hyper["alpha"] == "0.0001" and hyper["epochs"] == "8"
    metrics = browser.texts("#evaluations tbody td:first-child")
    assert sorted(metrics) == ["accuracy", "f1"]
    assert "Nothing upstream forbids it" in browser.css("#licence-verdict").text
    # the three predictions of the demo, and the fan-out of the scoring service
    assert len(browser.all("#prediction-table tbody tr")) == 3 + FANOUT
    assert_readable(browser)


def test_a_model_with_a_non_commercial_source_says_no(browser: Browser, site: Site) -> None:
    browser.open(f"/models/{site.scenario.sha['m2']}", shot="model-noncommercial")
    verdict = browser.css("#licence-verdict")
    assert "No, not as the graph stands" in verdict.text and "CC-BY-NC-4.0" in verdict.text
    rows = browser.texts("#licence-table tbody tr")
    assert len(rows) >= 1 and all("CC-BY-NC-4.0" in r for r in rows)
    # served with features.py changed after training
    assert browser.css("#feature-verdict").text.startswith("Yes")
    changed = browser.all("#feature-table tbody tr.diff")
    assert changed, "the changed feature code is highlighted"


def test_a_fine_tuned_model_shows_what_it_was_derived_from(browser: Browser, site: Site) -> None:
    browser.open(f"/models/{site.scenario.sha['m4']}")
    base = browser.css("#derived ~ ul a")
    assert base.text == site.scenario.sha["m2"][:12]
    base.click()
    browser.wait(lambda d: site.scenario.sha["m2"] in d.page_source)
    assert "/models/" + site.scenario.sha["m2"] in browser.driver.current_url


def test_a_dataset_page_lists_versions_sources_and_models(browser: Browser, site: Site) -> None:
    s = site.scenario
    browser.open(f"/datasets/{s.sha['v2']}", shot="dataset")
    versions = browser.texts("#versions tbody tr")
    assert len(versions) == 2  # version 1 and 2 of credit-clean
    assert any("this one" in v for v in versions)
    sources = " ".join(browser.texts("#sources tbody tr"))
    assert s.sha["raw-a"][:12] in sources and s.sha["raw-b"][:12] in sources
    models = " ".join(browser.texts("#downstream-models tbody tr"))
    for name in ("m2", "m3", "m4"):
        assert s.sha[name][:12] in models, name
    assert s.sha["m1"][:12] not in models  # trained on version 1
    assert_readable(browser)


def test_a_source_shows_its_licence(browser: Browser, site: Site) -> None:
    browser.open(f"/datasets/{site.scenario.sha['raw-b']}")
    assert browser.css("#dataset-licence").text == "CC-BY-NC-4.0"


def test_a_prediction_is_traced_to_its_model_data_and_code(browser: Browser, site: Site) -> None:
    prediction = site.demo.predictions[0]
    browser.open(f"/predictions/{prediction}", shot="prediction")
    made = browser.texts("#made-by tbody tr")
    assert len(made) == 1 and site.demo.model_sha256[:12] in made[0]
    trace = browser.css("#trace tbody").text
    assert site.demo.train_sha256[:12] in trace


def test_a_composed_prediction_names_the_prediction_it_came_from(
    browser: Browser, site: Site
) -> None:
    browser.open(f"/predictions/{site.scenario.iri['p3']}")
    upstream = browser.css("#trace tbody td:last-child a")
    assert site.scenario.iri["p1"].endswith(upstream.text)


def test_what_is_not_there_is_a_page_for_a_browser_and_json_for_the_api(
    browser: Browser, site: Site
) -> None:
    browser.open("/models/" + "0" * 64, shot="error-404")
    assert browser.css("h1").text.startswith("404")
    assert "no model" in browser.css(".error-box").text
    browser.errors()  # the 404 itself is logged as a failed load: expected here
    browser.open("/no/such/page")
    assert browser.css("h1").text.startswith("404")
    browser.open("/lineage?node=x&direction=sideways")
    assert browser.css("h1").text.startswith("400")
    browser.errors()
    html = {"Accept": "text/html"}
    api = requests.get(site.url + "/api/v1/models/" + "0" * 64, headers=html, timeout=10)
    assert api.status_code == 404 and api.json()["error"] == "not_found"
    other = requests.get(site.url + "/no/such/page", timeout=10)
    assert other.status_code == 404 and other.json()["error"] == "not_found"
