"""The per-ticker window arithmetic (issue 14, item 2), on a dict standing in for the faust Table."""

from __future__ import annotations

import orjson
import pytest

from bizstream.errors import InvalidRecord
from bizstream.settings import TickerSettings
from bizstream.stream.windows import Windows, mention_group, mentions

CONFIG = TickerSettings(windows_s=[60, 3600], rolling_s=7200, baseline_windows=3, spike_factor=3.0, spike_min_posts=3)


def mention(post_id: str, at: float, score: float, ticker: str = "BTC") -> dict[str, object]:
    return {"post_id": post_id, "ticker": ticker, "at": at, "score": score, "confidence": 0.5,
            "label": "bullish" if score > 0 else "bearish", "sarcasm": None}  # fmt: skip


def test_counts_baseline_spike_rolling_and_no_double_counting() -> None:
    windows = Windows({}, CONFIG)
    offset = 0
    for minute in range(3):  # one post a minute: the baseline
        windows.add([mention(f"m{minute}", minute * 60.0, 0.2)], offset := offset + 1)
    windows.due()
    for i in range(4):  # then four in minute 3: a spike
        windows.add([mention(f"s{i}", 180.0 + i, 0.6)], offset := offset + 1)
    windows.add([mention("s0", 185.0, 0.6)], offset + 1)  # the same post again (routed twice): not counted
    windows.add([mention("s1", 186.0, 0.6)], offset)  # an offset already counted (a replay): not counted
    due = {(w.kind, w.window_s, w.start): w for w in windows.due()}
    minute = due[("tumbling", 60, 180)]
    assert (minute.posts, minute.baseline, minute.spike) == (4, 1.0, True)
    hour = due[("tumbling", 3600, 0)]
    assert hour.posts == 7 and hour.mean_score == pytest.approx((3 * 0.2 + 4 * 0.6) / 7) and not hour.spike
    assert due[("rolling", 7200, -3600)].posts == 7


def test_a_score_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidRecord):
        mentions(b'{"post_id": "x", "score": 3.0, "confidence": 0.5, "label": "bullish", "scored_at": 1, "tickers": ["BTC"]}')
    found = mentions(orjson.dumps({"post_id": "x", "score": 0.5, "confidence": 0.5, "label": "bullish", "scored_at": 1,
                                   "tickers": ["BTC", "ETH"]}))  # fmt: skip
    assert [t for t, _ in found] == ["BTC", "ETH"]


def test_a_late_post_updates_the_rolling_views_that_end_after_it() -> None:
    # The latest rolling view (what the leaderboard shows) was published only when its own hour changed: a post of an
    # earlier hour arriving afterwards was missing from it, so the dashboard's 24 h view depended on arrival order.
    windows = Windows({}, CONFIG)
    windows.add([mention("later", 3600.0 + 10, 0.5)], 1)
    assert {(w.kind, w.start): w.posts for w in windows.due()}[("rolling", 0)] == 1
    windows.add([mention("earlier", 100.0, -0.5)], 2)  # an hour earlier, arriving after it
    latest = {(w.kind, w.start): w for w in windows.due()}
    assert latest[("rolling", -3600)].posts == 1  # the view ending with its own hour
    assert latest[("rolling", 0)].posts == 2 and latest[("rolling", 0)].mean_score == pytest.approx(0.0)  # and the later one


def test_a_records_mentions_count_once_each_and_write_each_bucket_once() -> None:
    class Table(dict[bytes, bytes]):
        writes = 0

        def __setitem__(self, key: bytes, value: bytes) -> None:
            Table.writes += 1
            super().__setitem__(key, value)

    windows = Windows(Table(), CONFIG)
    windows.add([mention("a", 10.0, 0.5), mention("b", 20.0, -0.5), mention("c", 70.0, 0.1)], 7)
    assert Table.writes == 3  # minute 0, minute 1 and hour 0: once each, for three mentions
    windows.add([mention("a", 10.0, 0.5), mention("b", 20.0, -0.5), mention("c", 70.0, 0.1)], 7)  # the record read again
    windows.add([mention("d", 30.0, 0.3)], 6)  # an earlier record (read again after a crash): counted by now
    due = {(w.kind, w.window_s, w.start): w.posts for w in windows.due()}
    assert (due[("tumbling", 60, 0)], due[("tumbling", 60, 60)], due[("tumbling", 3600, 0)]) == (2, 1, 3)


def test_a_ticker_events_record_is_checked_before_it_counts() -> None:
    one = mention("a", 10.0, 0.5)
    assert mention_group(orjson.dumps(one)) == [one]  # as agents before grouping sent it
    assert mention_group(orjson.dumps([one, one])) == [one, one]
    for bad in (b"nope", b"[]", orjson.dumps([one] * 1025), orjson.dumps([{**one, "at": "soon"}]), orjson.dumps([{**one, "score": float("nan")}]),
                orjson.dumps({**one, "label": "moon"}), orjson.dumps([1]), orjson.dumps({"ticker": "BTC"})):  # fmt: skip
        with pytest.raises(InvalidRecord):
            mention_group(bad)


def test_scores_routed_again_are_not_counted_again_however_many() -> None:
    # A killed tickers agent re-reads every Score it had not acknowledged (up to a whole batch of thousands) and sends
    # their mentions again: far more than the 64 post ids a bucket remembers.
    windows = Windows({}, CONFIG)
    routed = [orjson.loads(m) for _, m in (mentions(orjson.dumps({"post_id": f"p{i}", "score": 0.5, "confidence": 0.5, "label": "bullish",
              "scored_at": 10.0, "tickers": ["BTC"]}), source=(3, 1000 + i))[0] for i in range(200))]  # fmt: skip
    windows.add(routed[:150], 0)
    windows.add(routed, 1)  # after the restart: the 150 again, and 50 it had not sent
    minute = {(w.kind, w.window_s, w.start): w.posts for w in windows.due()}[("tumbling", 60, 0)]
    assert minute == 200
    windows.add([{**routed[-1], "source": [2, 5]}], 2)  # a post scored twice (another Score, elsewhere): a duplicate
    windows.add([{**routed[0], "post_id": "new", "source": [2, 5]}], 3)  # a new post from another partition counts
    assert {(w.kind, w.window_s, w.start): w.posts for w in windows.due()}[("tumbling", 60, 0)] == 201
