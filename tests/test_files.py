"""Posts from files: JSON lines as they are, or a CSV's rows as posts; labels from the same CSV join its posts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bizstream.errors import BizstreamError
from bizstream.files import post_lines, text_id
from bizstream.records import Post
from bizstream.settings import Settings
from bizstream.store.label_files import read_label_file
from tests.conftest import ROOT, child_env


def test_a_csv_of_posts_reads_as_the_posts_topic_carries_them(tmp_path: Path) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text('id,text,thread_id,image,label,subreddit\n'
                     'a1,"moon soon, $BTC",t1,,bullish,CryptoCurrency\n'
                     ',rekt again,,,bearish,\n'
                     'm1,,,memes/chart.png,,\n'
                     'u1,look,,https://example.org/x.png,,\n', encoding="utf-8")  # fmt: skip
    limits = Settings().limits
    read = [Post.from_json(raw, limits) for raw in post_lines(posts)]
    assert [(p.id, p.text, p.thread_id) for p in read] == [
        ("a1", "moon soon, $BTC", "t1"), (text_id("rekt again"), "rekt again", text_id("rekt again")), ("m1", "", "m1"), ("u1", "look", "u1"),
    ]  # fmt: skip
    assert read[0].meta == {"label": "bullish", "subreddit": "CryptoCurrency"}  # what a post has no field for is kept
    assert read[2].image is not None and read[2].image.path == "memes/chart.png"
    assert read[3].image is not None and read[3].image.url == "https://example.org/x.png"
    # labels imported from a CSV without ids get the ids its posts were scored under, so the two join
    labels = tmp_path / "labels.csv"
    labels.write_text("text,label\nrekt again,bearish\n", encoding="utf-8")
    assert read_label_file(labels).rows[0].post_id == read[1].id


def test_a_csv_saved_by_a_spreadsheet_reads_too(tmp_path: Path) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_bytes("\ufefftext,id\r\nwagmi,p1\r\n".encode())  # a byte-order mark and CRLF, as Excel saves them
    assert [orjson.loads(raw) for raw in post_lines(posts)] == [{"text": "wagmi", "id": "p1"}]


def test_json_lines_pass_as_they_are(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "x"}\r\n\n  \nnot json\n')  # a byte-order mark is not the post's
    assert list(post_lines(posts)) == [b'{"id": "a", "text": "x"}', b"not json"]  # the worker's validation judges them


@pytest.mark.parametrize(("content", "error"), [
    ("tweet,sentiment\nx,y\n", "a posts CSV needs a `text` column; its header has 'tweet', 'sentiment'"),
    ('text\n"moon soon\nrekt\n', "not valid CSV .*an unclosed quote"),
])  # fmt: skip
def test_a_csv_that_cannot_be_posts_is_one_error(tmp_path: Path, content: str, error: str) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text(content, encoding="utf-8")
    with pytest.raises(BizstreamError, match=error):
        list(post_lines(posts))


def test_score_reads_a_csv_and_refuses_a_wrong_one_before_loading_plugins(tmp_path: Path) -> None:
    env = child_env(bare=True, BIZSTREAM_BROKER__CACHE_DIR=str(tmp_path / "cache"), BIZSTREAM_SETFIT__STARTER="false")
    posts = tmp_path / "posts.csv"
    posts.write_text('text,label\n"this coin is going to moon",bullish\nrekt,bearish\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bizstream", "score", "--json", str(posts)], capture_output=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line)["label"] for line in result.stdout.splitlines()] == ["bullish", "bearish"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("tweet\nx\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "bizstream", "score", str(wrong)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [f"error: {wrong}: a posts CSV needs a `text` column; its header has 'tweet'"]


def test_the_demo_publishes_every_line_and_waits_only_for_the_posts(tmp_path: Path) -> None:
    from bizstream.demo import read_posts

    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(b'{"id": "a", "text": "moon", "thread_id": "t"}\nnot json\n{"id": "b", "text": ""}\n')
    lines, keys, texts, rejected = read_posts(posts, Settings().limits)
    assert len(lines) == 3 and keys == [b"t", None, None] and texts == {"a": "moon"}
    assert [n for n, _ in rejected] == [2, 3] and "not valid JSON" in rejected[0][1] and "nothing to score" in rejected[1][1]


def test_a_file_that_is_not_utf8_is_one_clear_error_or_one_rejected_line(tmp_path: Path) -> None:
    latin = "text,label\ncaf\u00e9 pump,bullish\n".encode("latin-1")  # as an old spreadsheet may save it
    for name in ("posts.csv", "labels.csv"):
        (tmp_path / name).write_bytes(latin)
    with pytest.raises(BizstreamError, match=r"posts.csv: not UTF-8 text \(invalid continuation byte\); save it as UTF-8"):
        list(post_lines(tmp_path / "posts.csv"))
    with pytest.raises(BizstreamError, match=r"labels.csv: not UTF-8 text"):
        read_label_file(tmp_path / "labels.csv")
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b'{"text": "caf\xe9", "label": "bullish"}\n{"text": "fine", "label": "neutral"}\n')
    read = read_label_file(labels)
    assert [r.text for r in read.rows] == ["fine"]
    assert [(line, why.split(":")[0]) for line, why in read.errors] == [(1, "not valid JSON")]
