"""Per-ticker windows on a real broker (issue 14, item 2): exact counts and means for known scores, and a tickers
agent killed and restarted continues from its changelog without losing or double-counting a window."""

from __future__ import annotations

import re
import signal
import time

import orjson
import pytest

from bizstream.records import AnalyzerResult, Score, Sentiment
from bizstream.stream import topics
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60 and 3600)


def score(i: int, ticker: str, value: float, at: float) -> tuple[bytes, bytes]:
    label = Sentiment.BULLISH if value > 0 else Sentiment.BEARISH
    p = {"bearish": max(-value, 0.0), "neutral": 1 - abs(value), "bullish": max(value, 0.0)}
    vader = AnalyzerResult("vader", "v", 0.1, score=value, label=label, confidence=0.5, probabilities=p)
    s = Score(f"s{i}", f"t{i % 7}", value, label, 0.5, p, {"vader": vader}, tickers=[ticker], posted_at=at)
    return s.thread_id.encode(), s.to_json()


def latest(cluster: Cluster, ticker: str, size: int, start: float) -> dict[str, object] | None:
    found = None
    for m in cluster.read(topics.TICKERS, timeout_s=3):
        w = orjson.loads(m.value)
        if (w["ticker"], w["kind"], w["window_s"], w["start"]) == (ticker, "tumbling", size, start):
            found = w
    return found


def wait_window(cluster: Cluster, ticker: str, size: int, start: float, posts: int) -> dict[str, object]:
    deadline = time.monotonic() + 150  # a restarted agent rejoins its group and restores its table first
    while time.monotonic() < deadline:
        w = latest(cluster, ticker, size, start)
        if w is not None and w["posts"] >= posts:
            time.sleep(3)  # anything that would double-count shows up by now
            return latest(cluster, ticker, size, start) or w
        time.sleep(1)
    offsets = cluster.offsets("bizstream-tickers", [topics.SCORES, topics.TICKER_EVENTS])
    raise AssertionError(f"no {ticker} window at {start} with {posts} posts; last seen: {latest(cluster, ticker, size, start)}; "
                         f"(committed, end) offsets: {offsets}; logs in {cluster.workdir}")


def test_windows_are_exact_and_survive_a_kill(cluster: Cluster) -> None:
    agent = cluster.start_worker("tickers")
    # Minute 0: BTC 4 posts (+0.5, +0.5, -0.5, +0.9); minute 1: BTC 1 post; ETH 2 posts in minute 0.
    first = [score(0, "BTC", 0.5, T0 + 1), score(1, "BTC", 0.5, T0 + 10), score(2, "BTC", -0.5, T0 + 20),
             score(3, "BTC", 0.9, T0 + 59), score(4, "BTC", 0.2, T0 + 61), score(5, "ETH", -0.8, T0 + 5),
             score(6, "ETH", -0.4, T0 + 6)]  # fmt: skip
    cluster.produce(topics.SCORES, first)
    btc = wait_window(cluster, "BTC", 60, T0, 4)
    assert btc["posts"] == 4 and btc["mean_score"] == pytest.approx(0.35)
    assert btc["shares"] == {"bearish": 0.25, "neutral": 0.0, "bullish": 0.75}
    assert (btc["most_bullish"], btc["most_bearish"]) == ("s3", "s2")
    assert wait_window(cluster, "BTC", 3600, T0, 5)["posts"] == 5  # the hour holds both minutes
    assert wait_window(cluster, "ETH", 60, T0, 2)["mean_score"] == pytest.approx(-0.6)
    log = cluster.workdir / "tickers-0.log"  # it says what it did, within its 5 s look
    deadline = time.monotonic() + 20
    while "ticker mentions counted" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert re.search(r"\[INFO\] [1-7] ticker mentions counted; \d+ windows published to bizstream.tickers.v1", log.read_text(errors="replace"))

    agent.send_signal(signal.SIGKILL)  # no clean shutdown: the state must come back from the changelog
    agent.wait()
    cluster.workers.remove(agent)
    cluster.start_worker("tickers")
    cluster.produce(topics.SCORES, [score(7, "BTC", 1.0, T0 + 30)])
    btc = wait_window(cluster, "BTC", 60, T0, 5)
    assert btc["posts"] == 5, btc  # 4 before the kill + 1 after: none lost, none counted twice
    assert btc["mean_score"] == pytest.approx((0.5 + 0.5 - 0.5 + 0.9 + 1.0) / 5)
    rolling = [orjson.loads(m.value) for m in cluster.read(topics.TICKERS, timeout_s=3)]
    day = [w for w in rolling if w["ticker"] == "BTC" and w["kind"] == "rolling"][-1]
    assert day["window_s"] == 86400 and day["posts"] == 6  # every BTC post of the day
