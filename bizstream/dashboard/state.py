"""What the dashboard knows, built from the topics it follows; pure Python, so the API's answers are testable alone.

Every message is taken as it comes (``take``); a malformed one is skipped — the dashboard only reads, and what is bad
on a topic is the producing agent's to dead-letter. Memory is bounded by the settings (recent posts, windows per
ticker) and by MAX_TICKERS.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import orjson

from bizstream import metrics
from bizstream.settings import DashboardSettings
from bizstream.stream import topics

MAX_TICKERS = 5_000
MAX_EVENTS = 100  # drift events and model decisions kept
TEXTS = 20_000  # post texts kept, for joining with their scores


class DashboardState:
    """The latest ticker windows, each ticker's history, the latest posts, drift events, model decisions, throughput."""

    def __init__(self, config: DashboardSettings, publish: Callable[[str, Any], None] = lambda kind, data: None) -> None:
        self.config = config
        self.publish = publish  # each change, to the live page (server-sent events)
        self.windows: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()  # ticker -> "kind/size" -> window
        self.history: dict[str, dict[float, dict[str, Any]]] = {}  # ticker -> start -> 1-minute window, as they came
        self.posts: deque[dict[str, Any]] = deque(maxlen=config.recent_posts)
        self.texts: OrderedDict[str, str] = OrderedDict()
        self.drift: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.models: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.arrivals: deque[list[int]] = deque()  # [second, scores that arrived in it], over the last minute
        self.lag: dict[str, int] = {}  # the workers' consumer group: partition -> messages behind
        self.serving: dict[str, str] = {}  # analyzer (and "fusion") -> the version that scored the latest post
        self.following = False  # whether it reads the topics now

    def take(self, topic: str, raw: bytes) -> None:
        """One message from a followed topic."""
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(value, dict):
            return
        try:
            {topics.TICKERS: self._window, topics.SCORES: self._score, topics.POSTS: self._post,
             topics.DRIFT: self._drift, topics.MODELS: self._model}[topic](value)  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return

    def _window(self, w: dict[str, Any]) -> None:
        ticker = str(w["ticker"])
        views = self.windows.setdefault(ticker, {})
        key = f"{w['kind']}/{int(w['window_s'])}"
        if key not in views or float(w["start"]) >= float(views[key]["start"]):  # not an earlier window, arriving late
            views[key] = w
        self.windows.move_to_end(ticker)
        while len(self.windows) > MAX_TICKERS:
            gone, _ = self.windows.popitem(last=False)
            self.history.pop(gone, None)
        if w["kind"] == "tumbling" and int(w["window_s"]) == min(60, int(w["window_s"])):
            history = self.history.setdefault(ticker, {})
            history[float(w["start"])] = w
            for start in sorted(history)[: max(len(history) - self.config.history_windows, 0)]:
                del history[start]
        self.publish("ticker", w)

    def _post(self, post: dict[str, Any]) -> None:
        post_id, text = str(post["id"]), str(post.get("text", ""))[:500] or ("[image]" if post.get("image") else "")
        self.texts[post_id] = text
        while len(self.texts) > TEXTS:
            self.texts.popitem(last=False)
        for shown in self.posts:  # its score came first (topics are read side by side)
            if shown["post_id"] == post_id and not shown["text"]:
                shown["text"] = text

    def _score(self, s: dict[str, Any]) -> None:
        second = int(time.time())
        if self.arrivals and self.arrivals[-1][0] == second:
            self.arrivals[-1][1] += 1
        else:
            self.arrivals.append([second, 1])
        while self.arrivals[0][0] < second - 60:
            self.arrivals.popleft()
        for name, result in (s.get("analyzers") or {}).items():  # what the workers serve, on whichever machine
            if isinstance(result, dict) and result.get("model_version"):
                self.serving[str(name)] = str(result["model_version"])
        if s.get("fusion"):
            self.serving["fusion"] = str(s["fusion"])
        post = {"post_id": s["post_id"], "text": self.texts.get(str(s["post_id"]), ""), "label": s["label"],
                "score": float(s["score"]), "confidence": float(s["confidence"]), "tickers": s.get("tickers") or [],
                "sarcasm": s.get("sarcasm_probability"), "scored_at": s.get("scored_at")}  # fmt: skip
        self.posts.appendleft(post)
        self.publish("post", post)

    def _drift(self, event: dict[str, Any]) -> None:
        self.drift.appendleft(event)
        self.publish("drift", event)

    def _model(self, event: dict[str, Any]) -> None:
        metrics.DECISIONS.labels(str(event["analyzer"]), str(bool(event["promoted"])).lower()).inc()
        self.models.appendleft(event)
        self.publish("model", event)

    # -- what the API answers --------------------------------------------------------------------------------------

    def leaderboard(self, window: str = "rolling", limit: int = 50) -> list[dict[str, Any]]:
        """Tickers by post count in their latest window of that kind ("rolling", or "tumbling/3600" etc.)."""
        rows = []
        for ticker, views in self.windows.items():
            chosen = [w for key, w in views.items() if key.startswith(window)]
            if chosen:
                w = max(chosen, key=lambda x: (int(x["window_s"]), float(x["start"])))
                rows.append({"ticker": ticker, **{k: w[k] for k in ("posts", "mean_score", "weighted_score", "shares",
                                                                    "mean_sarcasm", "spike", "window_s", "start", "end")}})  # fmt: skip
        return sorted(rows, key=lambda r: (-r["posts"], r["ticker"]))[:limit]

    def ticker(self, name: str) -> dict[str, Any] | None:
        """One ticker: its latest windows and its 1-minute history (time, posts, mean score) for the chart, oldest
        first: windows come in the order posts arrive, which is not their time order (a backfill, a late post)."""
        views = self.windows.get(name.upper())
        if views is None:
            return None
        history = sorted(self.history.get(name.upper(), {}).items())
        return {"ticker": name.upper(), "windows": views,
                "history": [{"start": start, "posts": w["posts"], "mean_score": w["mean_score"]} for start, w in history]}  # fmt: skip

    def stats(self) -> dict[str, Any]:
        """Scores per second over the last minute, how far behind the workers are, and what scored the latest post
        (each analyzer's model version, and what fused them): on a fresh install no decision has been announced yet,
        and a swap shows here from the first post the new version scores."""
        now = time.time()
        recent = [(second, n) for second, n in self.arrivals if second >= now - 60]
        span = max(now - recent[0][0], 1.0) if recent else 60.0
        return {"scores_per_s": round(sum(n for _, n in recent) / span, 2), "worker_lag": sum(self.lag.values()), "lag_by_partition": self.lag,
                "tickers": len(self.windows), "serving": dict(sorted(self.serving.items())), "updated_at": now}  # fmt: skip
