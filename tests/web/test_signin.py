"""Signing in with a real browser (docs/web.md, "Signing in"): a page opened without a
token goes to the sign-in page; a wrong token is said so; a read token brings the
browser back to the page it asked for, in a cookie no script of the page can read."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from provml.web.auth import Tokens, parse
from tests.web.conftest import Browser, assert_readable, browser_on, own_server

READ = "read-" + "k3Jq9Vx2Lm8Rt5Wz1Np4Hs7Dc0Fg6Yb"
CAPTURE = "cap-" + "u7Ei2Oa9Qw3Zx5Cv8Bn1Ml4Kj6Hg0Tr"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tokens = Tokens(parse(f"{READ} read reader\n{CAPTURE} capture bot\n", "test"))
    with own_server(tmp_path_factory.mktemp("signin"), tokens=tokens) as server:
        yield server


@pytest.fixture(scope="module")
def browser(guarded: SimpleNamespace) -> Iterator[Browser]:
    with browser_on(guarded) as b:
        yield b


def _sign_in(browser: Browser, token: str) -> None:
    field = browser.css("#token")
    field.clear()
    field.send_keys(token)
    from selenium.webdriver.support import expected_conditions as ec

    button = browser.css("form button[type=submit]")
    button.click()
    # the answer is a new page: wait until the form that was sent is gone, or its old
    # alert would be read as the new one's
    browser.wait(ec.staleness_of(button))
    browser.wait(lambda d: d.execute_script("return document.readyState") == "complete")


def test_a_page_without_a_token_goes_to_sign_in_and_back(browser: Browser) -> None:
    browser.open("/search?q=train")
    assert "/signin" in browser.driver.current_url
    assert browser.css("h1").text == "Sign in"
    assert browser.driver.switch_to.active_element.get_attribute("id") == "token"
    assert_readable(browser)
    browser.screenshot("signin")
    _sign_in(browser, "not-a-token")
    assert "not valid" in browser.css("[role=alert]").text
    _sign_in(browser, CAPTURE)  # may capture, may not read
    assert "read scope" in browser.css("[role=alert]").text
    browser.errors()  # the 401 and 403 answers of the form are logged as failed loads
    _sign_in(browser, READ)
    browser.wait(lambda d: "/search" in d.current_url)
    assert "q=train" in browser.driver.current_url
    # the cookie is HttpOnly: no script of the page sees the token
    assert READ not in browser.driver.execute_script("return document.cookie")
    browser.open("/")
    assert "/signin" not in browser.driver.current_url
    assert browser.css("h1").text


def test_sign_out_asks_again(browser: Browser) -> None:
    browser.open("/")
    browser.css("form.signout button").click()
    browser.wait(lambda d: "/signin" in d.current_url)
    browser.open("/")
    assert "/signin" in browser.driver.current_url
