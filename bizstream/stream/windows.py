"""``bizstream tickers``: per-ticker sentiment windows on Kafka, for dashboards.

Two agents in one faust app:

1. **route**: each Score from ``bizstream.scores.v1`` becomes one *mention* per ticker it names; a batch's mentions
   of one ticker go as one record (a JSON array, at most GROUP_MAX) to the internal topic
   ``bizstream.ticker-events.v1`` keyed by ticker — so every mention of a ticker lands on one partition, and the state
   of a ticker lives with that partition (faust's repartitioning pattern; more tickers agents share it).
2. **aggregate**: keeps a bucket per (ticker, window size, window start) in a faust Table, whose changelog topic is
   how a restarted agent gets its state back; a record's mentions update each bucket they touch once (one changelog
   write per bucket and record, not per mention). A timer publishes every changed window to ``bizstream.tickers.v1``
   (a TickerWindow keyed by ticker), plus a rolling view summed from the largest window's buckets.

Windows are by the post's own time (``Score.posted_at``; else when it was scored), tumbling, of ``tickers.windows_s``.

Processing guarantee (at-least-once underneath, made exact where it can be): each bucket records, in the same
changelog record as its counts, the position of the last mention it counted (its record's offset x GROUP_MAX + its
place in the record), for each partition of the scores topic the offset of the last Score it counted from there, and
the ids of its latest RECENT_POSTS posts. So a mention the aggregate step reads again after a crash is not counted
twice, nor is one the route step sends again (a killed agent re-reads the Scores it had not acknowledged, however many,
in their order), nor a post the workers scored twice as long as it is among the bucket's latest RECENT_POSTS (a
duplicate arriving after 64 newer posts of the same ticker in the same window would count twice). Nothing is lost: a
Score is acknowledged only after its mentions are on the broker, and a mention only after it is counted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import faust
import orjson

from bizstream.errors import InvalidRecord
from bizstream.records import SENTIMENTS, TickerWindow
from bizstream.settings import Settings, TickerSettings
from bizstream.stream import topics
from bizstream.stream.apps import decode_or_dead_letter, new_app, status_line

log = logging.getLogger(__name__)
APP_ID = "bizstream-tickers"
TABLE = "ticker-windows"
RECENT_POSTS = 64  # post ids each bucket remembers, so a post counted once is not counted again
GROUP_MAX = 1024  # mentions in one ticker-events record (a mention's position is offset * GROUP_MAX + its place)
# Scores the route step takes at once (under faust's stream buffer of 4,096): the more, the more mentions of a ticker
# share a record. bench/tickers_agent.py, VADER-only: 1,849 posts/s at 500, 2,698 at 2,000, 3,326 at 4,000.
ROUTE_BATCH = 4000
Bucket = dict[str, Any]


def mentions(raw: bytes, source: tuple[int, int] | None = None) -> list[tuple[str, bytes]]:
    """(ticker, mention) for each ticker a Score names, each carrying the Score's (partition, offset) ``source`` when
    given; InvalidRecord when it is not a Score."""
    try:
        score = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not valid JSON: {exc}") from None
    if not isinstance(score, dict):
        raise InvalidRecord("a Score must be a JSON object")
    try:
        post_id, value, confidence, label = str(score["post_id"]), float(score["score"]), float(score["confidence"]), score["label"]
        at = float(score.get("posted_at") or score["scored_at"])
        tickers = [str(t) for t in score.get("tickers") or []]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecord(f"not a Score ({type(exc).__name__}: {exc})") from None
    if label not in {s.value for s in SENTIMENTS} or not (-1 <= value <= 1 and 0 <= confidence <= 1 and math.isfinite(at)):
        raise InvalidRecord(f"not a Score: label {label!r}, score {value}, confidence {confidence}")
    sarcasm = score.get("sarcasm_probability")
    return [(t, orjson.dumps({"post_id": post_id, "ticker": t, "at": at, "score": value, "confidence": confidence,
                              "label": label, "sarcasm": sarcasm, "source": source})) for t in tickers[:10]]  # fmt: skip


def mention_group(raw: bytes) -> list[Mapping[str, Any]]:
    """The mentions of one ticker-events record (a JSON array of 1 to GROUP_MAX, or one mention alone, as agents
    before 2026-11-28 sent); InvalidRecord for anything else, since the topic is writable by more than the route."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"not valid JSON: {exc}") from None
    group = record if isinstance(record, list) else [record]
    if not 1 <= len(group) <= GROUP_MAX:
        raise InvalidRecord(f"a record holds 1 to {GROUP_MAX} mentions, not {len(group)}")
    for m in group:
        if not _is_mention(m):
            raise InvalidRecord(f"not a mention: {str(m)[:200]}")
    return group


