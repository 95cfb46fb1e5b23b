from __future__ import annotations

import base64
import io

import orjson
import pytest
from PIL import Image

from bizstream.errors import InvalidRecord
from bizstream.records import DeadLetter, DriftEvent, Label, Post, Sentiment
from bizstream.settings import LimitSettings

LIMITS = LimitSettings(max_text_chars=100, max_image_bytes=1000, max_message_bytes=10_000)


def parse(obj: object) -> Post:
    return Post.from_json(orjson.dumps(obj), LIMITS)


def test_valid_post_round_trips() -> None:
    post = parse({"id": 7, "thread_id": "t", "text": "wagmi", "meta": {"score": 3}, "created_at": "2026-11-01T00:00:00"})
    assert post.id == "7"  # integer post numbers become strings
    assert Post.from_json(post.to_json(), LIMITS) == post


def test_thread_defaults_to_the_post_itself() -> None:
    assert parse({"id": "a", "text": "hi"}).thread_id == "a"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"text": "x"}', "has no 'id'"),
        (b'{"id": "a"}', "post 'a' has no 'text'"),
        (b'{"id": "a", "text": 5}', "'text' must be a string, got int (post 'a')"),
        (b'{"id": "a", "text": "   "}', "empty 'text' and no image"),
        (b'{"id": "a", "text": "' + b"x" * 101 + b'"}', "101 characters, more than limits.max_text_chars=100"),
        (b'{"id": "a", "text": "x", "created_at": "yesterday"}', "'created_at' must be ISO 8601"),
        (b'{"id": "a", "text": "x", "image": {"url": "ftp://x"}}', "'image.url' must be http(s)"),
        (b'{"id": "a", "text": "x", "image": {"path": "a", "url": "http://b"}}', "exactly one of path, url or data"),
        (b'{"id": "a", "text": "x", "image": {"data": "AAAA", "mime": "text/html"}}', "'image.mime' must be one of"),
        (b'{"id": "a", "text": "x", "image": {"data": "***", "mime": "image/png"}}', "not valid base64"),
        (b'{"id": "", "text": "x"}', "'id' must be a non-empty string"),
    ],
)
def test_invalid_posts_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        Post.from_json(raw, LIMITS)
    assert message in str(info.value)


def test_limits_on_message_and_image_size() -> None:
    with pytest.raises(InvalidRecord, match="more than limits.max_message_bytes"):
        Post.from_json(b" " * 10_001, LIMITS)
    big = base64.b64encode(b"\0" * 2000).decode()
    with pytest.raises(InvalidRecord, match="more than limits.max_image_bytes=1000"):
        parse({"id": "a", "text": "", "image": {"data": big, "mime": "image/png"}})
    with pytest.raises(InvalidRecord, match="not an image Pillow can read") as caught:
        parse({"id": "a", "text": "", "image": {"data": base64.b64encode(b"\x89PNG").decode(), "mime": "image/png"}})
    assert "BytesIO" not in str(caught.value) and "0x" not in str(caught.value)  # no object address in a reason
    small = png(8, 8)
    post = parse({"id": "a", "text": "", "image": {"data": base64.b64encode(small).decode(), "mime": "image/png"}})
    assert post.image is not None and post.image.inline_bytes() == small


def test_pixel_limit_is_checked_from_the_header() -> None:
    limits = LimitSettings(max_image_pixels=100 * 100)
    wide = base64.b64encode(png(200, 100)).decode()  # a few hundred bytes, 20,000 pixels
    with pytest.raises(InvalidRecord, match="200x100 = 20000 pixels, more than limits.max_image_pixels=10000"):
        Post.from_json(orjson.dumps({"id": "a", "text": "", "image": {"data": wide, "mime": "image/png"}}), limits)


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def test_label_ratings_are_validated() -> None:
    assert Label("p", 3, "me").sentiment is Sentiment.BULLISH
    with pytest.raises(InvalidRecord, match="rating must be 1, 2 or 3, got 7"):
        Label("p", 7, "me")
    with pytest.raises(InvalidRecord, match="'source' must be one of 'human', 'pseudo', got \"robot\""):
        Label.from_json(b'{"post_id": "p", "rating": 1, "labeler": "x", "source": "robot"}')
    label = Label.from_json(Label("p", 1, "me").to_json())
    assert label.rating == 1 and label.labeler == "me"


def test_dead_letter_keeps_the_exact_bytes() -> None:
    raw = b"\xff\x00 not utf-8 \xfe"
    letter = DeadLetter.for_bytes(raw, key=b"k", topic="t", partition=1, offset=2, stage="validate", error_type="E", message="m")
    back = orjson.loads(letter.to_json())
    assert base64.b64decode(back["raw"]) == raw
    assert base64.b64decode(back["key"]) == b"k"


