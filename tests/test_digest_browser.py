"""The HTML digest in a real browser: headless Chromium loads it, the charts load, the page is not blank.

Skipped when Chromium is not installed (Debian: `apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from listener.digest import COLORS, build_digest, data_uris, render_charts, render_html
from listener.store import Store
from tests.test_digest import DAY, fill, make_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")

# after load: how many images decoded, and where the first chart is on the page
PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var r = imgs[0].getBoundingClientRect();
  document.body.setAttribute("data-images", ok + " of " + imgs.length + " loaded");
  document.body.setAttribute("data-chart", [r.left, r.top, r.width, r.height].map(Math.round).join(","));
});
</script>"""


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,2000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180, check=True)


def near(pixel: tuple[int, int, int], hex_colour: str, tolerance: int = 8) -> bool:
    target = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target))


def test_html_digest_renders_with_its_charts_in_chromium(tmp_path):
    from PIL import Image

    config = make_config(tmp_path)
    with Store(config.database.path) as store:
        fill(store)
        digest = build_digest(store, config, DAY)
    page = render_html(digest, data_uris(render_charts(digest)))
    html_file = tmp_path / "digest.html"
    html_file.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    url = html_file.as_uri()

    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", url).stdout
    assert 'data-images="4 of 4 loaded"' in dom, dom[-2000:]
    left, top, width, height = map(int, dom.split('data-chart="')[1].split('"')[0].split(","))
    assert 600 <= width <= 720 and 150 <= height <= 300  # the first chart, at its CSS size

    shot = tmp_path / "digest.png"
    chromium(tmp_path, f"--screenshot={shot}", url)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colours = dict((c, n) for n, c in image.getcolors(maxcolors=1 << 24))
    assert colours.get((255, 255, 255), 0) < 0.6 * 1200 * 2000 and len(colours) > 200  # a page, not a blank screen
    chart = image.crop((left, top, left + width, top + height)).getcolors(maxcolors=1 << 24)
    for sentiment, colour in COLORS.items():  # the stacked bars are drawn in the sentiment colours
        assert sum(n for n, c in chart if near(c, colour)) >= 20, f"no {sentiment} bars in the chart"


# after load: every link's scheme, and whether any script of the data ran
LINK_PROBE = """<script>
window.addEventListener("load", function () {
  var links = Array.prototype.map.call(document.querySelectorAll("[href]"), function (e) {
    return e.getAttribute("href").split(":")[0].toLowerCase();
  });
  var sources = Array.prototype.map.call(document.querySelectorAll("[src]"), function (e) {
    return e.getAttribute("src").slice(0, 15).toLowerCase();
  });
  document.body.setAttribute("data-schemes", links.join(" "));
  document.body.setAttribute("data-sources", sources.join(" "));
  document.body.setAttribute("data-pwned", String(window.pwned === true));
});
</script>"""
HOSTILE = ['<img src=x onerror="window.pwned=true">', '"><script>window.pwned=true</script>',
           "[x](javascript:window.pwned=true)", "\x1b[2J <b>bold</b>"]


def test_hostile_posts_are_text_in_the_digest_and_alert_pages_in_chromium(tmp_path):
    """Stored posts with HTML, scripts and javascript:/data: links: in the browser nothing runs
    and every link is http(s)."""
    from datetime import timedelta

    from listener.alerts.messages import instance_message
    from listener.alerts.machine import RuleSpec, Transition
    from listener.store import MentionRow
    from listener.models import Sentiment
    from listener.sources import SourceState
    from tests.test_digest import PROBS, SETUP

    config = make_config(tmp_path)
    at = SETUP - timedelta(hours=12)
    day = at.astimezone(config.digest.tzinfo).date()
    examples = []
    with Store(config.database.path) as store:
        for n, url in enumerate(["https://ok.example/fine", "javascript:window.pwned=true",
                                 "data:text/html,<script>window.pwned=true</script>", "https://ok.example/a>b"]):
            text = f"acme {HOSTILE[n]}"
            row = MentionRow("feed", f"h{n}", text, at, SETUP, ("acme",), url=url, author=HOSTILE[(n + 1) % 4], likes=9 - n)
            ids = store.save_fetch("feed", "rss", [row], SourceState(), started_at=SETUP, now=SETUP,
                                   next_check_at=SETUP, items=1, requests=1).new_ids
            store.save_scores([(ids[0], Sentiment.from_probs(*PROBS["negative"]))], "test", SETUP)
            examples.append({"text": text, "author": HOSTILE[n], "url": url, "source": "feed", "sentiment": "negative"})
        digest = build_digest(store, config, day)
    spec = RuleSpec("r", "keyword", timedelta(0), timedelta(hours=1), None, True, ("email",), "warning", {}, "acme")
    alert = instance_message(config, spec, None, Transition("r", {"topic": "acme"}, "firing", SETUP, 4.0, HOSTILE[1]),
                             examples)
    for name, page in (("digest", render_html(digest, data_uris(render_charts(digest)))), ("alert", alert.html)):
        html_file = tmp_path / f"{name}.html"
        html_file.write_text(f"<html><body>{page}{LINK_PROBE}</body></html>" if name == "alert"
                             else page.replace("</body>", LINK_PROBE + "</body>"), encoding="utf-8")
        dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", html_file.as_uri()).stdout
        assert 'data-pwned="false"' in dom, (name, dom[-1500:])
        schemes = set(dom.split('data-schemes="')[1].split('"')[0].split())
        assert schemes and schemes <= {"https", "http"}, (name, schemes)
        sources = set(dom.split('data-sources="')[1].split('"')[0].split())
        assert sources <= {"data:image/png;"}, (name, sources)  # only our own inline charts
