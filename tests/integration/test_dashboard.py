"""The dashboard in a real browser (issue 14, item 3): headless Chromium from Debian's packages, driven by Selenium,
against a real broker, worker and tickers agent. The page loads, the leaderboard shows the tickers of posts just
produced, a post produced while the page is open appears without a reload, and the console has no errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from bizstream.stream import topics
from bizstream.stream.broker import free_port
from tests.conftest import ROOT
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def post(i: int, text: str) -> tuple[bytes, bytes]:
    return f"t{i}".encode(), orjson.dumps({"id": f"d{i}", "thread_id": f"t{i}", "text": text})


def wait_json(url: str, ok: object, timeout_s: float = 90) -> object:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = orjson.loads(response.read())
            if callable(ok) and ok(last):
                return last
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} never got there; last answer: {last!r:.500}")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="needs Debian's chromium and chromium-driver (scripts/install.sh installs them)")
def test_the_dashboard_shows_tickers_and_new_posts_live(cluster: Cluster, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cluster.start_worker("worker")
    cluster.start_worker("tickers")
    port = free_port()
    with (tmp_path / "dashboard.log").open("wb") as log:
        dashboard = subprocess.Popen([sys.executable, "-m", "bizstream", "dashboard", "--port", str(port)], env=cluster.env(),
                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    cluster.workers.append(dashboard)
    cluster.produce(topics.POSTS, [post(i, text) for i, text in enumerate(["$BTC to the moon", "$BTC breakout, wagmi",
                                                                          "$ETH rekt again", "solana pumping hard"])])  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_json(base + "/api/tickers", lambda rows: {r["ticker"] for r in rows} >= {"BTC", "ETH", "SOL"})

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
    try:
        browser.get(base + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")) >= 3)
        tickers = [row.get_attribute("data-ticker") for row in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
        assert tickers[0] == "BTC" and {"ETH", "SOL"} <= set(tickers)  # BTC has the most posts
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#chart .main-svg"))  # plotly drew the chart

        cluster.produce(topics.POSTS, [post(99, "$DOGE to the moon while the page is open")])  # no reload after this
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '#posts tr[data-post="d99"]'))
        row = browser.find_element(By.CSS_SELECTOR, '#posts tr[data-post="d99"]').text
        assert "DOGE" in row and "bullish" in row
        wait.until(lambda b: "vader vader-" in b.find_element(By.ID, "serving").text)  # what scored it, live
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        browser.quit()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
