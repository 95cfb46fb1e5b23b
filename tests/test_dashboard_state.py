"""The dashboard's state: what its API answers, from the messages it reads (the page itself: tests/integration)."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from bizstream.dashboard.server import leaderboard_query
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


def score(post_id: str, setfit: str, fusion: str) -> bytes:
    result = {"probabilities": {"bearish": 0.2, "neutral": 0.6, "bullish": 0.2}, "label": "neutral", "score": 0.0}
    return orjson.dumps({"post_id": post_id, "label": "neutral", "score": 0.0, "confidence": 0.6, "fusion": fusion,
                         "analyzers": {"setfit": {**result, "model_version": setfit},
                                       "vader": {**result, "model_version": "vader-3.3.2+slang"}, "cryptobert": None}})  # fmt: skip


def test_stats_say_what_scored_the_latest_post() -> None:
    # On a fresh install no decision is ever announced (the starter serves), so the page said "no decisions yet" and
    # nothing about what served; the Scores say it, from whichever machine scored them, and show a swap at once.
    state = DashboardState(DashboardSettings())
    assert state.stats()["serving"] == {}
    state.take(topics.SCORES, score("a", "v0-starter", "weights"))
    assert state.stats()["serving"] == {"fusion": "weights", "setfit": "v0-starter", "vader": "vader-3.3.2+slang"}
    state.take(topics.SCORES, score("b", "v20261127-180000-abcdef", "v20261127-180001-fedcba"))
    assert state.stats()["serving"]["setfit"] == "v20261127-180000-abcdef"
    assert state.stats()["serving"]["fusion"] == "v20261127-180001-fedcba"


def test_an_image_only_post_is_shown_as_one() -> None:
    state = DashboardState(DashboardSettings())
    state.take(topics.POSTS, orjson.dumps({"id": "meme-1", "text": "", "image": {"path": "data/images/meme-1.png"}}))
    state.take(topics.SCORES, score("meme-1", "v0-starter", "weights"))
    assert state.posts[0]["text"] == "[image]"  # not a blank row


def test_the_leaderboard_shows_each_tickers_latest_window_in_time_not_the_latest_to_arrive() -> None:
    # A late or re-scored post updates an earlier window after the current one: it must not replace it on the board.
    state = DashboardState(DashboardSettings())
    state.take(topics.TICKERS, window(600.0, 9, 0.4))
    state.take(topics.TICKERS, window(60.0, 2, -0.9))  # an earlier minute, arriving later
    assert [(r["start"], r["posts"]) for r in state.leaderboard("tumbling/60")] == [(600.0, 9)]
    state.take(topics.TICKERS, window(600.0, 10, 0.5))  # the same minute, updated: the newer figures replace it
    assert [(r["start"], r["posts"]) for r in state.leaderboard("tumbling/60")] == [(600.0, 10)]


def test_the_leaderboard_refuses_a_window_or_limit_it_does_not_know() -> None:
    # A misspelt window answered [] like a quiet market, and limit=abc was taken as 50.
    assert leaderboard_query({}) == ("rolling", 50)
    assert leaderboard_query({"window": "tumbling/3600", "limit": "5"}) == ("tumbling/3600", 5)
    for bad, says in [({"window": "hourly"}, "window must be rolling or tumbling/<seconds>"),
                      ({"window": "tumbling/0"}, "window must be"), ({"limit": "abc"}, "limit must be a whole number"),
                      ({"limit": "0"}, "from 1 to 500"), ({"limit": "501"}, "from 1 to 500"), ({"limit": "-1"}, "got '-1'")]:  # fmt: skip
        with pytest.raises(web.HTTPBadRequest) as refused:
            leaderboard_query(bad)
        assert says in (refused.value.text or "")