def _is_mention(m: Any) -> bool:
    if not isinstance(m, dict):
        return False
    source = m.get("source")
    try:
        return (isinstance(m["ticker"], str) and isinstance(m["post_id"], str) and m["label"] in {s.value for s in SENTIMENTS}
                and all(math.isfinite(float(m[k])) for k in ("at", "score", "confidence"))
                and (source is None or (isinstance(source, list) and len(source) == 2 and all(type(x) is int for x in source))))
    except (KeyError, TypeError, ValueError):
        return False


def window_start(at: float, size: int) -> int:
    """The start of the tumbling window of ``size`` seconds that holds time ``at``."""
    return int(at // size) * size


def bucket_key(ticker: str, size: int, start: int) -> bytes:
    """The table key of one window."""
    return f"{ticker}|{size}|{start}".encode()


def count(bucket: Bucket | None, mention: Mapping[str, Any], offset: int) -> Bucket | None:
    """The bucket with one more mention, or None when it was counted already: its position ``offset`` (the aggregate
    step read it again after a crash), its Score's offset in its partition (the route step sent it again), or its post
    among the bucket's RECENT_POSTS latest (scored twice)."""
    b: Bucket = bucket or {"n": 0, "sum": 0.0, "wsum": 0.0, "wconf": 0.0, "labels": {}, "sarc_sum": 0.0, "sarc_n": 0,
                           "top": None, "bottom": None, "offset": -1, "recent": []}  # fmt: skip
    source = mention.get("source")  # [partition, offset] of its Score
    sources: dict[str, int] = b.setdefault("sources", {})  # partition of the scores topic -> last Score offset counted
    routed_again = source is not None and source[1] <= sources.get(str(source[0]), -1)
    if offset <= b["offset"] or mention["post_id"] in b["recent"] or routed_again:
        return None
    if source is not None:
        sources[str(source[0])] = source[1]
    b["recent"] = [*b["recent"][-(RECENT_POSTS - 1) :], mention["post_id"]]
    score, confidence = float(mention["score"]), float(mention["confidence"])
    b["n"] += 1
    b["sum"] += score
    b["wsum"] += score * confidence
    b["wconf"] += confidence
    b["labels"][mention["label"]] = b["labels"].get(mention["label"], 0) + 1
    if isinstance(mention.get("sarcasm"), (int, float)):
        b["sarc_sum"] += float(mention["sarcasm"])
        b["sarc_n"] += 1
    if b["top"] is None or score > b["top"][0]:
        b["top"] = [score, mention["post_id"]]
    if b["bottom"] is None or score < b["bottom"][0]:
        b["bottom"] = [score, mention["post_id"]]
    b["offset"] = offset
    return b


def merge(buckets: Iterable[Bucket]) -> Bucket | None:
    """One bucket summing several (the rolling view)."""
    total: Bucket | None = None
    for b in buckets:
        if total is None:
            total = {**b, "labels": dict(b["labels"])}
            continue
        for k in ("n", "sum", "wsum", "wconf", "sarc_sum", "sarc_n"):
            total[k] += b[k]
        for label, n in b["labels"].items():
            total["labels"][label] = total["labels"].get(label, 0) + n
        total["top"] = max(total["top"], b["top"], key=lambda x: x[0])
        total["bottom"] = min(total["bottom"], b["bottom"], key=lambda x: x[0])
    return total


def window(ticker: str, kind: str, size: int, start: float, b: Bucket, baseline: float | None, config: TickerSettings) -> TickerWindow:
    """What a dashboard reads about one window."""
    n = b["n"]
    spike = baseline is not None and n >= config.spike_min_posts and n >= config.spike_factor * max(baseline, 1e-9)
    return TickerWindow(
        ticker=ticker, kind=kind, window_s=size, start=start, end=start + size, posts=n,  # type: ignore[arg-type]
        mean_score=b["sum"] / n, weighted_score=b["wsum"] / b["wconf"] if b["wconf"] > 0 else 0.0,
        shares={s.value: b["labels"].get(s.value, 0) / n for s in SENTIMENTS},
        mean_sarcasm=b["sarc_sum"] / b["sarc_n"] if b["sarc_n"] else None,
        most_bullish=b["top"][1] if b["top"] else None, most_bearish=b["bottom"][1] if b["bottom"] else None,
        baseline=baseline, spike=spike,
    )  # fmt: skip


class Windows:
    """The buckets of one process (a faust Table, or a dict in tests) and what to publish from them."""

    def __init__(self, table: Any, config: TickerSettings) -> None:
        self.table = table
        self.config = config
        self.changed: set[tuple[str, int, int]] = set()

    def add(self, mentions: Sequence[Mapping[str, Any]], offset: int) -> None:
        """Count one ticker-events record's mentions (as :func:`mention_group` passes them; the i-th at position
        ``offset * GROUP_MAX + i``) in every window size, each bucket read and written once; forget the buckets too
        old to matter any more."""
        touched: dict[tuple[str, int, int], Bucket | None] = {}
        dirty: set[tuple[str, int, int]] = set()
        for place, mention in enumerate(mentions):
            ticker = str(mention["ticker"])
            for size in self.config.windows_s:
                where = (ticker, size, window_start(float(mention["at"]), size))
                if where not in touched:
                    raw = self.table.get(bucket_key(*where))
                    touched[where] = orjson.loads(raw) if raw else None
                updated = count(touched[where], mention, offset * GROUP_MAX + place)
                if updated is not None:
                    touched[where] = updated
                    dirty.add(where)
        for where in dirty:  # (changed only while a stream event is in hand: the changelog needs its partition)
            self.table[bucket_key(*where)] = orjson.dumps(touched[where])
            self.changed.add(where)
        for ticker, size, start in touched:  # too old to matter for the rolling view or any baseline
            stale = bucket_key(ticker, size, start - (self.config.baseline_windows + self.config.rolling_s // size + 1) * size)
            if self.table.get(stale) is not None:
                del self.table[stale]

    def _get(self, ticker: str, size: int, start: int) -> Bucket | None:
        raw = self.table.get(bucket_key(ticker, size, start))
        return cast(Bucket, orjson.loads(raw)) if raw else None

    def due(self) -> list[TickerWindow]:
        """Every changed window, and every rolling view that holds a changed window of the largest size: the one ending
        with it and those ending with each later window of that ticker within the rolling span (a late post changes
        them too; only the first was published, so the latest 24 h view missed posts that arrived out of order)."""
        out: list[TickerWindow] = []
        largest = max(self.config.windows_s)
        span = self.config.rolling_s // largest
        changed, self.changed = self.changed, set()
        get = functools.cache(self._get)  # a bucket is read and decoded once per call, however many views hold it
        rolling: set[tuple[str, int]] = set()  # (ticker, start of the largest window a rolling view ends with)
        for ticker, size, start in sorted(changed):
            b = get(ticker, size, start)
            if b is None:
                continue
            earlier = [get(ticker, size, start - i * size) for i in range(1, self.config.baseline_windows + 1)]
            baseline = sum(e["n"] for e in earlier if e) / len(earlier) if any(earlier) else None
            out.append(window(ticker, "tumbling", size, start, b, baseline, self.config))
            if size == largest:
                rolling.update((ticker, start + i * size) for i in range(span) if get(ticker, size, start + i * size))
        for ticker, end in sorted(rolling):
            rolled = merge(x for x in (get(ticker, largest, end - i * largest) for i in range(span)) if x)
            if rolled is not None:
                out.append(window(ticker, "rolling", self.config.rolling_s, end + largest - self.config.rolling_s, rolled, None, self.config))
        return out


def create_tickers_app(settings: Settings) -> faust.App:
    """The tickers agent's faust app."""
    app, declared = new_app(settings, APP_ID)
    table = app.Table(TABLE, default=None, partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes)
    windows = Windows(table, settings.tickers)
    deadletter = declared[topics.DEADLETTER]
    events = declared[topics.TICKER_EVENTS]
    out = declared[topics.TICKERS]
    done = {"mentions": 0, "published": 0}  # for the status line

    @app.agent(declared[topics.SCORES], name="bizstream.tickers.route")
    async def route(stream: faust.StreamT[bytes]) -> None:
        """Scores -> one mention per ticker, keyed by ticker; a batch's mentions are confirmed by the broker before
        its Scores are acknowledged."""
        async for batch in cast(faust.Stream[bytes], stream).take_events(ROUTE_BATCH, within=0.2):
            grouped: dict[str, list[bytes]] = {}
            for event in batch:
                parse = functools.partial(mentions, source=(event.message.partition, event.message.offset))
                for ticker, mention in await decode_or_dead_letter(event, parse, deadletter) or []:
                    grouped.setdefault(ticker, []).append(mention)
            records = [(ticker, b"[" + b",".join(group[i : i + GROUP_MAX]) + b"]") for ticker, group in grouped.items()
                       for i in range(0, len(group), GROUP_MAX)]  # fmt: skip
            pending = [await events.send(key=ticker.encode(), value=record, force=True) for ticker, record in records]
            await asyncio.gather(*pending)

    @app.agent(events, name="bizstream.tickers.aggregate")
    async def aggregate(stream: faust.StreamT[bytes]) -> None:
        """Mentions -> buckets (the table's changelog keeps them)."""
        async for event in stream.events():
            group = await decode_or_dead_letter(event, mention_group, deadletter)
            if group is not None:
                windows.add(group, event.message.offset)
                done["mentions"] += len(group)

    @app.timer(settings.tickers.publish_interval_s)  # type: ignore[untyped-decorator]
    async def publish() -> None:
        """Changed windows -> bizstream.tickers.v1."""
        pending = [await out.send(key=w.ticker.encode(), value=w.to_json(), force=True) for w in windows.due()]
        for sent in pending:
            await sent
        done["published"] += len(pending)

    status_line(app, lambda: (f"{done['mentions']} ticker mentions counted; {done['published']} windows published to "
                              f"{topics.TICKERS}") if done["mentions"] else None)  # fmt: skip
    return app
