"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real uvicorn
server on 127.0.0.1, on the digest's known day (tests/webdata.py). Nothing may break the page's
Content-Security-Policy (a violation is a console error), and no post's text may run.

Skipped when Chromium or Playwright is not installed (Debian: `apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from listener.store import Store
from listener.web import create_app
from tests.webdata import NOW, build

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, ids) of the dashboard served by uvicorn in a thread."""
    import uvicorn

    config, ids = build(tmp_path_factory.mktemp("web"))
    app = create_app(config, lambda: Store(config.database.path), secret_key="browser-test", clock=lambda: NOW)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.problems = []  # console errors (a CSP violation is one) and uncaught exceptions
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    yield pg
    context.close()


def chart_ready(page, selector: str) -> None:
    page.wait_for_selector(f"{selector}[data-ready='true'] canvas", timeout=5000)


def test_the_overview_loads_with_its_sparklines_and_a_topic_chart_draws(site, page):
    base, _ = site
    page.goto(base + "/")
    assert page.locator("tr.topic-row").count() == 2
    assert page.locator("tr[data-topic='acme'] svg.spark polyline").count() == 1
    page.click("text=acme >> nth=1")  # the topic's link in the table (the first is in the menu)
    page.wait_for_url("**/topic/acme")
    chart_ready(page, "#chart-hourly")
    chart_ready(page, "#chart-net")
    assert int(page.get_attribute("#chart-hourly", "data-total")) > 0
    assert page.problems == []


def test_the_stream_filters_by_hashtag(site, page):
    base, _ = site
    page.goto(base + "/mentions")
    page.locator("a.hashtag", has_text="#fail").first.click()
    page.wait_for_url("**/mentions?hashtag=fail")
    articles = page.locator("article.mention")
    assert articles.count() == 6
    for i in range(articles.count()):
        assert "#fail" in articles.nth(i).locator("footer").inner_text()
    page.fill("input[name=q]", "support")
    page.click("form.filters button")
    page.wait_for_url("**q=support**")
    assert page.locator("article.mention").count() == 1
    assert page.problems == []


def test_an_incident_opens_from_the_overview_with_its_curve(site, page):
    base, ids = site
    page.goto(base + "/")
    page.click(f"a[href='/incident/{ids['incident']}']")
    page.wait_for_url(f"**/incident/{ids['incident']}")
    chart_ready(page, "#chart-incident")
    assert page.get_attribute("#chart-incident", "data-total") == "6"
    assert "Acme support ignored me for a week" in page.inner_text("main")
    assert "[listener] FIRING acme #fail" in page.inner_text("table.notifications")
    assert page.problems == []


def test_a_hostile_post_is_text_in_the_browser(site, page):
    base, ids = site
    page.goto(base + "/mentions?hashtag=pwn")
    text = page.inner_text(f"#mention-{ids['hostile']}")
    assert "<script>window.pwned=true</script> [/] [bold red]x[/]" in text
    assert page.evaluate("window.pwned === undefined")
    hrefs = page.eval_on_selector_all("[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.lower().startswith(("javascript", "data"))]
    assert page.problems == []


def test_correct_a_label_and_see_the_chart_change(site, page):
    base, ids = site
    day = base + "/topic/acme?from=2026-11-21&to=2026-11-21"
    page.goto(day)
    chart_ready(page, "#chart-hourly")
    negative, positive = (int(page.get_attribute("#chart-hourly", f"data-{s}")) for s in ("negative", "positive"))
    page.goto(base + "/mentions?q=%22Nice%20one%22")
    article = page.locator(f"#mention-{ids['Nice one acme']}")
    article.locator("button[value=negative]").click()
    page.wait_for_selector(f"#mention-{ids['Nice one acme']} .corrected")
    assert "corrected to negative" in page.inner_text(f"#mention-{ids['Nice one acme']}")
    page.goto(day)
    chart_ready(page, "#chart-hourly")
    assert int(page.get_attribute("#chart-hourly", "data-negative")) == negative + 1
    assert int(page.get_attribute("#chart-hourly", "data-positive")) == positive - 1
    assert page.problems == []
