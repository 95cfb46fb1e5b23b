"""Every Kafka topic bizstream uses, in one place. Names carry a version: a breaking change gets a new topic."""

from __future__ import annotations

POSTS = "bizstream.posts.v1"  # Post, keyed by thread id
SCORES = "bizstream.scores.v1"  # Score, keyed by thread id
DEADLETTER = "bizstream.deadletter.v1"  # DeadLetter, keyed like the message that failed
LABELS = "bizstream.labels.v1"  # Label, keyed by post id
DRIFT = "bizstream.drift.v1"  # DriftEvent, keyed by analyzer
MODELS = "bizstream.models.v1"  # ModelEvent, keyed by analyzer (compacted: the latest says what serves)
ARTIFACTS = "bizstream.artifacts.v1"  # a chunk of a model file, keyed by "<sha256>:<index>" (compacted)
TICKERS = "bizstream.tickers.v1"  # TickerWindow, keyed by ticker
TICKER_EVENTS = "bizstream.ticker-events.v1"  # internal to `bizstream tickers`: one scored mention, keyed by ticker

ALL: tuple[str, ...] = (POSTS, SCORES, DEADLETTER, LABELS, DRIFT, MODELS, ARTIFACTS, TICKERS, TICKER_EVENTS)

# Short names for the CLI: `bizstream consume scores`.
ALIASES: dict[str, str] = {name.split(".")[1]: name for name in ALL}


def resolve(name: str) -> str:
    """A full topic name from a short alias ("scores") or a full name (any topic, bizstream's or not: one with a dot).
    A name that is neither is a mistyped alias (`--topic lables`), refused rather than published to as a new topic."""
    if name in ALIASES or "." in name:
        return ALIASES.get(name, name)
    from bizstream.errors import BizstreamError

    raise BizstreamError(f"no topic alias {name!r}: use one of {', '.join(ALIASES)}, or a full topic name (with a dot)")
