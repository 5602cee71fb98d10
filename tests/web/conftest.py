"""The browser tests' fixtures: one site for the whole session (tests/web/site.py), one
headless Chromium per test module (selenium, Debian's chromium and chromium-driver,
which ``make test`` installs), and the checks every page gets: no SEVERE console entry,
a screenshot under ``test-output/screenshots/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.web.site import Site, build

SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not Path(CHROMEDRIVER).exists() or not Path(CHROMIUM).exists():
        return (
            "chromium and chromium-driver are not installed (make test installs them: "
            "apt-get install chromium chromium-driver)"
        )
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _missing()
    for item in items:
        if "tests/web/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
            if reason and "browser" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = build(tmp_path_factory.mktemp("web-site"))
    yield s
    s.server.stop()


class Browser:
    """One headless Chromium, with the checks every page gets."""

    def __init__(self, site: Site) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,900",
            "--force-color-profile=srgb",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver: Any = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)
        self.site = site

    def open(self, path: str, shot: str | None = None) -> Any:
        """Load ``path`` of the site, wait for it (and its graph, if it has one)."""
        self.driver.get(self.site.url + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")
        if self.driver.find_elements("css selector", "#graph, #dag"):
            self.wait_ready()
        if shot:
            self.screenshot(shot)
        return self.driver

    def wait(self, condition: Any, timeout: float = 15) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def wait_ready(self) -> None:
        self.wait(lambda d: d.execute_script(
            "var g = document.querySelector('#graph, #dag');"
            "return !g || g.getAttribute('data-ready') === 'true'"))  # fmt: skip

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return list(self.driver.find_elements("css selector", selector))

    def texts(self, selector: str) -> list[str]:
        return [e.text for e in self.all(selector)]

    def errors(self) -> list[dict[str, Any]]:
        """The console's SEVERE entries since the last call."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def screenshot(self, name: str) -> Path:
        """The whole page (up to 6,000 px high) as ``test-output/screenshots/<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script(
            "return Math.min(6000, document.documentElement.scrollHeight)"
        )
        # the window is the page's height and the browser's own bar (~140 px, headless too)
        self.driver.set_window_size(1280, max(900, int(height) + 140))
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.wait_ready()
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        return path

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    b = Browser(site)
    yield b
    b.quit()


@pytest.fixture(autouse=True)
def _no_console_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every browser test fails on a SEVERE console entry (a script error, a failed
    load) made while it ran."""
    if "browser" not in request.fixturenames:
        yield
        return
    b: Browser = request.getfixturevalue("browser")
    b.errors()  # what an earlier test left
    yield
    severe = b.errors()
    assert not severe, f"console errors: {severe}"


#: the contrast of each element's text against the background it is drawn on, in JS
CONTRAST_JS = """
function rgb(c) { var m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; }
function lum(c) { var v = c.slice(0, 3).map(function (x) { x /= 255;
  return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
function background(el) {
  for (var e = el; e; e = e.parentElement) {
    var c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0.5) return c;
  }
  return [255, 255, 255, 1];
}
var out = [];
document.querySelectorAll(arguments[0]).forEach(function (el) {
  if (!el.offsetParent || !el.textContent.trim()) return;
  var fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
  var ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  out.push([el.tagName + '.' + el.className + ' ' + el.textContent.trim().slice(0, 30), ratio]);
});
return out;
"""

#: the main text elements whose contrast the tests check
TEXT = (
    "body, h1, h2, h3, p, th, td, a, label, dt, dd, .hint, .muted, .status, button, "
    ".verdict, caption, figcaption"
)


def contrast(browser: Browser, selector: str = TEXT) -> list[tuple[str, float]]:
    return [(what, ratio) for what, ratio in browser.driver.execute_script(CONTRAST_JS, selector)]


def assert_readable(browser: Browser) -> None:
    ratios = contrast(browser)
    assert ratios, "no text found to check"
    low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
    assert not low, f"text under 4.5:1 contrast: {low[:10]}"


def tab_through(browser: Browser, presses: int = 40) -> list[dict[str, Any]]:
    """Press Tab ``presses`` times from the top of the page; what had focus after each,
    and whether its focus was visible (an outline of 2 px or more, or a box shadow)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.driver.execute_script("document.activeElement && document.activeElement.blur();"
                                  "window.scrollTo(0, 0)")  # fmt: skip
    seen = []
    for _ in range(presses):
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        seen.append(browser.driver.execute_script("""
            var e = document.activeElement, s = getComputedStyle(e);
            return {tag: e.tagName, id: e.id, name: e.getAttribute('name'),
                    href: e.getAttribute('href'),
                    text: (e.textContent || '').trim().slice(0, 40),
                    visible: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2)
                             || s.boxShadow !== 'none'};"""))  # fmt: skip
    return seen


@contextmanager
def own_server(tmp: Path, prefix: str = "", **build: Any) -> Iterator[SimpleNamespace]:
    """A server of its own (``build_app(**build)``, an embedded store in ``tmp``) for a
    module that needs other settings than the shared site: ``url`` (under ``prefix``),
    ``root`` (the server's own), ``app``."""
    from provml.server import build_app, store_url
    from tests.cli.conftest import LiveServer

    app = build_app(store=store_url(str(tmp / "data")), queue_dir=str(tmp / "q"), **build)
    server = LiveServer(app)
    try:
        yield SimpleNamespace(url=server.url + prefix, root=server.url, app=app)
    finally:
        server.stop()


@contextmanager
def browser_on(target: Any) -> Iterator[Browser]:
    """A headless Chromium opening ``target.url``'s pages."""
    b = Browser(target)
    try:
        yield b
    finally:
        b.quit()