MISTYPED_LABELS = {  # what a scraper or a hand-written producer got wrong -> what the error says
    b'{"post_id": "p", "rating": 1, "labeler": "x", "text": 123}': "'text' must be a string or null, got 123",
    b'{"post_id": "p", "rating": 1, "labeler": "x", "text": ["moon"]}': "'text' must be a string or null",
    b'{"post_id": {"a": 1}, "rating": 1, "labeler": "x", "text": "t"}': "'post_id' must be a non-empty string",
    b'{"post_id": "p", "rating": 1, "labeler": null, "text": "t"}': "'labeler' must be a non-empty string, got null",
    b'{"post_id": "p", "rating": 1, "labeler": 5, "text": "t"}': "'labeler' must be a non-empty string, got 5",
    b'{"post_id": "p", "rating": true, "labeler": "x", "text": "t"}': "'rating' must be an integer, got true",
    b'{"post_id": "p", "rating": 3.0, "labeler": "x", "text": "t"}': "'rating' must be an integer, got 3.0",
    b'{"post_id": "p", "rating": 1, "labeler": "x", "labeled_at": "yesterday"}': "'labeled_at' must be a number",
    b'{"post_id": "p", "rating": 1, "labeler": "x", "labeled_at": 1e300}': "between 2000 and tomorrow",
    b'{"post_id": 123456789012345678901234567890, "rating": 1, "labeler": "x"}': "a number too large to be exact",
    b'{"post_id": "p", "rating": 1, "labeler": "x", "mood": "happy"}': "unknown field(s) 'mood'",
    b'[1, 2]': "must be a JSON object",
    b'{"post_id": "p", "rating": 1, "text": "t"}': "label for post 'p' has no 'labeler'",
    b'{"post_id": "p", "label": "moon", "labeler": "x"}': "'label' must be bearish, neutral or bullish, got \"moon\"",
    b'{"post_id": "p", "label": ["bullish"], "labeler": "x"}': "'label' must be bearish, neutral or bullish, got [",
    b'{"post_id": "p", "label": "bullish", "rating": 3, "labeler": "x"}': "give 'rating' or 'label', not both",
}


@pytest.mark.parametrize("raw", list(MISTYPED_LABELS))
def test_a_mistyped_label_is_refused_with_a_clear_reason(raw: bytes) -> None:
    with pytest.raises(InvalidRecord) as caught:
        Label.from_json(raw)
    assert MISTYPED_LABELS[raw] in str(caught.value)


def test_label_limits_and_what_is_allowed() -> None:
    with pytest.raises(InvalidRecord, match="more than limits.max_text_chars=10"):
        Label.from_json(b'{"post_id": "p", "rating": 1, "labeler": "x", "text": "' + b"a" * 11 + b'"}',
                        LimitSettings(max_text_chars=10))  # fmt: skip
    with pytest.raises(InvalidRecord, match="more than limits.max_message_bytes=100"):
        Label.from_json(b" " * 101, LimitSettings(max_message_bytes=100))
    # Like a post's id, an integer post id names the post by its digits; a null labeled_at means now.
    label = Label.from_json(b'{"post_id": 123, "rating": 2, "labeler": "x", "labeled_at": null, "text": null}')
    assert label.post_id == "123" and label.text is None and label.labeled_at > 1.7e9
    # The class by name, as Scores and `labels import` spell it.
    assert Label.from_json(b'{"post_id": "p", "label": "bearish", "labeler": "x"}').rating == 1


def test_unknown_fields_are_listed_up_to_ten() -> None:
    raw = orjson.dumps({"post_id": "p", "rating": 1, "labeler": "x", **{f"f{i:03}": 1 for i in range(500)}})
    with pytest.raises(InvalidRecord) as caught:
        Label.from_json(raw)
    assert "'f009'" in str(caught.value) and "'f010'" not in str(caught.value) and "and 490 more" in str(caught.value)


def test_a_scrapers_own_fields_are_kept_in_meta() -> None:
    post = Post.from_json(b'{"id": "a", "text": "moon", "colour": "green", "meta": {"score": 3, "colour": "red"}}', LIMITS)
    assert post.meta == {"colour": "red", "score": 3}  # meta's own keys win
    assert Post.from_json(b'{"id": "b", "text": "moon", "upvotes": 12}', LIMITS).meta == {"upvotes": 12}


def test_flat_records_are_typed_too() -> None:
    with pytest.raises(InvalidRecord, match="DriftEvent 'error_before' must be a number, got \"high\""):
        DriftEvent.from_json(b'{"detector": "adwin", "analyzer": "a", "model_version": "v", "error_before": "high",'
                             b' "error_after": 0.1, "window_before": 1, "window_after": 1}')  # fmt: skip
    with pytest.raises(InvalidRecord, match="has no 'analyzer'"):
        DriftEvent.from_json(b'{"detector": "adwin"}')


def test_a_huge_numeric_id_is_named_as_such() -> None:
    with pytest.raises(InvalidRecord, match="'id' must be a non-empty string, got a number too large to be exact"):
        Post.from_json(b'{"id": 123456789012345678901234567890, "text": "moon"}', LIMITS)
