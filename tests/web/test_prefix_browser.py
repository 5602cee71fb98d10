"""The pages in a real browser behind a path prefix (PROVML_URL_PREFIX, as a reverse
proxy passing the path on): scripts, styles, the graph's expansion and every link stay
under the prefix, with no console error."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.cli.conftest import load
from tests.conftest import SHA_M, full_records, make_batch
from tests.web.conftest import Browser, browser_on, own_server

PREFIX = "/provml"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp = tmp_path_factory.mktemp("prefix-browser")
    with own_server(tmp, PREFIX, config={"PROVML_URL_PREFIX": PREFIX}) as server:
        load(server.app, make_batch(full_records()))
        yield server


@pytest.fixture(scope="module")
def browser(proxied: SimpleNamespace) -> Iterator[Browser]:
    with browser_on(proxied) as b:
        yield b


def test_lineage_under_a_prefix(browser: Browser, proxied: SimpleNamespace) -> None:
    browser.open(f"/lineage?node={SHA_M}&direction=up&depth=1")
    rows = browser.all("#nodes tbody tr")
    links = [a.get_attribute("href") for a in browser.all("a[href]")]
    ours = [u for u in links if u.startswith(proxied.root)]
    assert ours and all(u.startswith(proxied.url + "/") for u in ours), ours
    # expanding the training task fetches /api/v1/lineage under the prefix (a miss would
    # be a console error, and no new row)
    task = next(
        tr.get_attribute("data-id")
        for tr in rows
        if tr.find_elements("css selector", "td")[1].text == "activity"
    )
    browser.css(f'#nodes tr[data-id="{task}"] button[data-select]').click()
    browser.css("#expand").click()
    browser.wait(lambda d: len(browser.all("#nodes tbody tr")) > len(rows))
    browser.open("/")
    assert browser.css("h1").text == "Workflow runs"
