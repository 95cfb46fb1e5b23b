"""Wire messages: what travels on bizstream's Kafka topics, as JSON (orjson).

Every message is a frozen dataclass with ``to_json()`` and, for the ones read from topics written by others,
``from_json(raw, limits)`` that validates on the way in and raises :class:`InvalidRecord` with a message a person can
act on (what, where, the value). Keys: posts and scores by thread id, labels by post id.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import math
import time
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

import orjson

from bizstream.errors import InvalidRecord
from bizstream.settings import LimitSettings


class Sentiment(StrEnum):
    """The three classes; rating 1..3 in the labeler."""

    BEARISH = "bearish"
    NEUTRAL = "neutral"
    BULLISH = "bullish"

    @property
    def rating(self) -> int:
        """1 = bearish, 2 = neutral, 3 = bullish."""
        return _RATINGS[self]

    @classmethod
    def from_rating(cls, rating: int) -> Sentiment:
        """The class of a 1..3 rating."""
        for sentiment, value in _RATINGS.items():
            if value == rating:
                return sentiment
        raise InvalidRecord(f"rating must be 1, 2 or 3, got {rating!r}")


_RATINGS = {Sentiment.BEARISH: 1, Sentiment.NEUTRAL: 2, Sentiment.BULLISH: 3}
SENTIMENTS: tuple[Sentiment, ...] = (Sentiment.BEARISH, Sentiment.NEUTRAL, Sentiment.BULLISH)
IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_ID_CHARS = 256
EARLIEST_LABEL_TIME = 946_684_800.0  # 2000-01-01


def now() -> float:
    """Wall-clock seconds since the epoch, the time unit of every record."""
    return time.time()


def dumps(record: Any) -> bytes:
    """Serialize a record (a dataclass) to JSON bytes, dropping nothing and adding nothing."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_DATACLASS | orjson.OPT_NON_STR_KEYS)


class WireRecord:
    """Base of the records that go on the wire as they are."""

    def to_json(self) -> bytes:
        """JSON bytes for the wire."""
        return dumps(self)

    @classmethod
    def from_json(cls, raw: bytes, limits: LimitSettings | None = None) -> Self:
        """Parse and validate a flat record: no unknown fields, every required one present, each of its declared type
        (str, int, float, bool, a Literal's values, an object; ``None`` only where the type allows it)."""
        obj = _object(_bounded(raw, limits, cls.__name__), cls.__name__)
        _check_fields(cls, obj)
        return cls(**obj)


# -- Post -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An image attached to a post: exactly one of a local path, a URL, or inline base64 data with its mime type."""

    path: str | None = None
    url: str | None = None
    data: str | None = None  # base64
    mime: str | None = None

    def inline_bytes(self) -> bytes | None:
        """The decoded inline data, if any (already validated)."""
        return base64.b64decode(self.data) if self.data is not None else None


@dataclass(frozen=True)
class Post:
    """A scraped post, as the scraper publishes it to ``bizstream.posts.v1``."""

    id: str
    text: str
    thread_id: str
    source: str = "unknown"
    board: str | None = None
    created_at: str | None = None
    image: Image | None = None
    reply_to: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """JSON bytes for the wire."""
        return dumps(_drop_none(self))

    @classmethod
    def from_json(cls, raw: bytes, limits: LimitSettings) -> Post:
        """Parse and validate one post; InvalidRecord says exactly what is wrong."""
        if len(raw) > limits.max_message_bytes:
            raise InvalidRecord(f"message is {len(raw)} bytes, more than limits.max_message_bytes={limits.max_message_bytes}")
        return cls.from_dict(_object(raw, "post"), limits)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], limits: LimitSettings) -> Post:
        """Validate a decoded JSON object as a post."""
        # Scrapers add their own fields: kept in meta (its own keys win), never a reason to lose the post.
        extra = {k: v for k, v in obj.items() if k not in {f.name for f in dataclasses.fields(cls)}}
        post_id = _identifier(obj, "id", where="post")
        if post_id is None:
            raise InvalidRecord("post has no 'id' (a non-empty string)")
        where = f"post {post_id!r}"
        text = obj.get("text")
        if text is None:
            raise InvalidRecord(f"{where} has no 'text' (a string, may be empty only when an image is attached)")
        if not isinstance(text, str):
            raise InvalidRecord(f"'text' must be a string, got {type(text).__name__} ({where})")
        if len(text) > limits.max_text_chars:
            raise InvalidRecord(f"'text' has {len(text)} characters, more than limits.max_text_chars={limits.max_text_chars} ({where})")
        image = _image(obj.get("image"), limits, where)
        if not text.strip() and image is None:
            raise InvalidRecord(f"{where} has empty 'text' and no image: nothing to score")
        thread_id = _identifier(obj, "thread_id", where=where) or post_id
        created_at = obj.get("created_at")
        if created_at is not None:
            created_at = _timestamp(created_at, where)
        meta = obj.get("meta", {})
        if not isinstance(meta, dict):
            raise InvalidRecord(f"'meta' must be an object, got {type(meta).__name__} ({where})")
        meta = {**extra, **meta} if extra else meta
        return cls(
            id=post_id,
            text=text,
            thread_id=thread_id,
            source=_optional_str(obj, "source", where) or "unknown",
            board=_optional_str(obj, "board", where),
            created_at=created_at,
            image=image,
            reply_to=_identifier(obj, "reply_to", where=where),
            meta=meta,
        )


