"""Label files: a CSV that is not what it should be says so once, instead of a reason per row or merged rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bizstream.errors import BizstreamError
from bizstream.store.label_files import read_label_file


def test_a_csv_without_the_columns_says_so_once(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("tweet,sentiment\nmoon soon,bullish\n")
    with pytest.raises(BizstreamError, match="needs a `text` column and a `label` or `rating` column; its header has 'tweet', 'sentiment'"):
        read_label_file(wrong)


def test_an_unclosed_quote_is_an_error_not_merged_rows(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text('text,label\n"moon soon,bullish\nrekt,bearish\nok,neutral\n')
    with pytest.raises(BizstreamError, match="not valid CSV .*an unclosed quote"):
        read_label_file(broken)
    good = tmp_path / "good.csv"
    good.write_text('text,label\n"moon, soon",bullish\nrekt,bearish\n')
    assert [r.text for r in read_label_file(good).rows] == ["moon, soon", "rekt"]


def test_a_label_of_a_post_without_text_is_passed_over_not_an_error(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"post_id": "meme-1", "rating": 3, "text": ""}\n{"post_id": "meme-2", "rating": 1}\n'
                      '{"post_id": "meme-3", "rating": 7, "text": ""}\n{"rating": 2, "text": ""}\n'
                      '{"post_id": "p", "rating": 2, "text": "which wallet"}\n')  # fmt: skip
    read = read_label_file(labels)
    assert [r.post_id for r in read.rows] == ["p"]
    assert read.without_text == [1, 2]
    assert read.errors == [(3, "'rating' must be 1, 2 or 3, got 7"), (4, "'text' must be a non-empty string")]
    assert (read.skipped() or "").startswith("skipped 2 labels of posts with no text (image-only posts; line 1, 2)")
