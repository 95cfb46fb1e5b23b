"""The dashboard's state: what its API answers, from the messages it reads (the page itself: tests/integration)."""

from __future__ import annotations

import orjson

from bizstream.dashboard.state import DashboardState
from bizstream.settings import DashboardSettings
from bizstream.stream import topics


def window(start: float, posts: int, mean: float) -> bytes:
    return orjson.dumps({"ticker": "ETH", "kind": "tumbling", "window_s": 60, "start": start, "end": start + 60,
                         "posts": posts, "mean_score": mean, "weighted_score": mean, "mean_sarcasm": None,
                         "shares": {"bearish": 0.0, "neutral": 1.0, "bullish": 0.0}, "spike": False})  # fmt: skip


def test_a_tickers_chart_history_is_in_time_order_and_keeps_the_latest_windows() -> None:
    # Windows arrive in the order their posts do, which a backfill or a late post makes other than time order; the
    # chart drew its line back and forth across days.
    state = DashboardState(DashboardSettings(history_windows=3))
    for start in (600.0, 120.0, 360.0, 60.0, 480.0):
        state.take(topics.TICKERS, window(start, int(start // 60), start / 1000))
    state.take(topics.TICKERS, window(360.0, 7, -0.5))  # that minute again, updated: the newer figures replace it
    ticker = state.ticker("eth")
    assert ticker is not None
    assert ticker["history"] == [{"start": 360.0, "posts": 7, "mean_score": -0.5},
                                 {"start": 480.0, "posts": 8, "mean_score": 0.48},
                                 {"start": 600.0, "posts": 10, "mean_score": 0.6}]  # fmt: skip