def _identifier(obj: Mapping[str, Any], key: str, *, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # 4chan post numbers are integers; keep them as strings on the wire
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"'{key}' must be a non-empty string, got {_describe(value)} ({where})")
    if len(value) > MAX_ID_CHARS:
        raise InvalidRecord(f"'{key}' is {len(value)} characters, more than {MAX_ID_CHARS} ({where})")
    return value


def _optional_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRecord(f"'{key}' must be a string, got {type(value).__name__} ({where})")
    return value


def _timestamp(value: Any, where: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value).astimezone().isoformat()
        except (OverflowError, OSError, ValueError):
            raise InvalidRecord(f"'created_at' {value!r} is not a valid epoch time ({where})") from None
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRecord(f"'created_at' must be ISO 8601 or epoch seconds, got {value!r} ({where})") from None
        return value
    raise InvalidRecord(f"'created_at' must be ISO 8601 or epoch seconds, got {value!r} ({where})")


def _image(value: Any, limits: LimitSettings, where: str) -> Image | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRecord(f"'image' must be an object with one of path, url or data, got {type(value).__name__} ({where})")
    _unknown_fields(value, {"path", "url", "data", "mime"}, f"'image' ({where})")
    given = [key for key in ("path", "url", "data") if value.get(key) is not None]
    if len(given) != 1:
        raise InvalidRecord(f"'image' needs exactly one of path, url or data, got {given or 'none'} ({where})")
    for key in ("path", "url", "data", "mime"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise InvalidRecord(f"'image.{key}' must be a string ({where})")
    if "url" in given and not value["url"].startswith(("http://", "https://")):
        raise InvalidRecord(f"'image.url' must be http(s), got {value['url'][:100]!r} ({where})")
    if "data" in given:
        mime = value.get("mime")
        if mime not in IMAGE_MIME_TYPES:
            raise InvalidRecord(f"'image.mime' must be one of {sorted(IMAGE_MIME_TYPES)} for inline data, got {mime!r} ({where})")
        # Check the size before decoding: base64 is 4 characters per 3 bytes.
        if len(value["data"]) * 3 // 4 > limits.max_image_bytes:
            raise InvalidRecord(
                f"inline image is about {len(value['data']) * 3 // 4} bytes, more than "
                f"limits.max_image_bytes={limits.max_image_bytes} ({where})"
            )
        try:
            data = base64.b64decode(value["data"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRecord(f"'image.data' is not valid base64 ({where})") from None
        _check_pixels(data, limits, where)
    return Image(path=value.get("path"), url=value.get("url"), data=value.get("data"), mime=value.get("mime"))


def _check_pixels(data: bytes, limits: LimitSettings, where: str) -> None:
    """Refuse an inline image Pillow cannot read or with too many pixels, from its header alone (bizstream.images)."""
    from bizstream.images import check_header

    try:
        check_header(data, limits)
    except InvalidRecord as exc:
        raise InvalidRecord(f"inline {exc} ({where})") from None


def _drop_none(record: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(record).items() if v is not None}


# -- Score ----------------------------------------------------------------------------------------------------------

Route = Literal["all", "cheap", "escalated"]


@dataclass(frozen=True)
class AnalyzerResult:
    """One analyzer's part of a Score; ``error`` is set (and the rest empty) when the analyzer failed on the post."""

    analyzer: str
    model_version: str
    latency_ms: float
    score: float | None = None
    label: Sentiment | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    error: str | None = None
    details: dict[str, str | float | bool] | None = None  # what else the analyzer read (see Prediction.details)


@dataclass(frozen=True)
class Score(WireRecord):
    """The fused sentiment of one post, published to ``bizstream.scores.v1`` keyed by thread id."""

    post_id: str
    thread_id: str
    score: float
    label: Sentiment
    confidence: float
    probabilities: dict[str, float]
    analyzers: dict[str, AnalyzerResult]
    route: Route = "all"
    sarcasm_probability: float | None = None
    fusion: str = "weights"  # what fused the analyzers: the fixed weights, or a learned-fusion version
    scored_at: float = field(default_factory=now)
    tickers: list[str] = field(default_factory=list)  # the coins and stocks the post is about (bizstream.tickers)
    posted_at: float | None = None  # the post's created_at in epoch seconds, when it gave one

    @property
    def failures(self) -> dict[str, str]:
        """Analyzer name → why it produced nothing for this post."""
        return {name: r.error for name, r in self.analyzers.items() if r.error is not None}


# -- Label, drift, models, dead letters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Label(WireRecord):
    """A person's (or the trainer's pseudo-) label for one post, on ``bizstream.labels.v1`` keyed by post id.
    ``retracted``: the labeler takes back their label of this post (undo in the labeler after it was sent); the
    trainer forgets it, the monitor ignores it."""

    post_id: str
    rating: int
    labeler: str
    text: str | None = None
    source: Literal["human", "pseudo"] = "human"
    labeled_at: float = field(default_factory=now)
    retracted: bool = False

    def __post_init__(self) -> None:
        Sentiment.from_rating(self.rating)
        if self.source not in ("human", "pseudo"):
            raise InvalidRecord(f"source must be 'human' or 'pseudo', got {self.source!r} (post {self.post_id!r})")

    @classmethod
    def from_json(cls, raw: bytes, limits: LimitSettings | None = None) -> Label:
        """Parse and validate one label as strictly as a post: exact types (a rating is the integer 1, 2 or 3, not
        true or 3.0; or ``label``, the class's name), a post id and labeler of at most MAX_ID_CHARS characters (a post id may be an integer, as in
        posts), a text within limits.max_text_chars, ``labeled_at`` epoch seconds that are neither before 2000 nor
        more than a day ahead (null or absent: now)."""
        limits = limits or LimitSettings()
        obj = dict(_object(_bounded(raw, limits, "label"), "label"))
        where = "label"
        post_id = _identifier(obj, "post_id", where=where)
        if post_id is None:
            raise InvalidRecord("label has no 'post_id' (a non-empty string)")
        obj["post_id"] = post_id
        where = f"label for post {post_id!r}"
        if "labeler" not in obj:
            raise InvalidRecord(f"{where} has no 'labeler' (who labelled it: a non-empty string)")
        if _identifier(obj, "labeler", where=where) is None or not isinstance(obj["labeler"], str):
            raise InvalidRecord(f"'labeler' must be a non-empty string, got {_describe(obj.get('labeler'))} ({where})")
        if "label" in obj:  # the class by name, as Scores and `labels import` spell it
            if "rating" in obj:
                raise InvalidRecord(f"give 'rating' or 'label', not both ({where})")
            name = obj.pop("label")
            if not isinstance(name, str) or name not in {s.value for s in Sentiment}:
                raise InvalidRecord(f"'label' must be bearish, neutral or bullish, got {_describe(name)} ({where})")
            obj["rating"] = Sentiment(name).rating
        if obj.get("labeled_at") is None:
            obj.pop("labeled_at", None)
        _check_fields(cls, obj)
        text = obj.get("text")
        if text is not None and len(text) > limits.max_text_chars:
            raise InvalidRecord(f"'text' has {len(text)} characters, more than limits.max_text_chars={limits.max_text_chars} ({where})")
        labeled_at = obj.get("labeled_at")
        if labeled_at is not None and not EARLIEST_LABEL_TIME <= labeled_at <= now() + 86_400:
            raise InvalidRecord(f"'labeled_at' must be epoch seconds between 2000 and tomorrow, got {_describe(labeled_at)} ({where})")
        return cls(**obj)

    @property
    def sentiment(self) -> Sentiment:
        """The class this rating stands for."""
        return Sentiment.from_rating(self.rating)



@dataclass(frozen=True)
class DriftEvent(WireRecord):
    """A detector saw the error rate of an analyzer change, on ``bizstream.drift.v1``.

    ``error_before`` is the error rate over the older labels the detector let go (``window_before`` of them),
    ``error_after`` over the recent ones it kept (``window_after``); ``abs_error_after`` the recent mean distance
    of the analyzer's score from the truth.
    """

    detector: str
    analyzer: str
    model_version: str
    error_before: float
    error_after: float
    window_before: int
    window_after: int
    abs_error_after: float | None = None  # recent mean |score - truth| (truth: bearish -1, neutral 0, bullish +1)
    detected_at: float = field(default_factory=now)


@dataclass(frozen=True)
class ModelEvent(WireRecord):
    """What a training (or a person) decided about a version, on ``bizstream.models.v1`` keyed by analyzer (compacted:
    the latest event of an analyzer says what serves): promoted (it serves now) or not, and why. ``reason`` is why it
    was trained; ``promoted_at`` is when the decision was made. ``serving`` is the version that serves after the
    decision, and ``artifacts`` its manifest: each file's path, size, SHA-256 and the chunks on
    ``bizstream.artifacts.v1`` that hold it (bizstream.stream.models) — how a worker on another machine gets it."""

    analyzer: str
    version: str
    metrics: dict[str, float]
    reason: Literal["labels", "drift", "manual"]
    promoted: bool = True
    why: str = ""
    promoted_at: float = field(default_factory=now)
    serving: str | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TickerWindow(WireRecord):
    """One ticker over one window, on ``bizstream.tickers.v1`` keyed by ticker (``bizstream tickers``). ``window_s``
    is the window's length; ``kind`` is "tumbling" (``start`` .. ``start + window_s``) or "rolling" (the
    ``window_s`` seconds up to ``end``). Means are over the window's posts; ``weighted_score`` weights each post by its
    confidence; ``spike``: the count is ``spike_factor`` times the ticker's baseline or more."""

    ticker: str
    kind: Literal["tumbling", "rolling"]
    window_s: int
    start: float
    end: float
    posts: int
    mean_score: float
    weighted_score: float
    shares: dict[str, float]  # bearish / neutral / bullish
    mean_sarcasm: float | None
    most_bullish: str | None
    most_bearish: str | None
    baseline: float | None  # mean post count of the earlier windows of this size (None: no history yet)
    spike: bool
    updated_at: float = field(default_factory=now)


@dataclass(frozen=True)
class DeadLetter(WireRecord):
    """A message bizstream could not process, with its raw bytes (base64) so nothing is lost."""

    raw: str  # base64 of the exact bytes received
    topic: str
    partition: int
    offset: int
    stage: Literal["decode", "validate", "analyze", "produce", "store"]
    error_type: str
    message: str
    plugin: str | None = None
    key: str | None = None  # base64
    failed_at: float = field(default_factory=now)

    @classmethod
    def for_bytes(cls, raw: bytes, key: bytes | None = None, **fields: Any) -> DeadLetter:
        """A dead letter carrying ``raw`` (and its key) exactly."""
        return cls(
            raw=base64.b64encode(raw).decode(),
            key=base64.b64encode(key).decode() if key is not None else None,
            **fields,
        )

    def raw_bytes(self) -> bytes:
        """The exact bytes that failed."""
        return base64.b64decode(self.raw)


_SHOWN_NAMES = 10  # an error lists at most this many unknown field names


def _unknown_fields(obj: Mapping[str, Any], known: set[str], where: str, hint: str = "") -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:_SHOWN_NAMES])
        more = f" and {len(unknown) - _SHOWN_NAMES} more" if len(unknown) > _SHOWN_NAMES else ""
        raise InvalidRecord(f"unknown field(s) {shown}{more} in {where}{hint}")


def _describe(value: Any) -> str:
    """A value as an error message shows it: short, and a number too large to be exact said as such."""
    if isinstance(value, float) and abs(value) >= 2**53:
        return "a number too large to be exact (send ids as strings)"
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode() if _plain(value) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


@functools.cache
def _schema(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """A record class's resolved field types and fields, worked out once per class (not per message)."""
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def _check_fields(cls: type, obj: Mapping[str, Any]) -> None:
    """InvalidRecord unless ``obj`` fits dataclass ``cls`` field by field (see WireRecord.from_json)."""
    hints, fields = _schema(cls)
    _unknown_fields(obj, set(fields), cls.__name__)
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in obj:
            if required:
                raise InvalidRecord(f"{cls.__name__} has no {name!r}")
            continue
        value, allowed = obj[name], hints[name]
        options = typing.get_args(allowed) if isinstance(allowed, types.UnionType) else (allowed,)
        if not any(_fits(value, option) for option in options):
            raise InvalidRecord(f"{cls.__name__} {name!r} must be {_type_name(allowed)}, got {_describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRecord(f"{cls.__name__} {name!r} must be a finite number, got {value}")


def _fits(value: Any, allowed: Any) -> bool:
    origin = typing.get_origin(allowed)
    if allowed is type(None):
        return value is None
    if origin is Literal:
        return isinstance(value, str) and value in typing.get_args(allowed)
    if allowed is bool:
        return isinstance(value, bool)
    if allowed is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if allowed is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if allowed is str:
        return isinstance(value, str)
    if origin is dict or allowed is dict:
        return isinstance(value, dict)
    return True  # a type this check does not cover: the record's own __post_init__ checks it


def _type_name(allowed: Any) -> str:
    if isinstance(allowed, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(allowed))
    if typing.get_origin(allowed) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(allowed))
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return names.get(allowed, "an object")


def _bounded(raw: bytes, limits: LimitSettings | None, what: str) -> bytes:
    limit = (limits or LimitSettings()).max_message_bytes
    if len(raw) > limit:
        raise InvalidRecord(f"{what} message is {len(raw)} bytes, more than limits.max_message_bytes={limit}")
    return raw


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"{what} is not valid JSON (UTF-8): {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidRecord(f"a {what} must be a JSON object, got {type(obj).__name__}")
    return obj
